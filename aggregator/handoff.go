package aggregator

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// Ownership tells the flusher which output series this member writes, in a cluster whose
// ring can change (docs/design.md §5).
type Ownership interface {
	// Owns reports whether this member writes the output with placement key key. The
	// state of an output it does not own is handed off to its owner instead of emitted.
	Owns(key uint64) bool
	// Awaits reports whether a handoff of key's state from its previous owner may still
	// come (this member gained it in a recent ring change): until it comes, or the wait is
	// over, a new output of key is aggregated but not emitted, so that downstream never
	// sees it restart from zero.
	Awaits(key uint64) bool
}

// SetOwnership makes the flusher hand off the outputs o says this member does not own; nil
// (the default) owns everything.
func (a *Aggregator) SetOwnership(o Ownership) {
	if o == nil {
		a.own.Store(nil)
		return
	}
	a.own.Store(&o)
}

// ownership returns the Ownership in force, or nil.
func (a *Aggregator) ownership() Ownership {
	if p := a.own.Load(); p != nil {
		return *p
	}
	return nil
}

// handoffMagic opens an encoded Handoff of float outputs only, which every version reads;
// handoffMagicNative one that also has native-histogram outputs: the float outputs (after
// their count), then the native ones.
const (
	handoffMagic       = "CRDLHOFF\x01"
	handoffMagicNative = "CRDLHOFF\x02"
)

// Handoff is the state of output series this member no longer owns, taken out of the
// aggregator by a flush for their owners: per output its labels, running total, open windows
// and the inputs that feed it (their last samples), which is what the owner needs to go on
// as if it had aggregated them from the start.
type Handoff struct {
	Outputs []HandoffOutput
	Native  []HandoffNative
}

// HandoffOutput is one output series of a Handoff.
type HandoffOutput struct {
	// Key is the output's placement key: it says which member owns it.
	Key uint64
	// rule is the fingerprint of the rule; closed the newest window the exporting member
	// had closed (and emitted, while it owned the output).
	rule   uint64
	closed int64
	out    outputState
	inputs []handoffInput
}

type handoffInput struct {
	hash uint64
	t    int64
	v    float64
	// first is the input's first sample here when it began here as a baseline (its value
	// not counted): the owner counts the increase to it from its own last sample.
	first    firstSample
	hasFirst bool
}

// A handoff says of each input whether it has a first sample (hasFirst), and of one whether
// it counts (firstSample.counts): the input began at the sender as a baseline (a stray's
// first sample always does) although its created timestamp says the series started from
// zero while the rule watched. Without it, a receiver that knew the input no earlier took
// the sample for a baseline, and the output lost the series' first value for good, which
// one member alone counts. The flag is a byte: 0 none, 1 a baseline, 2 one that counts; a
// member of an older version refuses a 2 (a 400) rather than misreading it.
const (
	firstNone byte = iota
	firstBaseline
	firstCounts
)

// firstFlag writes whether an input has a first sample, and whether it counts.
func (e *shardEncoder) firstFlag(has, counts bool) {
	switch {
	case !has:
		e.buf = append(e.buf, firstNone)
	case counts:
		e.buf = append(e.buf, firstCounts)
	default:
		e.buf = append(e.buf, firstBaseline)
	}
}

// firstFlag reads what shardEncoder.firstFlag wrote. A legacy decoder (LegacyHandoff)
// writes a 2 it reads over as a 1.
func (d *frameDecoder) firstFlag() (has, counts bool) {
	if d.legacy && len(d.b) > 0 && d.b[0] == firstCounts {
		d.b[0] = firstBaseline
		d.legacyChanged++
	}
	switch d.byte() {
	case firstNone:
		return false, false
	case firstBaseline:
		return true, false
	case firstCounts:
		return true, true
	}
	d.fail(errors.New("bad first sample flag"))
	return false, false
}

// Len is the number of output series in h.
func (h *Handoff) Len() int { return len(h.Outputs) + len(h.Native) }

