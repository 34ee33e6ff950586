package aggregator

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// ErrNotEmpty is returned by Restore when a rule already holds state: a checkpoint is loaded
// at start-up, after SetRules and before any ingestion.
var ErrNotEmpty = errors.New("aggregator already holds state")

// RestoreStats says what Restore made of a checkpoint.
type RestoreStats struct {
	// Restored is the number of rules that continue from the checkpoint.
	Restored int
	// Skipped is the number of checkpointed rules with no current rule of the same
	// fingerprint: they changed or were removed while cardinal was down, and start fresh.
	Skipped int
	// Fresh is the number of current rules with no state in the checkpoint.
	Fresh int
	// InputSeries and OutputSeries are the live series restored, over all rules.
	InputSeries, OutputSeries int64
}

// restoredRule is one rule's state read from a checkpoint, held apart until the whole
// checkpoint has been read.
type restoredRule struct {
	into                    *ruleState
	shards                  []ruleShard
	startK, startT, closedK int64
	inputs, outputs         int64
}

// Restore loads a checkpoint written by Checkpoint. It is called after SetRules and before
// any ingestion. A checkpointed rule continues when a current rule has its fingerprint (the
// same definition: its name may differ); the others are skipped, so a rule changed while
// cardinal was down starts fresh, as after a reload; current rules the checkpoint lacks start
// empty. A truncated or damaged checkpoint is an error wrapping ErrCorruptCheckpoint, and
// leaves the aggregator as it was: nothing is loaded until all of it has been read.
func (a *Aggregator) Restore(r io.Reader) (RestoreStats, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var stats RestoreStats
	byPrint := map[uint64][]*ruleState{}
	for _, st := range a.rules {
		if st.started.Load() {
			return stats, fmt.Errorf("restore: rule %q: %w", st.rule.Name, ErrNotEmpty)
		}
		byPrint[st.rule.Fingerprint] = append(byPrint[st.rule.Fingerprint], st)
	}
	var groups []*haGroup
	var merged mergedHandoffs
	loaded, err := a.readCheckpoint(bufio.NewReaderSize(r, 1<<16), byPrint, &stats, &groups, &merged)
	if err != nil {
		return RestoreStats{}, fmt.Errorf("restore: %w", err)
	}
	a.merged = merged
	for _, g := range groups {
		into := a.ha.group(g.key, a.opts.Now().UnixMilli())
		if into == nil {
			break // maxHAGroups: a checkpoint holds no more than a run did
		}
		into.elected.Store(g.elected.Load())
		into.newest.Store(g.newest.Load())
		into.from.Store(g.from.Load())
	}
	for _, lr := range loaded {
		for s := range numShards {
			for _, o := range lr.shards[s].outputs {
				if o != nil {
					o.place = lr.into.placeKeyOfOutput(o.labels[0])
				}
			}
			if ns := lr.shards[s].native; ns != nil {
				for _, o := range ns.outputs {
					o.place = lr.into.placeKeyOfOutput(o.labels[0])
				}
			}
			a.locks[s].Lock()
			lr.into.shards[s] = lr.shards[s]
			a.locks[s].Unlock()
		}
		lr.into.startK.Store(lr.startK)
		lr.into.startT.Store(lr.startT)
		lr.into.closedK.Store(lr.closedK)
		lr.into.inputs.Store(lr.inputs)
		lr.into.outputN.Store(lr.outputs)
		lr.into.started.Store(true)
		lr.into.seenLabels.Store(^uint64(0)) // a checkpoint keeps no labels: assume every one seen
	}
	stats.Fresh = len(a.rules) - stats.Restored
	return stats, nil
}

