package aggregator

// countOutput is the count output: the number of live input series at the window end.
type countOutput struct{}

func (countOutput) value(w *windowResult) (float64, bool) {
	return float64(w.acc.count), w.acc.count > 0
}

// nativeFloat is the number of live native-histogram input series at the window end.
func (countOutput) nativeFloat(w *nativeResult) (float64, bool) {
	return float64(w.acc.count), w.acc.count > 0
}