// Encode returns the outputs for which keep is true in the form Merge reads, or nil if there
// are none.
func (h *Handoff) Encode(keep func(key uint64) bool) []byte {
	var floats, natives []int
	for i := range h.Outputs {
		if keep(h.Outputs[i].Key) {
			floats = append(floats, i)
		}
	}
	for i := range h.Native {
		if keep(h.Native[i].Key) {
			natives = append(natives, i)
		}
	}
	if len(floats)+len(natives) == 0 {
		return nil
	}
	var e shardEncoder
	e.reset()
	if len(natives) == 0 {
		e.buf = append(e.buf, handoffMagic...)
	} else {
		e.buf = append(e.buf, handoffMagicNative...)
		e.uvarint(uint64(len(floats)))
	}
	for _, i := range floats {
		ho := &h.Outputs[i]
		e.u64(ho.rule)
		e.varint(ho.closed)
		e.u64(ho.out.hash)
		e.labelSets(ho.out.labels)
		e.varint(ho.out.firstK)
		e.float(ho.out.total)
		e.bool(ho.out.emitted)
		e.uvarint(uint64(len(ho.out.wins)))
		for j := range ho.out.wins {
			e.window(&ho.out.wins[j])
		}
		e.uvarint(uint64(len(ho.inputs)))
		for _, in := range ho.inputs {
			e.u64(in.hash)
			e.varint(in.t)
			e.float(in.v)
			e.firstFlag(in.hasFirst, in.first.counts)
			if in.hasFirst {
				e.varint(in.first.t)
				e.float(in.first.v)
			}
		}
	}
	for _, i := range natives {
		e.handoffNative(&h.Native[i])
	}
	return e.buf
}

// takeOut says which outputs an export takes out of a rule shard: the flush's those this
// member does not own (unowned), Forget's those a handoff names.
type takeOut interface {
	takes(place, hash uint64) bool
}

// unowned is the takeOut of the outputs an Ownership says this member does not own.
type unowned struct{ own Ownership }

func (u unowned) takes(place, _ uint64) bool { return !u.own.Owns(place) }

// exportUnowned takes out of one rule shard, under its lock, the outputs this member does
// not own (take, an unowned) into h, and counts them as handed off.
func (r *ruleState) exportUnowned(rs *ruleShard, take takeOut, h *Handoff) {
	n := h.Len()
	r.export(rs, take, h)
	rs.stats.handedOff += uint64(h.Len() - n)
}

// export takes out of one rule shard, under its lock, the outputs take says, with the inputs
// that feed them, and appends them to h.
func (r *ruleState) export(rs *ruleShard, take takeOut, h *Handoff) {
	r.exportNative(rs, take, h)
	var gone map[uint32]int // output index -> its position in h.Outputs
	for idx, o := range rs.outputs {
		if o == nil || !take.takes(o.place, o.hash) {
			continue
		}
		if gone == nil {
			gone = map[uint32]int{}
		}
		gone[uint32(idx)] = len(h.Outputs)
		delete(rs.exemplars, o.hash) // the owner keeps its own; these would stay here for good
		h.Outputs = append(h.Outputs, HandoffOutput{Key: o.place, rule: r.rule.Fingerprint, closed: writtenUpTo(o.emitted, o.emittedK, rs.closed), out: *o})
		// The copy's windows must not share the array of o, which the shard reuses.
		ho := &h.Outputs[len(h.Outputs)-1]
		ho.out.wins = append([]windowAcc(nil), o.wins...)
	}
	if gone == nil {
		return
	}
	rs.gone = rs.gone[:0]
	for i := range rs.inputs.slots {
		s := &rs.inputs.slots[i]
		if s.key == 0 {
			continue
		}
		in := s.state()
		if at, ok := gone[in.out]; ok {
			hi := handoffInput{hash: s.key, t: in.t, v: in.v}
			hi.first, hi.hasFirst = rs.firsts[s.key]
			delete(rs.firsts, s.key)
			h.Outputs[at].inputs = append(h.Outputs[at].inputs, hi)
			r.inputs.Add(-1)
			rs.gone = append(rs.gone, s.key)
		}
	}
	for _, key := range rs.gone {
		rs.inputs.delete(key)
	}
	rs.inputs.shrink()
	// The first samples of inputs that ended while their output waited go too: kept, they
	// would stay for good, and a new output in the same slot would find them.
	for key, f := range rs.firsts {
		if _, ok := gone[f.out]; ok {
			delete(rs.firsts, key)
		}
	}
	for idx := range gone {
		rs.removeOutput(idx)
		r.outputN.Add(-1)
	}
}

