package aggregator

import "github.com/prometheus/prometheus/model/histogram"

// increaseOutput is the increase output: the sum of the counter increases that fell in the window (a gauge).
type increaseOutput struct{}

func (increaseOutput) value(w *windowResult) (float64, bool) {
	return w.acc.increase, true
}

// nativeHistogram is the window's sum of native histogram increases, a gauge histogram.
func (increaseOutput) nativeHistogram(w *nativeResult) (*histogram.FloatHistogram, bool) {
	h := w.increase()
	h.CounterResetHint = histogram.GaugeType
	return h, true
}
