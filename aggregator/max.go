package aggregator

// maxOutput is the max output: the largest latest value among the live input series at the window end.
type maxOutput struct{}

func (maxOutput) value(w *windowResult) (float64, bool) {
	return w.acc.max, w.acc.count > 0
}
