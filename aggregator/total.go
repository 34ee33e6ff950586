package aggregator

// totalOutput is the total output: the counter's running sum of increases, emitted at every
// window end while the output lives, so downstream sees an ordinary monotonic counter.
type totalOutput struct{}

func (totalOutput) value(w *windowResult) (float64, bool) {
	return w.total, true
}
