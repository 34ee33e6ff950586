package aggregator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// errShortFrame is a frame whose payload ends before what it describes.
var errShortFrame = errors.New("frame ends early")

// frameDecoder reads the fields of one checkpoint frame written by shardEncoder. The first
// error sticks: the fields after it read as zero, and err says what went wrong.
type frameDecoder struct {
	b       []byte
	err     error
	strings []string
	// version is the checkpoint's (0 for a handoff): a shard frame of version 4 or later
	// ends with the shard's wait state.
	version uint64
	// legacy makes firstFlag rewrite a handoff for an older build (LegacyHandoff), counting
	// the flags it rewrote in legacyChanged.
	legacy        bool
	legacyChanged int
}

func (d *frameDecoder) reset(b []byte) {
	d.b, d.err, d.strings = b, nil, d.strings[:0]
}

func (d *frameDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *frameDecoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShortFrame)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *frameDecoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShortFrame)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *frameDecoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail(errShortFrame)
		return 0
	}
	x := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return x
}

func (d *frameDecoder) float() float64 { return math.Float64frombits(d.u64()) }

func (d *frameDecoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errShortFrame)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *frameDecoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(errors.New("bad flag"))
	return false
}

// int32 reads a varint that must fit an int32.
func (d *frameDecoder) int32() int32 {
	x := d.varint()
	if x < math.MinInt32 || x > math.MaxInt32 {
		d.fail(errors.New("value out of range"))
		return 0
	}
	return int32(x)
}

// count reads a length of elements that each take at least min bytes, refusing one the rest
// of the frame cannot hold: a damaged length must not make Restore allocate without limit.
func (d *frameDecoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail(errShortFrame)
		return 0
	}
	return int(n)
}

func (d *frameDecoder) string() string {
	i := d.uvarint()
	if i > 0 {
		if i > uint64(len(d.strings)) {
			d.fail(errors.New("unknown string reference"))
			return ""
		}
		return d.strings[i-1]
	}
	n := d.count(1)
	s := string(d.b[:n])
	d.b = d.b[n:]
	d.strings = append(d.strings, s)
	return s
}

func (d *frameDecoder) labelSets() [][]prompb.Label {
	sets := make([][]prompb.Label, d.count(1))
	for i := range sets {
		ls := make([]prompb.Label, d.count(2))
		for j := range ls {
			ls[j] = prompb.Label{Name: d.string(), Value: d.string()}
		}
		sets[i] = ls
	}
	return sets
}

// shard decodes a rule shard into rs, which is empty, and returns its live input and output
// series. nKinds is the rule's number of output kinds: every output has a label set for each.
func (d *frameDecoder) shard(rs *ruleShard, nKinds int) (inputs, outputs int64) {
	if !d.bool() {
		return 0, 0
	}
	rs.ready = true
	rs.maxT, rs.lastRecv, rs.closed = d.varint(), d.varint(), d.varint()

	rs.outputs = make([]*outputState, d.count(1))
	if len(rs.outputs) > maxOuts {
		d.fail(errors.New("too many outputs"))
		return 0, 0
	}
	rs.outputIdx = make(map[uint64]uint32, len(rs.outputs))
	for i := range rs.outputs {
		if !d.bool() {
			rs.free = append(rs.free, uint32(i))
			continue
		}
		o := newOutputState(d.u64(), d.labelSets(), 0)
		if len(o.labels) != nKinds {
			d.fail(fmt.Errorf("output has %d label sets, the rule %d kinds", len(o.labels), nKinds))
			return 0, 0
		}
		o.firstK, o.total, o.emitted = d.varint(), d.float(), d.bool()
		for range d.count(1 + 1 + 1 + 5*8 + 1) {
			w := windowAcc{k: d.varint(), samples: d.int32(), count: d.int32()}
			w.increase, w.sum, w.min, w.max, w.last = d.float(), d.float(), d.float(), d.float(), d.float()
			w.lastT = d.varint()
			if n := len(o.wins); n > 0 && o.wins[n-1].k >= w.k {
				d.fail(errors.New("windows out of order"))
			}
			o.wins = append(o.wins, w)
		}
		if _, dup := rs.outputIdx[o.hash]; dup {
			d.fail(errors.New("output hash twice"))
		}
		rs.outputs[i] = o
		rs.outputIdx[o.hash] = uint32(i)
		outputs++
	}
	// The free list in its order, so that new outputs take the slots they would have taken.
	if n := d.count(1); n != len(rs.free) {
		d.fail(fmt.Errorf("%d free output slots listed, %d free", n, len(rs.free)))
		return 0, 0
	}
	seen := make(map[uint32]bool, len(rs.free))
	for j := range rs.free {
		i := d.uvarint()
		if i >= uint64(len(rs.outputs)) || rs.outputs[i] != nil || seen[uint32(i)] {
			d.fail(errors.New("bad free output slot"))
			return 0, 0
		}
		seen[uint32(i)] = true
		rs.free[j] = uint32(i)
	}

	if d.bool() {
		ni, no := d.native(rs, nKinds)
		inputs, outputs = ni, outputs+no
	}

	inputs += d.inputs(rs)
	if d.version >= 4 {
		d.waits(rs)
	}
	rs.oldestT, rs.staleMarked = math.MaxInt64, false
	for i := range rs.inputs.slots {
		if s := &rs.inputs.slots[i]; s.key != 0 {
			in := s.state()
			rs.oldestT = min(rs.oldestT, in.t)
			rs.staleMarked = rs.staleMarked || value.IsStaleNaN(in.v)
		}
	}
	return inputs, outputs
}

