package rules

// The output kinds a rule may emit (docs/design.md §3.3–3.5).
const (
	// OutputTotal is a running counter of the increases (counter, histogram, summary).
	OutputTotal = "total"
	// OutputIncrease is the window's increase, a gauge.
	OutputIncrease = "increase"
	// OutputRate is the window's increase per second.
	OutputRate = "rate"
	// OutputSum, OutputAvg, OutputMin, OutputMax, OutputCount and OutputLast combine the
	// latest values of a gauge's live inputs at each window end.
	OutputSum   = "sum"
	OutputAvg   = "avg"
	OutputMin   = "min"
	OutputMax   = "max"
	OutputCount = "count"
	OutputLast  = "last"
)

// Outputs lists the output kinds a rule of type t may emit, its default first; nil for an
// unknown type.
func (t Type) Outputs() []string {
	switch t {
	case Counter, Histogram, Summary:
		return []string{OutputTotal, OutputIncrease, OutputRate}
	case Gauge:
		return []string{OutputSum, OutputAvg, OutputMin, OutputMax, OutputCount, OutputLast}
	}
	return nil
}

// DefaultOutput is the output a rule of type t emits when it lists none, and the one whose
// series keep the metric name unchanged; "" for an unknown type.
func (t Type) DefaultOutput() string {
	if o := t.Outputs(); len(o) > 0 {
		return o[0]
	}
	return ""
}