// readCheckpoint reads a whole checkpoint and returns the state of the rules that continue.
func (a *Aggregator) readCheckpoint(br *bufio.Reader, byPrint map[uint64][]*ruleState, stats *RestoreStats, groups *[]*haGroup, merged *mergedHandoffs) ([]*restoredRule, error) {
	fr := frameReader{r: br}
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != checkpointMagic {
		return nil, fmt.Errorf("%w: not a checkpoint", ErrCorruptCheckpoint)
	}
	version, err := binary.ReadUvarint(br)
	if err != nil || version < 1 || version > checkpointVersion {
		return nil, fmt.Errorf("%w: version %d, want 1 to %d", ErrCorruptCheckpoint, version, checkpointVersion)
	}
	d := frameDecoder{version: version}
	frame := func(what string) error {
		p, err := fr.next()
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorruptCheckpoint, what, err)
		}
		d.reset(p)
		return nil
	}
	done := func(what string) error {
		if d.err == nil && len(d.b) > 0 {
			d.err = errors.New("bytes left over")
		}
		if d.err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorruptCheckpoint, what, d.err)
		}
		return nil
	}
	if err := frame("header"); err != nil {
		return nil, err
	}
	nRules := d.uvarint()
	if err := done("header"); err != nil {
		return nil, err
	}
	var loaded []*restoredRule
	for i := range nRules {
		if err := frame("rule"); err != nil {
			return nil, err
		}
		fp, name := d.u64(), d.string()
		if err := done("rule"); err != nil {
			return nil, err
		}
		what := fmt.Sprintf("rule %d (%q)", i, name)
		var lr *restoredRule
		if sts := byPrint[fp]; len(sts) > 0 {
			lr = &restoredRule{into: sts[0], shards: make([]ruleShard, numShards)}
			byPrint[fp] = sts[1:]
		}
		ready := false
		for s := range numShards {
			if err := frame(what); err != nil {
				return nil, err
			}
			if lr == nil {
				continue // a rule that no longer exists: checked, not decoded
			}
			in, out := d.shard(&lr.shards[s], len(lr.into.outputs))
			lr.inputs, lr.outputs = lr.inputs+in, lr.outputs+out
			ready = ready || lr.shards[s].ready
			if err := done(fmt.Sprintf("%s shard %d", what, s)); err != nil {
				return nil, err
			}
		}
		if err := frame(what); err != nil {
			return nil, err
		}
		started := d.bool()
		if started {
			// closedK last: the newest window closed, which every ready shard has reached.
			k, t, closed := d.varint(), d.varint(), d.varint()
			if lr != nil {
				lr.startK, lr.startT, lr.closedK = k, t, closed
			}
		}
		if err := done(what); err != nil {
			return nil, err
		}
		switch {
		case lr == nil:
			stats.Skipped++
		case started != ready:
			return nil, fmt.Errorf("%w: %s: started is %v but ready shards say %v", ErrCorruptCheckpoint, what, started, ready)
		case started:
			loaded = append(loaded, lr)
			stats.Restored++
			stats.InputSeries += lr.inputs
			stats.OutputSeries += lr.outputs
		}
	}
	if version >= 2 {
		if err := frame("ha"); err != nil {
			return nil, err
		}
		for range d.uvarint() {
			g := &haGroup{key: haKey{groupLabel: d.string(), replicaLabel: d.string(), group: d.string()}}
			elected := d.string()
			g.elected.Store(&elected)
			g.newest.Store(d.varint())
			g.from.Store(d.varint())
			if d.err != nil {
				break
			}
			*groups = append(*groups, g)
		}
		if err := done("ha"); err != nil {
			return nil, err
		}
	}
	if version >= 3 {
		if err := frame("merged handoffs"); err != nil {
			return nil, err
		}
		*merged = d.mergedHandoffs()
		if err := done("merged handoffs"); err != nil {
			return nil, err
		}
	}
	if _, err := br.Peek(1); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the last frame", ErrCorruptCheckpoint)
	}
	return loaded, nil
}

// frameReader reads the frames frameWriter wrote, checking each one's checksum.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

// next returns the next frame's payload, valid until the following call. The end of the
// input is an error: a checkpoint says how many frames follow, so it never ends between them.
func (f *frameReader) next() ([]byte, error) {
	n, err := binary.ReadUvarint(f.r)
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	if uint64(cap(f.buf)) >= n+4 || n < 1<<20 {
		f.buf = slices.Grow(f.buf[:0], int(n+4))[:n+4]
		if _, err := io.ReadFull(f.r, f.buf); err != nil {
			return nil, unexpectedEOF(err)
		}
	} else {
		// A large frame is read as it arrives, so that a damaged length in a short file
		// cannot make Restore allocate what the file does not hold.
		b := bytes.NewBuffer(f.buf[:0])
		if _, err := io.CopyN(b, f.r, int64(n+4)); err != nil {
			return nil, unexpectedEOF(err)
		}
		f.buf = b.Bytes()
	}
	p := f.buf[:n]
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(f.buf[n:]) {
		return nil, errors.New("checksum mismatch")
	}
	return p, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