// writtenUpTo is the closed window a handoff of an output claims written: the newest one
// written for it, here or by a previous owner (emittedK), when it was ever written. This
// member closed windows after it without writing them when it held the output for a handoff
// of its own (the output moved on before that handoff came): claimed as written, nobody
// would write them. An output never written claims the shard's closed window, which its
// receiver starts the rule from, and which it does not take as written (merge).
func writtenUpTo(emitted bool, emittedK, closed int64) int64 {
	if emitted && emittedK > 0 {
		return emittedK // after the shard's closed when a previous owner was ahead of it
	}
	return closed
}

// MergeStats is what Merge made of a handoff.
type MergeStats struct {
	// Outputs merged; Unknown of them belonged to a rule this member does not have (the
	// members' rules differ) and were dropped.
	Outputs, Unknown int
	// Inputs merged; Bridged of them this member had started too, whose increase across
	// the change of owner was restored.
	Inputs, Bridged int
	// Late outputs came after this member had gone on from its own state and written them
	// (the handoff timeout ended its wait): their totals and windows are left out, only
	// their inputs merged (lateHandoff).
	Late int
}

// Merge adds the state of a handoff (Handoff.Encode's) to this member's, output by output,
// as if this member had aggregated their inputs from the start: running totals and open
// windows add up, inputs it lacks are taken over, and for an input it began itself after the
// ring changed, the increase between the previous owner's last sample and its own first is
// counted. An output it held waiting for the handoff is released.
func (a *Aggregator) Merge(b []byte) (MergeStats, error) {
	st, _, err := a.MergeOnce("", b)
	return st, err
}

// MergeOnce is Merge for a handoff named id (its sender's, the same on every attempt to
// deliver it): one already merged, here or before a restart from a checkpoint that holds
// it, is not merged again, and already is true. The id is recorded with the merged state,
// under the lock that checkpoints and flushes take, so a checkpoint holds both or neither.
// An empty id is always merged.
func (a *Aggregator) MergeOnce(id string, b []byte) (st MergeStats, already bool, err error) {
	// The rules cannot change while mu is held (SetRules holds it too), and taking it alone
	// keeps the order SetRules takes its locks in (mu, then swap).
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.MergeOnceHeld(id, b)
}

// MergeOnceHeld is MergeOnce for a caller that holds HoldFlushes: one that must order the
// merge with what it does around it (the router logs it while no request is ingested).
func (a *Aggregator) MergeOnceHeld(id string, b []byte) (st MergeStats, already bool, err error) {
	native, ok := handoffFormat(b)
	if !ok {
		return st, false, errors.New("not a cardinal handoff")
	}
	now := a.opts.Now()
	if a.merged.has(id, now) {
		return st, true, nil
	}
	st, err = a.merge(b, native, now)
	if err == nil {
		a.merged.add(id, now)
	}
	return st, false, err
}

// handoffFloat reads one float output of a handoff body (Handoff.Encode's).
func (d *frameDecoder) handoffFloat() (fp uint64, closed int64, o *outputState, inputs []handoffInput) {
	fp, closed, hash := d.u64(), d.varint(), d.u64()
	labels := d.labelSets()
	o = newOutputState(hash, labels, d.varint())
	o.total, o.emitted = d.float(), d.bool()
	for range d.count(1 + 1 + 1 + 5*8 + 1) {
		w := windowAcc{k: d.varint(), samples: d.int32(), count: d.int32()}
		w.increase, w.sum, w.min, w.max, w.last = d.float(), d.float(), d.float(), d.float(), d.float()
		w.lastT = d.varint()
		o.wins = append(o.wins, w)
	}
	inputs = make([]handoffInput, d.count(8+1+8+1))
	for i := range inputs {
		inputs[i] = handoffInput{hash: d.u64(), t: d.varint(), v: d.float()}
		var counts bool
		if inputs[i].hasFirst, counts = d.firstFlag(); inputs[i].hasFirst {
			inputs[i].first = firstSample{t: d.varint(), v: d.float(), counts: counts}
		}
	}
	return fp, closed, o, inputs
}

