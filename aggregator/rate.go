package aggregator

import "github.com/prometheus/prometheus/model/histogram"

// rateOutput is the rate output: the window increase per second of window length.
type rateOutput struct{}

func (rateOutput) value(w *windowResult) (float64, bool) {
	return w.acc.increase / w.interval, true
}

// nativeHistogram is the window's native histogram increase per second, a gauge histogram.
func (rateOutput) nativeHistogram(w *nativeResult) (*histogram.FloatHistogram, bool) {
	h := w.increase().Mul(1 / w.interval)
	h.CounterResetHint = histogram.GaugeType
	return h, true
}
