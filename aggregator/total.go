package aggregator

import "github.com/prometheus/prometheus/model/histogram"

// totalOutput is the total output: the counter's running sum of increases, emitted at every
// window end while the output lives, so downstream sees an ordinary monotonic counter.
type totalOutput struct{}

func (totalOutput) value(w *windowResult) (float64, bool) {
	return w.total, true
}

// nativeHistogram is the running total of native histogram increases: a counter histogram
// that says it continues the previous sample, except on the first.
func (totalOutput) nativeHistogram(w *nativeResult) (*histogram.FloatHistogram, bool) {
	if w.total == nil {
		return nil, false // not a counter rule
	}
	h := w.total.Copy()
	h.CounterResetHint = histogram.NotCounterReset
	if w.first {
		h.CounterResetHint = histogram.UnknownCounterReset
	}
	return h, true
}