// handoffFormat reports whether b opens as a handoff body (Handoff.Encode's), and whether as
// one with native-histogram outputs.
func handoffFormat(b []byte) (native, ok bool) {
	native = len(b) >= len(handoffMagicNative) && string(b[:len(handoffMagicNative)]) == handoffMagicNative
	return native, native || (len(b) >= len(handoffMagic) && string(b[:len(handoffMagic)]) == handoffMagic)
}

// eachHandoffOutput decodes the outputs of handoff body b (of the format handoffFormat
// found) in order, giving each float one to float and each native one to nat, until the
// body ends or a decoding error (d.err, which they may set too) stops it.
func (d *frameDecoder) eachHandoffOutput(b []byte, native bool,
	float func(fp uint64, closed int64, o *outputState, inputs []handoffInput),
	nat func(fp uint64, closed int64, o *nativeOutput, inputs []nativeHandoffInput)) {
	d.reset(b[len(handoffMagic):])
	nFloats := -1 // all that follows
	if native {
		nFloats = int(d.count(1))
	}
	for ; len(d.b) > 0 && d.err == nil && nFloats != 0; nFloats-- {
		fp, closed, o, inputs := d.handoffFloat()
		if d.err != nil {
			return
		}
		float(fp, closed, o, inputs)
	}
	for native && len(d.b) > 0 && d.err == nil {
		fp, closed, o, inputs := d.handoffNative()
		if d.err != nil {
			return
		}
		nat(fp, closed, o, inputs)
	}
}

// LegacyHandoff returns a copy of a handoff body (Handoff.Encode's) in which every first
// sample that counts (flag 2) is a baseline (flag 1), as builds before 2026-12-05 read
// handoffs: they refuse a 2, and with it the whole handoff. changed is false, and out nil,
// when it has none (or cannot be read). The owner then takes those first samples for
// baselines: each such series is short of its first value there, rather than every output
// of the handoff starting again from zero.
func LegacyHandoff(b []byte) (out []byte, changed bool) {
	native, ok := handoffFormat(b)
	if !ok {
		return nil, false
	}
	out = bytes.Clone(b)
	d := frameDecoder{legacy: true}
	d.eachHandoffOutput(out, native, func(uint64, int64, *outputState, []handoffInput) {},
		func(uint64, int64, *nativeOutput, []nativeHandoffInput) {})
	if d.err != nil || d.legacyChanged == 0 {
		return nil, false
	}
	return out, true
}

// maxHandoffAge bounds how far before now the windows a handoff's sender had closed may end:
// the state of live outputs changes owner within minutes of a ring change. A body claiming
// more is refused, since the receiver would close every window from there on under a shard
// lock (a decoded closed of -4e10 stalled a flush for good).
const maxHandoffAge = 7 * 24 * time.Hour

