package aggregator

// avgOutput is the avg output: the mean of the latest values of the live input series at the window end.
type avgOutput struct{}

func (avgOutput) value(w *windowResult) (float64, bool) {
	if w.acc.count == 0 {
		return 0, false
	}
	return w.acc.sum / float64(w.acc.count), true
}
