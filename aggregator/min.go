package aggregator

// minOutput is the min output: the smallest latest value among the live input series at the window end.
type minOutput struct{}

func (minOutput) value(w *windowResult) (float64, bool) {
	return w.acc.min, w.acc.count > 0
}
