package aggregator

import (
	"encoding/binary"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
)

// shardEncoder encodes one checkpoint frame. It runs under a shard lock, so it does little
// more than append to a buffer that is reused from frame to frame.
//
// A rule shard's frame is a ready flag (nothing follows when it is 0), then:
//
//	maxT lastRecv closed                          varints
//	len(outputs), per slot: 0 (free) or 1 hash labels firstK total emitted windows
//	the free output slots, in their order
//	native flag, then its outputs (hash labels firstK layout total? emitted windows) and
//	inputs (hash t last? output hash)
//	len(input slots) n, per input: empty slots skipped, key, t − previous t, v, output index
//	the wait state (checkpoint_wait.go; from version 4)
//
// Slot positions are kept, of outputs and inputs alike, so that a restored shard is laid out
// as it was and a window close visits its series in the same order: a gauge's sum is then
// added up in the same order, bit for bit. Live counts, the free list, the output index,
// oldestT and staleMarked follow from the rest and are rebuilt by Restore. Label strings are
// interned per frame: the first use writes the string, later ones its number.
type shardEncoder struct {
	buf     []byte
	strings map[string]uint64

	slots []inputSlot // a copy of the input table of the shard being encoded
	n     int
	maxT  int64

	// A copy of the shard's wait state (checkpoint_wait.go).
	waits, nativeWaits   []outputWait
	firsts, nativeFirsts []keyedFirst
}

func (e *shardEncoder) reset() {
	e.buf = e.buf[:0]
	if e.strings == nil {
		e.strings = map[string]uint64{}
	}
	clear(e.strings)
}

func (e *shardEncoder) uvarint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }
func (e *shardEncoder) varint(x int64)   { e.buf = binary.AppendVarint(e.buf, x) }
func (e *shardEncoder) u64(x uint64)     { e.buf = binary.LittleEndian.AppendUint64(e.buf, x) }
func (e *shardEncoder) float(f float64)  { e.u64(math.Float64bits(f)) }

func (e *shardEncoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// string writes s as 0, its length and bytes the first time in a frame, and as its number
// plus one after that.
func (e *shardEncoder) string(s string) {
	if i, ok := e.strings[s]; ok {
		e.uvarint(i + 1)
		return
	}
	e.strings[s] = uint64(len(e.strings))
	e.uvarint(0)
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// labelSets writes an output's label set per output kind.
func (e *shardEncoder) labelSets(sets [][]prompb.Label) {
	e.uvarint(uint64(len(sets)))
	for _, ls := range sets {
		e.uvarint(uint64(len(ls)))
		for _, l := range ls {
			e.string(l.Name)
			e.string(l.Value)
		}
	}
}

// shard encodes one rule shard, but for its inputs, which it copies for inputs to encode
// once the lock is released; it reports whether the shard was ready (held state).
func (e *shardEncoder) shard(rs *ruleShard) bool {
	e.bool(rs.ready)
	if !rs.ready {
		return false
	}
	e.varint(rs.maxT)
	e.varint(rs.lastRecv)
	e.varint(rs.closed)

	e.uvarint(uint64(len(rs.outputs)))
	for _, o := range rs.outputs {
		e.bool(o != nil)
		if o == nil {
			continue
		}
		e.u64(o.hash)
		e.labelSets(o.labels)
		e.varint(o.firstK)
		e.float(o.total)
		e.bool(o.emitted)
		e.uvarint(uint64(len(o.wins)))
		for i := range o.wins {
			e.window(&o.wins[i])
		}
	}
	e.uvarint(uint64(len(rs.free)))
	for _, i := range rs.free {
		e.uvarint(uint64(i))
	}

	e.bool(rs.native != nil)
	if rs.native != nil {
		e.native(rs.native)
	}

	// The input table is copied, not encoded, under the lock: a copy is several times
	// quicker, and inputs are most of a checkpoint. inputs encodes the copy.
	e.slots = append(e.slots[:0], rs.inputs.slots...)
	e.n, e.maxT = rs.inputs.n, rs.maxT
	e.copyWaits(rs)
	return true
}

// inputs encodes the input table that shard copied, after the shard lock is released.
func (e *shardEncoder) inputs() {
	e.uvarint(uint64(len(e.slots)))
	e.uvarint(uint64(e.n))
	prev, prevT := -1, e.maxT
	for i := range e.slots {
		s := &e.slots[i]
		if s.key == 0 {
			continue
		}
		in := s.state()
		e.uvarint(uint64(i - prev - 1))
		e.u64(s.key)
		e.varint(in.t - prevT)
		e.float(in.v)
		e.uvarint(uint64(in.out))
		prev, prevT = i, in.t
	}
}

// window writes one open window of a float output.
func (e *shardEncoder) window(w *windowAcc) {
	e.varint(w.k)
	e.varint(int64(w.samples))
	e.varint(int64(w.count))
	e.float(w.increase)
	e.float(w.sum)
	e.float(w.min)
	e.float(w.max)
	e.float(w.last)
	e.varint(w.lastT)
}

// native writes a shard's native-histogram state: outputs first, so that Restore can resolve
// the inputs' references to them by hash.
func (e *shardEncoder) native(ns *nativeShard) {
	e.uvarint(uint64(len(ns.outputs)))
	for _, o := range ns.outputs {
		e.nativeOutput(o)
	}
	e.uvarint(uint64(len(ns.inputs)))
	for hash, in := range ns.inputs {
		e.u64(hash)
		e.varint(in.t)
		e.optHistogram(in.last)
		e.u64(in.out.hash)
	}
}

// nativeOutput writes one native output: its hash, labels, first window, bucket layout,
// running total, whether it emitted, and its open windows.
func (e *shardEncoder) nativeOutput(o *nativeOutput) {
	e.u64(o.hash)
	e.labelSets(o.labels)
	e.varint(o.firstK)
	e.histogram(o.layout)
	e.optHistogram(o.total)
	e.bool(o.emitted)
	e.uvarint(uint64(len(o.wins)))
	for _, w := range o.wins {
		e.varint(w.k)
		e.varint(int64(w.samples))
		e.varint(int64(w.count))
		e.optHistogram(w.acc)
	}
}

// optHistogram writes a presence flag and, when present, the histogram.
func (e *shardEncoder) optHistogram(h *histogram.FloatHistogram) {
	e.bool(h != nil)
	if h != nil {
		e.histogram(h)
	}
}

// histogram writes every field of a float histogram.
func (e *shardEncoder) histogram(h *histogram.FloatHistogram) {
	e.buf = append(e.buf, byte(h.CounterResetHint))
	e.varint(int64(h.Schema))
	e.float(h.ZeroThreshold)
	e.float(h.ZeroCount)
	e.float(h.Count)
	e.float(h.Sum)
	e.spans(h.PositiveSpans)
	e.floats(h.PositiveBuckets)
	e.spans(h.NegativeSpans)
	e.floats(h.NegativeBuckets)
	e.floats(h.CustomValues)
}

func (e *shardEncoder) spans(ss []histogram.Span) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.varint(int64(s.Offset))
		e.uvarint(uint64(s.Length))
	}
}

func (e *shardEncoder) floats(fs []float64) {
	e.uvarint(uint64(len(fs)))
	for _, f := range fs {
		e.float(f)
	}
}
