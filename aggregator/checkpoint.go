package aggregator

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// A checkpoint is the aggregator's whole state in a compact binary form, so that a process
// started after a crash continues from it (plus a replay of the write-ahead log) with no
// counter reset and no output timestamp emitted twice (docs/design.md §4).
//
// The stream is the magic "CRDLCKPT" and a uvarint version, then frames. A frame is a
// uvarint payload length, the payload and its CRC32-Castagnoli (4 bytes, little endian), so
// that a torn or damaged file is refused rather than half-believed. The frames are: the rule
// count; then per rule a head (fingerprint, name), one frame per lock shard (its inputs,
// outputs and native-histogram state: see shardEncoder), and a tail (started, startK, startT,
// closedK); then (from version 2) the HA elections: their count, then per group its group
// and replica label names, its group, its elected replica, that one's newest sample
// timestamp and the previous replica's newest at the last failover (0: none); last (from
// version 3) the handoffs merged lately: their count, then per handoff its id and when it
// was merged (unix ms). From version 4 a shard frame ends with the shard's wait state for
// handoffs (checkpoint_wait.go); from version 5 each first sample in it says whether it
// counts. Integers are varints, floats their 8 raw bytes (values are restored bit for bit),
// hashes 8 fixed bytes.

// checkpointMagic opens every checkpoint.
const checkpointMagic = "CRDLCKPT"

// checkpointVersion is the encoding's version; Restore reads it, version 4 (no counts flag
// on the wait state's first samples: they are baselines), version 3 (no wait state in the
// shard frames either), version 2 (no merged handoffs either) and version 1 (no HA
// elections either), and refuses any other.
const checkpointVersion = 5

// maxFrame bounds a frame's length, so that a damaged length cannot make Restore allocate
// without limit. A rule shard of a few million inputs fits.
const maxFrame = 1 << 30

// ErrCorruptCheckpoint is returned by Restore for a checkpoint that is truncated, damaged or
// of an unknown version.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checkpointStats is what one checkpoint measured.
type checkpointStats struct {
	bytes   int64
	maxHold time.Duration // the longest one shard lock was held: the most a request waited
	// totalHold is the time spent holding shard locks, over holds acquisitions.
	totalHold time.Duration
	holds     int
	// longHolds counts the holds over 1 ms: on a busy machine, a goroutine holding a lock
	// can be preempted (for a garbage collection's stack scan) and wait for a processor.
	longHolds int
}

// Checkpoint writes the aggregator's whole state to w: for every rule its fingerprint and
// start, and for every rule shard its inputs, outputs with their open windows and running
// totals, and native-histogram state. Restore reads it back.
//
// Consistency: the aggregator's flush and rule mutex is held throughout, so no flush closes
// windows and no reload changes rules during a checkpoint (a flush waits for it to finish).
// Ingestion goes on: each rule shard is locked only while its own part is encoded (its
// input table, most of it, is only copied under the lock and encoded after), which
// makes the checkpoint consistent per rule shard but not across them. A request ingested
// concurrently may therefore be partly in it. Replaying the write-ahead log from a point
// before the checkpoint began repairs that, because ingestion is idempotent: a sample at or
// before its input's last timestamp is a duplicate and ignored (docs/design.md §3.2).
//
// The samples/drop/reset counters of Stats are process metrics and are not checkpointed.
func (a *Aggregator) Checkpoint(w io.Writer) error {
	release := a.HoldFlushes()
	defer release()
	_, err := a.checkpoint(w)
	return err
}

// HoldFlushes stops flushes and rule changes until release is called, for a caller that
// must save what the flusher hands to the sinks together with the state it comes from: while
// they are held, CheckpointHeld writes the state, and nothing moves from the state to the
// sinks. Ingestion goes on.
func (a *Aggregator) HoldFlushes() (release func()) {
	a.mu.Lock()
	return a.mu.Unlock
}

