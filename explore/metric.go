package explore

import (
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// maxLabelsPerMetric bounds the labels a metric's detail tracks; a metric whose series carry
// more label names than that (label names made from data) is tracked by its first ones.
const maxLabelsPerMetric = 64

// metricStats is what a scan learned of one metric name.
type metricStats struct {
	name    string
	series  uint64        // distinct series (each is observed once per scan)
	samples atomic.Uint64 // added to under the explorer's read lock
	// priority orders metrics for the memory budget: the larger of this scan's series and
	// the last scan's, so a busy metric seen early in a scan is not shed for a quiet one.
	priority uint64
	detail   *detail // nil once shed (or created past the budget): counts only
}

// detail is a metric's per-label sketches.
type detail struct {
	// all sketches every series of the scan: a label first seen after some series starts
	// its without sketch as a copy, since the series before it did not carry it.
	all    sketch
	labels []*labelStats
	// chain is the order in which labels are dropped one after another, from the last
	// scan's ranking (empty in a metric's first scan); prefix[i] sketches the series left
	// after dropping chain[0..i].
	chain  []*labelStats
	prefix []sketch
	gen    uint64 // counts observed series, to tell which labels the current one carries
}

// labelStats is one label of a metric.
type labelStats struct {
	name    string
	series  uint64 // series that carry the label
	values  sketch // the label's distinct values
	without sketch // the series that remain when the label is dropped
	// cur is the hash of the label in the series being observed, valid when gen matches
	// the detail's.
	cur uint64
	gen uint64
}

// newDetail returns the detail of a metric whose labels are dropped in chain order (names
// absent from its series are ignored), and the bytes it is charged.
func newDetail(chain []string) (*detail, int64) {
	d := &detail{}
	var charged int64 = 64
	d.all, charged = newSketch()
	charged += 64
	for _, name := range chain {
		ls, c := d.add(name)
		charged += c
		d.chain = append(d.chain, ls)
		s, c := newSketch()
		d.prefix = append(d.prefix, s)
		charged += c
	}
	return d, charged
}

// add appends a label and returns it with the bytes it is charged. Its without sketch
// starts as a copy of all: the series seen so far did not carry the label, so dropping it
// leaves them as they are.
func (d *detail) add(name string) (*labelStats, int64) {
	ls := &labelStats{name: name}
	var c1, c2 int64
	ls.values, c1 = newSketch()
	ls.without, c2 = newSketch()
	if d.all.inserts > 0 {
		ls.without = sketch{hll: d.all.hll.Clone(), inserts: d.all.inserts, charged: d.all.charged}
		c2 = d.all.charged
	}
	d.labels = append(d.labels, ls)
	return ls, 96 + int64(len(name)) + c1 + c2
}

// label returns the stats of the label named name, the i-th of a series, creating them (and
// charging *charged) if new; nil past maxLabelsPerMetric. Series of a metric mostly carry the
// same labels in the same order, so the i-th is tried first.
func (d *detail) label(name string, i int, charged *int64) *labelStats {
	if i >= 0 && i < len(d.labels) && d.labels[i].name == name {
		return d.labels[i]
	}
	for _, ls := range d.labels {
		if ls.name == name {
			return ls
		}
	}
	if len(d.labels) >= maxLabelsPerMetric {
		return nil
	}
	ls, c := d.add(strings.Clone(name)) // name points into the request
	*charged += c
	return ls
}

// observe adds a series new to the scan and returns the bytes it charged. Each label is
// hashed once (name and value); the series' hash is the sum of its labels' hashes, so the
// hash of the series without a label is one subtraction. A sum of independent uniform
// hashes is uniform, which is all a HyperLogLog sketch needs of its input.
func (d *detail) observe(lbls []prompb.Label, scratch []byte) (charged int64, _ []byte) {
	d.gen++
	var all uint64
	pos := 0 // the label's position among the series' labels other than __name__
	for i := range lbls {
		l := &lbls[i]
		if l.Name == rules.MetricNameLabel {
			continue
		}
		scratch = append(append(append(scratch[:0], l.Name...), 0xff), l.Value...)
		h := xxhash.Sum64(scratch)
		all += h
		ls := d.label(l.Name, pos, &charged)
		pos++
		if ls == nil {
			continue
		}
		ls.cur, ls.gen = h, d.gen
		ls.series++
		charged += ls.values.insert(h)
	}
	for _, ls := range d.labels {
		if ls.gen == d.gen {
			charged += ls.without.insert(all - ls.cur)
		} else {
			charged += ls.without.insert(all)
		}
	}
	charged += d.all.insert(all)
	rest := all
	for i, ls := range d.chain {
		if ls.gen == d.gen {
			rest -= ls.cur
		}
		charged += d.prefix[i].insert(rest)
	}
	return charged, scratch
}

// charged is what the detail is charged in all, to give back when it is shed.
func (d *detail) charged() int64 {
	c := int64(64) + d.all.charged
	for _, ls := range d.labels {
		c += 96 + int64(len(ls.name)) + ls.values.charged + ls.without.charged
	}
	for i := range d.prefix {
		c += d.prefix[i].charged
	}
	return c
}
