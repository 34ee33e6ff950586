package aggregator

import "github.com/prometheus/prometheus/model/histogram"

// sumOutput is the sum output: the sum of the latest values of the live input series at the window end.
type sumOutput struct{}

func (sumOutput) value(w *windowResult) (float64, bool) {
	return w.acc.sum, w.acc.count > 0
}

// nativeHistogram is the sum of the live gauge histograms' latest values, a gauge histogram.
func (sumOutput) nativeHistogram(w *nativeResult) (*histogram.FloatHistogram, bool) {
	if w.acc.count == 0 {
		return nil, false
	}
	h := w.acc.acc.Copy()
	h.CounterResetHint = histogram.GaugeType
	return h, true
}