// CheckpointHeld is Checkpoint for a caller that holds HoldFlushes.
func (a *Aggregator) CheckpointHeld(w io.Writer) error {
	_, err := a.checkpoint(w)
	return err
}

// checkpoint is Checkpoint under HoldFlushes, returning what it measured.
func (a *Aggregator) checkpoint(w io.Writer) (checkpointStats, error) {
	return a.checkpointAs(w, checkpointVersion)
}

// checkpointAs is checkpoint in the shard frames of version (3, 4 or 5; tests write
// versions 3 and 4 to check that Restore still reads them).
func (a *Aggregator) checkpointAs(w io.Writer, version uint64) (checkpointStats, error) {
	fw := &frameWriter{w: bufio.NewWriterSize(w, 1<<16)}
	fw.raw(binary.AppendUvarint([]byte(checkpointMagic), version))
	var enc shardEncoder
	enc.reset()
	enc.uvarint(uint64(len(a.rules)))
	fw.frame(enc.buf)
	var st checkpointStats
	for _, r := range a.rules {
		enc.reset()
		enc.u64(r.rule.Fingerprint)
		enc.string(r.rule.Name)
		fw.frame(enc.buf)
		ready := false
		clock := time.Now() // monotonic: holds are timed as flushRule times them
		for s := range numShards {
			enc.reset()
			a.locks[s].Lock()
			locked := time.Since(clock)
			shardReady := enc.shard(&r.shards[s])
			a.locks[s].Unlock()
			hold := time.Since(clock) - locked
			st.maxHold = max(st.maxHold, hold)
			st.totalHold += hold
			st.holds++
			if hold > time.Millisecond {
				st.longHolds++
			}
			if shardReady {
				enc.inputs()
				if version >= 4 {
					enc.writeWaits(version)
				}
			}
			ready = ready || shardReady
			fw.frame(enc.buf)
		}
		// Read after the shards: a rule shard is made ready under its lock only after the
		// rule's start is recorded, so if one shard was ready its start is complete. If none
		// was, any start under way is left to the replay.
		enc.reset()
		enc.bool(ready)
		if ready {
			enc.varint(r.startK.Load())
			enc.varint(r.startT.Load())
			enc.varint(r.closedK.Load())
		}
		fw.frame(enc.buf)
	}
	enc.reset()
	enc.haGroups(a.HAGroups())
	fw.frame(enc.buf)
	enc.reset()
	enc.mergedHandoffs(a.merged)
	fw.frame(enc.buf)
	if err := fw.flush(); err != nil {
		return st, fmt.Errorf("checkpoint: %w", err)
	}
	st.bytes = fw.n
	return st, nil
}

// haGroups encodes the payload of the elections' frame.
func (e *shardEncoder) haGroups(groups []HAGroup) {
	e.uvarint(uint64(len(groups)))
	for _, g := range groups {
		e.string(g.GroupLabel)
		e.string(g.ReplicaLabel)
		e.string(g.Group)
		e.string(g.Elected)
		e.varint(g.Newest.UnixMilli())
		var from int64
		if !g.From.IsZero() {
			from = g.From.UnixMilli()
		}
		e.varint(from)
	}
}

// frameWriter writes checkpoint frames, keeping the first error.
type frameWriter struct {
	w   *bufio.Writer
	n   int64
	err error
	hdr [binary.MaxVarintLen64]byte
}

func (f *frameWriter) raw(p []byte) {
	if f.err != nil {
		return
	}
	n, err := f.w.Write(p)
	f.n += int64(n)
	f.err = err
}

// frame writes one payload with its length and checksum.
func (f *frameWriter) frame(p []byte) {
	f.raw(f.hdr[:binary.PutUvarint(f.hdr[:], uint64(len(p)))])
	f.raw(p)
	f.raw(binary.LittleEndian.AppendUint32(f.hdr[:0], crc32.Checksum(p, crcTable)))
}

func (f *frameWriter) flush() error {
	if f.err != nil {
		return f.err
	}
	return f.w.Flush()
}