// inputs decodes a shard's input table, each input in the slot it had, and counts each on
// its output.
func (d *frameDecoder) inputs(rs *ruleShard) int64 {
	size := d.uvarint()
	n := d.count(1 + 8 + 1 + 8 + 1)
	// A table is a power of two in size, at most 0.8 full, and halved once an eighth full.
	if d.err == nil && (size != 0 && bits.OnesCount64(size) != 1 || uint64(n)*5 > size*4 || size > uint64(max(minCap, 64*n))) {
		d.fail(fmt.Errorf("input table of %d slots for %d inputs", size, n))
	}
	if d.err != nil {
		return 0
	}
	rs.inputs = inputTable{slots: make([]inputSlot, size), n: n}
	i, prevT := -1, rs.maxT
	for range n {
		i += 1 + int(d.uvarint())
		key := d.u64()
		in := inputState{t: prevT + d.varint(), v: d.float(), out: uint32(d.uvarint())}
		prevT = in.t
		if d.err != nil {
			return 0
		}
		if i >= len(rs.inputs.slots) || key == 0 || int(in.out) >= len(rs.outputs) || rs.outputs[in.out] == nil {
			d.fail(errors.New("input out of place"))
			return 0
		}
		s := &rs.inputs.slots[i]
		s.key = key
		s.set(in)
		rs.outputs[in.out].live++
	}
	return int64(n)
}

// native decodes a shard's native-histogram state and returns its live inputs and outputs.
func (d *frameDecoder) native(rs *ruleShard, nKinds int) (inputs, outputs int64) {
	ns := newNativeShard()
	rs.native = ns
	for range d.count(8 + 1) {
		o := d.nativeOutput()
		if d.err == nil && len(o.labels) != nKinds {
			d.fail(fmt.Errorf("native output has %d label sets, the rule %d kinds", len(o.labels), nKinds))
		}
		if d.err != nil {
			return 0, 0
		}
		if _, dup := ns.outputs[o.hash]; dup {
			d.fail(errors.New("native output hash twice"))
		}
		ns.outputs[o.hash] = o
	}
	for range d.count(8 + 1 + 1 + 8) {
		hash := d.u64()
		in := &nativeInput{t: d.varint(), last: d.optHistogram()}
		in.out = ns.outputs[d.u64()]
		if d.err != nil {
			return 0, 0
		}
		if in.out == nil {
			d.fail(errors.New("native input of an unknown output"))
			return 0, 0
		}
		in.out.live++
		ns.inputs[hash] = in
	}
	ns.peak = len(ns.inputs)
	return int64(len(ns.inputs)), int64(len(ns.outputs))
}

// nativeOutput reads what shardEncoder.nativeOutput wrote.
func (d *frameDecoder) nativeOutput() *nativeOutput {
	o := &nativeOutput{hash: d.u64(), labels: d.labelSets(), firstK: d.varint()}
	o.layout, o.total, o.emitted = d.histogram(), d.optHistogram(), d.bool()
	for range d.count(4) {
		w := nativeWindow{k: d.varint(), samples: d.int32(), count: d.int32(), acc: d.optHistogram()}
		if n := len(o.wins); n > 0 && o.wins[n-1].k >= w.k {
			d.fail(errors.New("windows out of order"))
		}
		if w.count != 0 && w.acc == nil {
			d.fail(errors.New("a window counts histograms it does not hold"))
		}
		o.wins = append(o.wins, w)
	}
	return o
}

func (d *frameDecoder) optHistogram() *histogram.FloatHistogram {
	if !d.bool() {
		return nil
	}
	return d.histogram()
}

func (d *frameDecoder) histogram() *histogram.FloatHistogram {
	h := &histogram.FloatHistogram{CounterResetHint: histogram.CounterResetHint(d.byte()), Schema: d.int32()}
	h.ZeroThreshold, h.ZeroCount, h.Count, h.Sum = d.float(), d.float(), d.float(), d.float()
	h.PositiveSpans, h.PositiveBuckets = d.spans(), d.floats()
	h.NegativeSpans, h.NegativeBuckets = d.spans(), d.floats()
	h.CustomValues = d.floats()
	// Adding a histogram whose spans and buckets disagree panics, and one whose zero
	// threshold is NaN never returns: a corrupt frame is refused here instead. Spans of
	// length 0 are valid but trip the bucket walk of Add: they go.
	if err := h.Validate(); d.err == nil && err != nil {
		d.fail(fmt.Errorf("histogram: %w", err))
	}
	if !(h.ZeroThreshold >= 0) || math.IsInf(h.ZeroThreshold, 1) {
		d.fail(fmt.Errorf("histogram: zero threshold %g", h.ZeroThreshold))
	}
	if d.err == nil && (hasEmptySpan(h.PositiveSpans) || hasEmptySpan(h.NegativeSpans)) {
		h.Compact(0)
	}
	return h
}

// hasEmptySpan reports whether a span of spans has length 0.
func hasEmptySpan(spans []histogram.Span) bool {
	for _, s := range spans {
		if s.Length == 0 {
			return true
		}
	}
	return false
}

func (d *frameDecoder) spans() []histogram.Span {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	ss := make([]histogram.Span, n)
	for i := range ss {
		ss[i].Offset = d.int32()
		if l := d.uvarint(); l <= math.MaxUint32 {
			ss[i].Length = uint32(l)
		} else {
			d.fail(errors.New("span too long"))
		}
	}
	return ss
}

func (d *frameDecoder) floats() []float64 {
	n := d.count(8)
	if n == 0 {
		return nil
	}
	fs := make([]float64, n)
	for i := range fs {
		fs[i] = d.float()
	}
	return fs
}