// merge is MergeOnce's merge, with mu held. The whole body is decoded and checked before
// any of it is merged, so that a body refused with an error changes nothing.
func (a *Aggregator) merge(b []byte, native bool, now time.Time) (MergeStats, error) {
	var st MergeStats
	byPrint := make(map[uint64]*ruleState, len(a.rules))
	for _, r := range a.rules {
		byPrint[r.rule.Fingerprint] = r
	}
	type floatOut struct {
		r      *ruleState
		o      *outputState
		closed int64
		inputs []handoffInput
	}
	type nativeOut struct {
		r      *ruleState
		o      *nativeOutput
		closed int64
		inputs []nativeHandoffInput
	}
	var floats []floatOut
	var natives []nativeOut
	var d frameDecoder
	// rule is the rule of an output with fp and labels, its windows closed up to closed;
	// nil for one this member does not have (counted).
	rule := func(fp uint64, labels [][]prompb.Label, closed int64) *ruleState {
		r := byPrint[fp]
		if r == nil || len(labels) != len(r.outputs) {
			st.Unknown++
			return nil
		}
		if end := closed * r.interval; end < now.Add(-maxHandoffAge).UnixMilli() || end > now.Add(time.Hour).UnixMilli() {
			d.fail(fmt.Errorf("windows closed up to %s, not within %s of now", time.UnixMilli(end).UTC().Format(time.RFC3339), maxHandoffAge))
		}
		return r
	}
	d.eachHandoffOutput(b, native, func(fp uint64, closed int64, o *outputState, inputs []handoffInput) {
		if r := rule(fp, o.labels, closed); r != nil {
			o.place = r.placeKeyOfOutput(o.labels[0])
			floats = append(floats, floatOut{r, o, closed, inputs})
		}
	}, func(fp uint64, closed int64, o *nativeOutput, inputs []nativeHandoffInput) {
		if r := rule(fp, o.labels, closed); r != nil {
			natives = append(natives, nativeOut{r, o, closed, inputs})
		}
	})
	if d.err != nil {
		return MergeStats{}, fmt.Errorf("handoff: %w", d.err)
	}
	for _, f := range floats {
		s := int(f.o.hash % numShards)
		a.locks[s].Lock()
		f.r.merge(&f.r.shards[s], f.o, f.closed, f.inputs, &st)
		a.locks[s].Unlock()
		st.Outputs++
	}
	for _, n := range natives {
		s := int(n.o.hash % numShards)
		a.locks[s].Lock()
		n.r.mergeNative(&n.r.shards[s], n.o, n.closed, n.inputs, &st)
		a.locks[s].Unlock()
		st.Outputs++
	}
	// Outputs this member does not own (a handoff split by an older ring) go on to their
	// owner at the next flush tick, as strays do; until then it holds them for another.
	if own := a.ownership(); own != nil {
		unowned := slices.ContainsFunc(floats, func(f floatOut) bool { return !own.Owns(f.o.place) }) ||
			slices.ContainsFunc(natives, func(n nativeOut) bool { return !own.Owns(n.r.placeKeyOfOutput(n.o.labels[0])) })
		if unowned {
			a.strays.Store(true)
		}
	}
	return st, nil
}

// HoldsForOthers reports whether this member may hold state of outputs that another member
// owns (begun for a sender on another ring, or by a request routed by this member's ring
// before it changed, or merged from a handoff split by an older ring) that the next flush
// tick takes out and hands off (hashring.Forwarder.HoldsForOthers).
func (a *Aggregator) HoldsForOthers() bool { return a.strays.Load() }

