package aggregator

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"

	"github.com/cardinal-proxy/cardinal/rules"
)

// windowResult is what a closed window of one output series offers the output kinds.
type windowResult struct {
	acc      windowAcc
	total    float64 // counter: running total including this window
	interval float64 // window length in seconds
}

// output computes one output kind's sample for a closed window. Adding an output kind means
// adding a file with a type that implements it and a line in outputKinds.
type output interface {
	// value returns the kind's value for the window, and false when it has none.
	value(w *windowResult) (float64, bool)
}

// nativeResult is what a closed window of one native-histogram output series offers the
// output kinds.
type nativeResult struct {
	acc      nativeWindow              // acc.acc is compacted, or nil when nothing was added
	total    *histogram.FloatHistogram // counter: running total including this window
	first    bool                      // the output has emitted nothing yet
	interval float64                   // window length in seconds
}

// increase returns the window's increase, empty in the layout of the total when it had none.
func (w *nativeResult) increase() *histogram.FloatHistogram {
	switch {
	case w.acc.acc != nil:
		return w.acc.acc.Copy()
	case w.total != nil:
		return emptyLike(w.total)
	}
	return &histogram.FloatHistogram{}
}

// nativeHistogramOutput is implemented by the output kinds that aggregate native histograms
// into a native histogram (total, increase, rate, sum).
type nativeHistogramOutput interface {
	// nativeHistogram returns the kind's histogram for the window, owned by the caller, and
	// false when it has none.
	nativeHistogram(w *nativeResult) (*histogram.FloatHistogram, bool)
}

// nativeFloatOutput is implemented by the output kinds that turn native histogram inputs
// into a float (count). Kinds that implement neither (avg, min, max, last) emit nothing for
// native histograms, whose samples are counted as unaggregatable.
type nativeFloatOutput interface {
	nativeFloat(w *nativeResult) (float64, bool)
}

// nativeSample is the sample an output kind emits for a window of native histograms.
func nativeSample(kind output, res *nativeResult) (emitted, bool) {
	switch k := kind.(type) {
	case nativeHistogramOutput:
		h, ok := k.nativeHistogram(res)
		return emitted{h: h}, ok
	case nativeFloatOutput:
		v, ok := k.nativeFloat(res)
		return emitted{v: v}, ok
	}
	return emitted{}, false
}

// nativeStaleMarker is the stale marker an output kind emits when its native output dies.
func nativeStaleMarker(kind output) (emitted, bool) {
	switch kind.(type) {
	case nativeHistogramOutput:
		return emitted{h: &histogram.FloatHistogram{Sum: staleNaN()}}, true
	case nativeFloatOutput:
		return emitted{v: staleNaN()}, true
	}
	return emitted{}, false
}

// outputKinds maps the names used in rule YAML to their implementations. It is read-only.
var outputKinds = map[string]output{
	"total":    totalOutput{},
	"increase": increaseOutput{},
	"rate":     rateOutput{},
	"sum":      sumOutput{},
	"avg":      avgOutput{},
	"min":      minOutput{},
	"max":      maxOutput{},
	"count":    countOutput{},
	"last":     lastOutput{},
}

// compiledOutput is one output kind of a rule, with its name in rule YAML.
type compiledOutput struct {
	name string
	kind output
}

// compileOutputs resolves a rule's output names to their implementations.
func compileOutputs(r *rules.Rule) ([]compiledOutput, error) {
	names := r.Outputs
	if len(names) == 0 {
		names = []string{r.Type.DefaultOutput()}
	}
	out := make([]compiledOutput, 0, len(names))
	for _, n := range names {
		k, ok := outputKinds[n]
		if !ok {
			return nil, fmt.Errorf("rule %q: unknown output %q", r.Name, n)
		}
		out = append(out, compiledOutput{name: n, kind: k})
	}
	return out, nil
}
