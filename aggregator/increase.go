package aggregator

// increaseOutput is the increase output: the sum of the counter increases that fell in the window (a gauge).
type increaseOutput struct{}

func (increaseOutput) value(w *windowResult) (float64, bool) {
	return w.acc.increase, true
}
