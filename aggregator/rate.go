package aggregator

// rateOutput is the rate output: the window increase per second of window length.
type rateOutput struct{}

func (rateOutput) value(w *windowResult) (float64, bool) {
	return w.acc.increase / w.interval, true
}