// merge adds one handed-off output and its inputs to a rule shard.
func (r *ruleState) merge(rs *ruleShard, in *outputState, closed int64, inputs []handoffInput, st *MergeStats) {
	r.mergeStart(rs, closed)
	// wrote: the sender emitted the output, so it wrote its windows up to closed. One it
	// never emitted (a stray it began for a sender on another ring, handed on at its next
	// flush) wrote nothing, and is only a part of the state this member waits for: it does
	// not end the wait, which the previous owner's own handoff does (or the timeout).
	wrote := in.emitted
	idx, ok := rs.outputIdx[in.hash]
	if !ok {
		if len(rs.outputs) >= maxOuts {
			return
		}
		fresh := newOutputState(in.hash, in.labels, in.firstK)
		fresh.place, fresh.total, fresh.emitted = in.place, in.total, in.emitted
		if wrote {
			fresh.emittedK = closed
		} else {
			fresh.held, fresh.stray = r.newOutputWaits(fresh.place)
		}
		idx = rs.addOutput(fresh)
		r.outputN.Add(1)
		in.total = 0
	}
	o := rs.outputs[idx]
	r.adoptOwnedStray(&o.stray, &o.held, o.place)
	late := ok && lateHandoff(wrote, o.emitted, o.held)
	if late {
		st.Late++
	}
	// The previous owner wrote the output's windows up to closed. What this member holds of
	// them (a late sample it took after the ring changed, or a bridge to one) goes into the
	// running total (a gauge's value is lost), and nothing up to closed is written again:
	// emitted here too, a window would have two writers.
	for wrote && len(o.wins) > 0 && o.wins[0].k <= closed {
		o.total += o.takeWindow(o.wins[0].k).increase
	}
	if wrote {
		o.emittedK = max(o.emittedK, closed)
	}
	if !late {
		o.total += in.total
	}
	o.emitted = o.emitted || in.emitted
	o.firstK = min(o.firstK, in.firstK)
	// The previous owner emitted its windows up to closed; the later ones are this member's to
	// emit, even those it has closed already (they are emitted at its next window close, in
	// order: nothing newer has been written for the output).
	written := o.emittedK
	if wrote {
		written = max(closed, written)
	}
	for i := range in.wins {
		w := &in.wins[i]
		switch {
		case late:
		case w.k <= written:
			o.total += w.increase // a gauge's value for a window already written is lost
		default:
			mergeWindow(o.window(w.k), w)
		}
	}
	for _, hi := range inputs {
		st.Inputs++
		slot, mine, ok := rs.inputs.get(hi.hash)
		first, began := rs.firsts[hi.hash]
		if began && first.counts && (!hi.hasFirst || hi.first.t < first.t) {
			// The previous owner knew the input before this member's first sample: no
			// new series. (A view that began after it, a stray's, says nothing of that.)
			first.counts = false
			rs.firsts[hi.hash] = first
		}
		if !ok && began && hi.t < first.t {
			// This member began the input after the old owner's view of it, and it has
			// ended here since: the increase from the old view to its first sample counts,
			// and the input stays ended rather than live again from the older view.
			if r.counter {
				r.bridge(rs, o, hi.v, first)
			} else {
				r.bridgeGauge(o, hi.t, hi.v, first.t, written) // as below: this member's view is the later
			}
			rs.bridgedFirst(hi, idx)
			st.Bridged++
			continue
		}
		if !ok {
			if !r.counter {
				// A gauge input's value joins its window when the window closes: the
				// windows this member closed since the old owner's last (it held the
				// output, or did not have it) never had this input's.
				r.bridgeGauge(o, hi.t, hi.v, rs.closed*r.interval+1, written)
			}
			rs.inputs.insert(hi.hash, inputState{t: hi.t, v: hi.v, out: idx})
			if hi.hasFirst && (o.held || r.handedOffLater(o.place)) {
				// Still waiting: the previous owner's handoff may bring an older view
				// of the input, to bridge to this first sample. Or held for another
				// member (a stray handoff that came by an older ring): the first sample
				// goes on with it, for the owner to bridge its own view to.
				if rs.firsts == nil {
					rs.firsts = map[uint64]firstSample{}
				}
				// It counts unless a view here began before it.
				counts := hi.first.counts && (!began || hi.first.t < first.t)
				rs.firsts[hi.hash] = firstSample{t: hi.first.t, v: hi.first.v, out: idx, counts: counts}
			} else if hi.hasFirst && hi.first.counts && !began {
				// No view of the input here, and none to come: a new series that
				// began at the sender as a stray's baseline counts from zero, as one
				// member alone counts it.
				r.bridge(rs, o, 0, hi.first)
			}
			o.live++
			r.inputs.Add(1)
			if rs.inputs.len() == 1 {
				rs.oldestT = hi.t
			} else {
				rs.oldestT = min(rs.oldestT, hi.t)
			}
			rs.staleMarked = rs.staleMarked || value.IsStaleNaN(hi.v)
			continue
		}
		// Of the two views of one input, the later began with a baseline: the increase
		// from the earlier view's last sample to it counts. A gauge's earlier view holds
		// the value of the windows before the later one began: this member's own windows
		// after the previous owner's have it when the earlier view is this member's, which
		// went on through its closes.
		if began && hi.t < first.t {
			if r.counter {
				r.bridge(rs, o, hi.v, first)
			} else {
				r.bridgeGauge(o, hi.t, hi.v, first.t, written)
			}
			rs.bridgedFirst(hi, idx)
			st.Bridged++
		} else if hi.hasFirst && mine.t < hi.first.t {
			if r.counter {
				r.bridge(rs, o, mine.v, hi.first)
			} else {
				r.bridgeGauge(o, mine.t, mine.v, hi.first.t, max(written, rs.closed))
			}
			st.Bridged++
		}
		if hi.t > mine.t {
			mine.t, mine.v = hi.t, hi.v
			rs.inputs.slots[slot].set(mine)
			// A later view that ended: the next close ends the input, as a marker
			// ingested here would have had it.
			rs.staleMarked = rs.staleMarked || value.IsStaleNaN(hi.v)
		}
	}
	// The bridges above used the firsts. An output another member owns (a handoff split by
	// an older ring) keeps them: they go on with it at the next flush tick, for the owner
	// to bridge its own view of each input to.
	if (wrote || !o.held) && !r.handedOffLater(o.place) {
		r.release(rs, o, idx)
	}
}

