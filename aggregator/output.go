package aggregator

import (
	"fmt"

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
