package aggregator

// fate is what a window close does with one output series.
type fate uint8

const (
	fateQuiet fate = iota // it lives on and emits nothing for this window
	fateEmit              // it emits its samples for this window
	fateEnd               // it ends: a stale marker if it ever emitted, then its state is freed
)

// outputFate is the one decision, for the float and the native-histogram state alike, of
// what becomes of an output series when window k closes (docs/design.md §3.3, §3.4, §3.6).
// firstK and live are the output's; samples and count are the closing window's; emit is
// false for the rule's first, partial window, which never emits.
//
// A counter output is active from its first window for as long as it has a live input or a
// sample in the window: its running total is emitted even in a window with no sample. A
// gauge output is active when some input contributed a value. An active output emits; an
// inactive one with no live input left ends.
func (r *ruleState) outputFate(k, firstK int64, live, samples, count int32, emit bool) fate {
	active := count > 0
	if r.counter {
		active = k >= firstK && (live > 0 || samples > 0)
	}
	switch {
	case active && emit:
		return fateEmit
	case !active && live == 0:
		return fateEnd
	}
	return fateQuiet
}
