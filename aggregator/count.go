package aggregator

// countOutput is the count output: the number of live input series at the window end.
type countOutput struct{}

func (countOutput) value(w *windowResult) (float64, bool) {
	return float64(w.acc.count), w.acc.count > 0
}
