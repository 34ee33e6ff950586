package aggregator

// lastOutput is the last output: the value of the newest sample among the live input series at the window end.
type lastOutput struct{}

func (lastOutput) value(w *windowResult) (float64, bool) {
	return w.acc.last, w.acc.count > 0
}
