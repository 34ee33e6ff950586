package aggregator

import (
	"fmt"
	"slices"

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

// defaultOutput returns the output kind whose series keeps the plain metric name.
func defaultOutput(t rules.Type) string {
	if t == rules.Gauge {
		return "sum"
	}
	return "total"
}

// compiledOutput is one output kind of a rule with the suffix its series names carry.
type compiledOutput struct {
	kind   output
	suffix string // "" for the default kind or a lone output, else ":<kind>"
}

// compileOutputs resolves a rule's output names to their implementations.
func compileOutputs(r *rules.Rule) ([]compiledOutput, error) {
	names := r.Outputs
	if len(names) == 0 {
		names = []string{defaultOutput(r.Type)}
	}
	out := make([]compiledOutput, 0, len(names))
	for _, n := range names {
		k, ok := outputKinds[n]
		if !ok {
			return nil, fmt.Errorf("rule %q: unknown output %q", r.Name, n)
		}
		suffix := ""
		if len(names) > 1 && n != defaultOutput(r.Type) {
			suffix = ":" + n
		}
		out = append(out, compiledOutput{kind: k, suffix: suffix})
	}
	if len(names) > 1 && !slices.Contains(names, defaultOutput(r.Type)) {
		// No kind keeps the plain name; the first does, so dashboards find something.
		out[0].suffix = ""
	}
	return out, nil
}
