package aggregator

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// outputMetadata is the metadata (type, unit, help) of the aggregator's output series,
// derived from what agents declare for the inputs of each rule (see CheckMetadata), for the
// sinks to send downstream: Remote Write 1.0 as metadata messages, 2.0 inline. Readers load
// an immutable table; a change of an input's metadata, which is rare, builds a new one.
type outputMetadata struct {
	mu    sync.Mutex // serialises writers
	table atomic.Pointer[metadataTable]
}

// metadataChangeEvery bounds how often the unit or help of one input may change: agents
// that disagree (two versions of an exporter) must not rebuild the table every request.
// A change of type is taken at once.
const metadataChangeEvery = time.Minute

// inputMetadata is what was last recorded of one input metric of one rule, and when.
type inputMetadata struct {
	md prompb.MetricMetadata
	at time.Time
}

// metaKey is one input metric name of one rule.
type metaKey struct {
	r    *ruleState
	name string
}

// metadataTable is one immutable generation of the output metadata.
type metadataTable struct {
	// inputs is what was last recorded for each (rule, input metric name): record
	// compares against it without locking or allocating.
	inputs map[metaKey]inputMetadata
	// byName maps an output series' metric name to its family's metadata.
	byName map[string]prompb.MetricMetadata
	// families are the distinct families, sorted by name.
	families []prompb.MetricMetadata
	// from maps each output name to the input that gave it its metadata.
	from map[string]metaKey
}

// changed reports whether md, declared at now for input metric name of rule r, is to be
// recorded: none is, or one of another type, or of another unit or help recorded
// metadataChangeEvery ago or more. It takes no lock and allocates nothing.
func (m *outputMetadata) changed(r *ruleState, name string, md *prompb.MetricMetadata, now time.Time) bool {
	t := m.table.Load()
	if t == nil {
		return true
	}
	old, ok := t.inputs[metaKey{r, name}]
	switch {
	case !ok || old.md.Type != md.Type:
		return true
	case old.md.Unit == md.Unit && old.md.Help == md.Help:
		return false
	}
	return now.Sub(old.at) >= metadataChangeEvery
}

// record sets the metadata of the outputs rule r makes of its input metric name from md,
// the metadata an agent declares for that input at now.
func (m *outputMetadata) record(r *ruleState, name string, md *prompb.MetricMetadata, now time.Time) {
	if !m.changed(r, name, md, now) {
		return
	}
	in := prompb.MetricMetadata{Type: md.Type, Unit: strings.Clone(md.Unit), Help: strings.Clone(md.Help)}
	name = strings.Clone(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.changed(r, name, md, now) { // another request recorded it meanwhile
		return
	}
	next := m.copyTable()
	next.inputs[metaKey{r, name}] = inputMetadata{md: in, at: now}
	outputs := r.rule.Outputs
	if len(outputs) == 0 {
		outputs = []string{r.rule.Type.DefaultOutput()}
	}
	for _, o := range outputs {
		out := r.rule.OutputMetricName(name, o)
		next.byName[out] = outputMetadataOf(r.rule, o, name, out, in)
		next.from[out] = metaKey{r, name}
	}
	m.publish(next)
}

// prune forgets the metadata of rules no longer in use, after a reload.
func (m *outputMetadata) prune(live []*ruleState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.copyTable()
	for k := range next.inputs {
		if !slices.Contains(live, k.r) {
			delete(next.inputs, k)
		}
	}
	for out, k := range next.from {
		if !slices.Contains(live, k.r) {
			delete(next.byName, out)
			delete(next.from, out)
		}
	}
	m.publish(next)
}

// copyTable returns a writable copy of the current table; m.mu is held.
func (m *outputMetadata) copyTable() *metadataTable {
	next := &metadataTable{inputs: map[metaKey]inputMetadata{}, byName: map[string]prompb.MetricMetadata{}, from: map[string]metaKey{}}
	if t := m.table.Load(); t != nil {
		maps.Copy(next.inputs, t.inputs)
		maps.Copy(next.byName, t.byName)
		maps.Copy(next.from, t.from)
	}
	return next
}

// publish lists t's families and makes it the current table; m.mu is held.
func (m *outputMetadata) publish(t *metadataTable) {
	seen := map[string]bool{}
	for _, md := range t.byName {
		if !seen[md.MetricFamilyName] {
			seen[md.MetricFamilyName] = true
			t.families = append(t.families, md)
		}
	}
	slices.SortFunc(t.families, func(a, b prompb.MetricMetadata) int {
		return strings.Compare(a.MetricFamilyName, b.MetricFamilyName)
	})
	m.table.Store(t)
}

// outputMetadataOf is the metadata of output series out, output kind o of rule r on input
// metric name in, whose declared metadata is md:
//   - a counter's total is a counter, a histogram's or summary's total is a histogram or
//     summary of the family the components share (x_bucket, x_sum, x_count: x); every other
//     output is a gauge (a native histogram's increase or rate, a gauge histogram), its own
//     family: its name carries the output kind after the component suffix;
//   - the unit is the input's, except for rate (per second) and count (of series);
//   - the help is the input's, and says which aggregate an output other than the plain-named
//     one is.
func outputMetadataOf(r *rules.Rule, o, in, out string, md prompb.MetricMetadata) prompb.MetricMetadata {
	res := prompb.MetricMetadata{MetricFamilyName: out, Unit: md.Unit, Help: md.Help}
	component := rules.ComponentSuffix(r.Type, in)
	switch {
	case r.Type == rules.Gauge, o != rules.OutputTotal && component != "":
		res.Type = prompb.MetricMetadata_GAUGE
	case r.Type == rules.Counter && o == rules.OutputTotal:
		res.Type = prompb.MetricMetadata_COUNTER
	case r.Type == rules.Counter:
		res.Type = prompb.MetricMetadata_GAUGE
	case o != rules.OutputTotal: // a native histogram's increase or rate
		res.Type = prompb.MetricMetadata_GAUGEHISTOGRAM
	case r.Type == rules.Histogram:
		res.Type = prompb.MetricMetadata_HISTOGRAM
		res.MetricFamilyName = strings.TrimSuffix(out, component)
	default:
		res.Type = prompb.MetricMetadata_SUMMARY
		res.MetricFamilyName = strings.TrimSuffix(out, component)
	}
	if o == rules.OutputRate || o == rules.OutputCount {
		res.Unit = ""
	}
	if !r.PlainOutput(o) {
		res.Help = strings.TrimSpace(md.Help + " (" + o + " per window, aggregated by cardinal)")
	}
	return res
}

// MetadataOf returns the metadata of the output series named name, if agents declared
// metadata for its input.
func (a *Aggregator) MetadataOf(name string) (prompb.MetricMetadata, bool) {
	t := a.outMeta.table.Load()
	if t == nil {
		return prompb.MetricMetadata{}, false
	}
	md, ok := t.byName[name]
	return md, ok
}

// Metadata returns the metadata of every output family known, sorted by family name. The
// slice is shared: callers must not modify it.
func (a *Aggregator) Metadata() []prompb.MetricMetadata {
	if t := a.outMeta.table.Load(); t != nil {
		return t.families
	}
	return nil
}