// lateHandoff reports whether a handoff of an output (a float or a native one), from a
// member that wrote it (wrote), comes too late for its total: this member went on from its
// own state without it (the handoff timeout ended the wait: not held) and has written the
// output since (emitted), so downstream saw it start again from this member's total.
// Adding the earlier total back now would read, to PromQL, as an increase of that much;
// the reset it saw is the smaller error.
func lateHandoff(wrote, emitted, held bool) bool { return wrote && emitted && !held }

// bridgedFirst notes that view hi of an input was bridged to this member's first sample of
// it: the increase from hi's last sample on is counted. A view still to come that ends
// before hi (the old owner's main handoff, after that of a stray it began for a lagging
// sender) bridges to hi's own first sample, where hi began counting; one without a first
// sample saw the input from before, and nothing older is left to bridge to.
func (rs *ruleShard) bridgedFirst(hi handoffInput, out uint32) {
	if hi.hasFirst {
		// hi's first is the oldest view of the input now: whether it counts is its own.
		rs.firsts[hi.hash] = firstSample{t: hi.first.t, v: hi.first.v, out: out, counts: hi.first.counts}
	} else {
		delete(rs.firsts, hi.hash)
	}
}

// mergeStart prepares a rule shard for a handoff's output whose previous owner had closed
// the rule's windows up to closed.
func (r *ruleState) mergeStart(rs *ruleShard, closed int64) {
	if !r.started.Load() {
		r.start(closed*r.interval + 1)
		r.closedK.Store(closed)
	}
	// The rule's windows after the previous owner's last closed one are whole: its own first
	// window (partial, never emitted, when the rule started here on the first samples it was
	// forwarded) is not partial any more once the previous owner's state is in.
	for {
		k := r.startK.Load()
		if k <= closed || r.startK.CompareAndSwap(k, closed) {
			break
		}
	}
	if !rs.ready {
		r.initShard(rs)
		rs.closed = max(rs.closed, closed)
	}
}

// bridge counts, in output o, the increase of a counter input from prev, the last value one
// member saw, to first, the baseline another began with.
func (r *ruleState) bridge(rs *ruleShard, o *outputState, prev float64, first firstSample) {
	if value.IsStaleNaN(prev) || value.IsStaleNaN(first.v) {
		return // the series ended in between: its next sample is a new start
	}
	inc := first.v - prev
	if first.v < prev {
		inc = first.v // a reset
	}
	if k := windowOf(first.t, r.interval); k > o.emittedK {
		o.window(k).increase += inc // its window is still to be emitted (held, or open)
	} else {
		o.total += inc
	}
}

// bridgeGauge gives the windows of gauge output o after written, from the one of t up to
// the one before later, the value v a member last saw of an input at t, as its closes would
// have: the input's next view (on another member) began at later. A stale value, or one
// older than the staleness period at a window's end, gives nothing.
func (r *ruleState) bridgeGauge(o *outputState, t int64, v float64, later, written int64) {
	if value.IsStaleNaN(v) {
		return
	}
	for k := max(written+1, windowOf(t, r.interval)); k < windowOf(later, r.interval); k++ {
		if t <= k*r.interval-r.stale {
			return
		}
		o.window(k).addValue(v, t)
	}
}

// mergeWindow adds window w of the same output, aggregated elsewhere, to dst.
func mergeWindow(dst, w *windowAcc) {
	dst.samples += w.samples
	dst.increase += w.increase
	if w.count == 0 {
		return
	}
	if dst.count == 0 {
		dst.min, dst.max = w.min, w.max
	} else {
		dst.min, dst.max = math.Min(dst.min, w.min), math.Max(dst.max, w.max)
	}
	if dst.count == 0 || w.lastT >= dst.lastT {
		dst.last, dst.lastT = w.last, w.lastT
	}
	dst.sum += w.sum
	dst.count += w.count
}

// firstSample is the first sample of an input begun while its output waited for a handoff.
type firstSample struct {
	t   int64
	v   float64
	out uint32
	// counts: the series' created timestamp says it started from zero while the rule
	// was watching (createdRecently). A handoff that knew the input before clears it (the
	// bridge from its view counts instead); a wait that ends without one counts the sample
	// then (release). A stray's goes on with its handoff, for the owner to count (merge).
	counts bool
}
