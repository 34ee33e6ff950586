package aggregator

// sumOutput is the sum output: the sum of the latest values of the live input series at the window end.
type sumOutput struct{}

func (sumOutput) value(w *windowResult) (float64, bool) {
	return w.acc.sum, w.acc.count > 0
}
