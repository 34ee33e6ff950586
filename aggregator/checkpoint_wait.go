package aggregator

import (
	"errors"

	"github.com/prometheus/prometheus/model/histogram"
)

// The wait state of a rule shard (from checkpoint version 4) closes its frame, after the
// inputs: what a cluster member needs to go on waiting for a handoff across a restart, and
// to write no window that an output's previous owner wrote.
//
//	per output slot in use, in order: emittedK (varint), flags (bit 0 held, bit 1 stray)
//	len(firsts), per first: input hash, t, v, output index, counts (from version 5)
//	len(native outputs), per output: hash, emittedK, flags
//	len(native firsts), per first: input hash, t, histogram, output hash, counts (from
//	version 5)
//
// Without it (an older checkpoint, or one of an older version), a member restarted while it
// held outputs for a handoff wrote them at once from its own part: a reset downstream.
//
// counts (a byte, 0 or 1) is firstSample's and nativeFirst's: whether the first sample counts
// in full when no handoff bridges it (its created timestamp said the series started from
// zero while the rule watched). A version 4 checkpoint has none: its first samples are
// restored as baselines, so a restarted member short of them loses the series' first value
// when its wait ends without a handoff, or when it hands a stray's first sample on.

// waitFlags packs an output's held and stray.
func waitFlags(held, stray bool) byte {
	var f byte
	if held {
		f |= 1
	}
	if stray {
		f |= 2
	}
	return f
}

// outputWait is the wait state of one output, copied under the shard lock.
type outputWait struct {
	hash     uint64 // native outputs only
	emittedK int64
	flags    byte
}

// keyedFirst is one entry of a shard's firsts, copied under the shard lock.
type keyedFirst struct {
	key uint64
	t   int64
	v   float64
	h   *histogram.FloatHistogram // native: never changed once taken
	out uint64                    // output index, or native output hash
	// counts is firstSample's or nativeFirst's.
	counts bool
}

// copyWaits copies the wait state of rs, under its lock, for writeWaits.
func (e *shardEncoder) copyWaits(rs *ruleShard) {
	e.waits, e.firsts = e.waits[:0], e.firsts[:0]
	e.nativeWaits, e.nativeFirsts = e.nativeWaits[:0], e.nativeFirsts[:0]
	for _, o := range rs.outputs {
		if o != nil {
			e.waits = append(e.waits, outputWait{emittedK: o.emittedK, flags: waitFlags(o.held, o.stray)})
		}
	}
	for key, f := range rs.firsts {
		e.firsts = append(e.firsts, keyedFirst{key: key, t: f.t, v: f.v, out: uint64(f.out), counts: f.counts})
	}
	if ns := rs.native; ns != nil {
		for hash, o := range ns.outputs {
			e.nativeWaits = append(e.nativeWaits, outputWait{hash: hash, emittedK: o.emittedK, flags: waitFlags(o.held, o.stray)})
		}
		for key, f := range ns.firsts {
			e.nativeFirsts = append(e.nativeFirsts, keyedFirst{key: key, t: f.t, h: f.h, out: f.out.hash, counts: f.counts})
		}
	}
}

// writeWaits encodes what copyWaits copied, in the shard frame of version (4 or later).
func (e *shardEncoder) writeWaits(version uint64) {
	e.uvarint(uint64(len(e.waits)))
	for _, w := range e.waits {
		e.varint(w.emittedK)
		e.buf = append(e.buf, w.flags)
	}
	e.uvarint(uint64(len(e.firsts)))
	for _, f := range e.firsts {
		e.u64(f.key)
		e.varint(f.t)
		e.float(f.v)
		e.uvarint(f.out)
		if version >= 5 {
			e.bool(f.counts)
		}
	}
	e.uvarint(uint64(len(e.nativeWaits)))
	for _, w := range e.nativeWaits {
		e.u64(w.hash)
		e.varint(w.emittedK)
		e.buf = append(e.buf, w.flags)
	}
	e.uvarint(uint64(len(e.nativeFirsts)))
	for _, f := range e.nativeFirsts {
		e.u64(f.key)
		e.varint(f.t)
		e.histogram(f.h)
		e.u64(f.out)
		if version >= 5 {
			e.bool(f.counts)
		}
	}
}

// waits decodes what writeWaits wrote into rs, whose outputs and native state are decoded.
// The first samples of a version 4 checkpoint, which has no counts, are baselines.
func (d *frameDecoder) waits(rs *ruleShard) {
	var countsLen int // the bytes of a first's counts
	if d.version >= 5 {
		countsLen = 1
	}
	n := d.count(2)
	i := 0
	for _, o := range rs.outputs {
		if o == nil {
			continue
		}
		if i == n {
			break
		}
		o.emittedK = d.varint()
		flags := d.byte()
		o.held, o.stray = flags&1 != 0, flags&2 != 0
		i++
	}
	if i != n {
		d.fail(errors.New("wait state of another number of outputs"))
		return
	}
	for range d.count(8 + 1 + 8 + 1 + countsLen) {
		key, f := d.u64(), firstSample{t: d.varint(), v: d.float()}
		out := d.uvarint()
		if countsLen > 0 {
			f.counts = d.bool()
		}
		if d.err != nil {
			return
		}
		if out >= uint64(len(rs.outputs)) || rs.outputs[out] == nil {
			d.fail(errors.New("first sample of a free output slot"))
			return
		}
		f.out = uint32(out)
		if rs.firsts == nil {
			rs.firsts = map[uint64]firstSample{}
		}
		rs.firsts[key] = f
	}
	for range d.count(8 + 1 + 1) {
		hash, emittedK, flags := d.u64(), d.varint(), d.byte()
		if d.err != nil {
			return
		}
		o := nativeOutputOf(rs, hash)
		if o == nil {
			d.fail(errors.New("wait state of an unknown native output"))
			return
		}
		o.emittedK, o.held, o.stray = emittedK, flags&1 != 0, flags&2 != 0
	}
	for range d.count(8 + 1 + 8 + countsLen) {
		key, t, h := d.u64(), d.varint(), d.histogram()
		outHash := d.u64()
		counts := countsLen > 0 && d.bool()
		if d.err != nil {
			return
		}
		o := nativeOutputOf(rs, outHash)
		if o == nil {
			d.fail(errors.New("first histogram of an unknown native output"))
			return
		}
		if rs.native.firsts == nil {
			rs.native.firsts = map[uint64]nativeFirst{}
		}
		rs.native.firsts[key] = nativeFirst{t: t, h: h, out: o, counts: counts}
	}
}

// nativeOutputOf returns the native output of rs with hash, or nil.
func nativeOutputOf(rs *ruleShard, hash uint64) *nativeOutput {
	if rs.native == nil {
		return nil
	}
	return rs.native.outputs[hash]
}
