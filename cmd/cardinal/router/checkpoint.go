package router

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// A checkpoint file (its framing and checksum are wal's) holds, in order:
//   - the magic "CRDLRTR" and a version byte;
//   - what the sinks held when it was taken: a uvarint count, then per sink its name (uvarint
//     length and bytes) and its series as one snappy-compressed Remote Write 1.0 body
//     (uvarint length and bytes);
//   - from version 2, what each remote-write downstream had acknowledged (deliveryMarks): a
//     uvarint count, then per downstream its name and its marks as in a recordDelivered;
//   - from version 3, the cluster handoffs not yet delivered (hashring.PendingHandoff): a
//     uvarint count, then per handoff its owner's name, its id and its body (each a uvarint
//     length and bytes);
//   - from version 4, what the queues to cluster peers held (hashring.Forwarder.Pending): a
//     uvarint count, then each snappy-compressed Remote Write 1.0 body (uvarint length and
//     bytes). Versions 2 and 3 kept it as the series of a sink named forwardQueues;
//   - the aggregator's state, to the end (aggregator.Checkpoint).
//
// The sinks' part and the state are taken while flushes are held, so every output the
// aggregator emitted before is either in a sink's part or was already written, and every
// window it has not emitted is in its state: nothing is lost. Likewise the state of every
// output handed off is in the state or in a handoff not yet delivered, which a restart
// delivers again under its id (its owner merges it once). What is emitted twice after a
// restart (a sink's part written after the checkpoint, windows the replayed log closes again)
// the remote-write sinks leave out by the marks, which are taken after the log position:
// every recordDelivered up to it is in them, the later ones are replayed.
const (
	checkpointMagic   = "CRDLRTR"
	checkpointVersion = 4
	// maxPendingBody bounds one sink's part, one handoff and one body of the peer queues, so
	// that a damaged length cannot make a restore allocate without limit.
	maxPendingBody = 1 << 32
)

// forwardQueues is the name under which a checkpoint of version 2 or 3 kept what the queues
// to cluster peers held; no downstream can have it (names are printable).
const forwardQueues = "\x00cluster"

// errBadCheckpoint is a checkpoint this version cannot read.
var errBadCheckpoint = errors.New("unreadable checkpoint")

// Checkpoint saves the aggregation state and what the sinks still hold at the current log
// position, then truncates the log before the previous checkpoint (kept, with the records
// after it, in case the new one is found corrupt). Flushes wait for it; ingestion does not.
func (r *Router) Checkpoint() error {
	if r.log == nil {
		return nil
	}
	r.checkpointMu.Lock()
	defer r.checkpointMu.Unlock()
	return r.checkpointLocked()
}

// checkpointRound is one checkpoint that CheckpointSoon callers share.
type checkpointRound struct {
	done chan struct{}
	err  error
}

// CheckpointSoon returns once a checkpoint that began after the call has been taken (its
// error, if it failed), so that what the caller put into the aggregator before is durable.
// Callers that come while one waits for its checkpoint share it: a burst of handoffs costs
// one or two checkpoints, not one each. With no WAL it returns nil at once.
func (r *Router) CheckpointSoon() error {
	if r.log == nil {
		return nil
	}
	r.soonMu.Lock()
	rd, lead := r.soon, false
	if rd == nil {
		rd, lead = &checkpointRound{done: make(chan struct{})}, true
		r.soon = rd
	}
	r.soonMu.Unlock()
	if !lead {
		<-rd.done
		return rd.err
	}
	r.checkpointMu.Lock()
	// From here a new caller starts the next round: this one's checkpoint begins after every
	// caller that joined it.
	r.soonMu.Lock()
	r.soon = nil
	r.soonMu.Unlock()
	rd.err = r.checkpointLocked()
	r.checkpointMu.Unlock()
	close(rd.done)
	return rd.err
}

// checkpointLocked is Checkpoint with checkpointMu held.
func (r *Router) checkpointLocked() error {
	index, err := r.checkpoint()
	r.lastResult.Store(&CheckpointResult{Time: time.Now(), Index: index, Err: err})
	if err != nil {
		r.metrics.checkpoints.WithLabelValues("failed").Inc()
		r.logger.Error("checkpoint failed; the log keeps growing until one succeeds", "err", err)
		return err
	}
	r.metrics.checkpoints.WithLabelValues("ok").Inc()
	return nil
}

func (r *Router) checkpoint() (uint64, error) {
	start := time.Now()
	release := r.agg.HoldFlushes()
	// Every record up to pos is wholly ingested; later ones may be partly, which replay
	// repairs because ingestion is idempotent.
	r.ingest.Lock()
	pos := r.log.LastIndex()
	r.ingest.Unlock()
	pending := r.sinks.Pending()
	marks := r.markSnapshots(pending)
	var handoffs []hashring.PendingHandoff
	var forward [][]byte
	if r.cluster != nil {
		var err error
		if forward, err = r.cluster.Pending(); err != nil {
			release()
			return pos, err
		}
		handoffs = r.cluster.PendingHandoffs()
	}
	err := r.log.WriteCheckpoint(pos, func(w io.Writer) error {
		if err := writePending(w, pending, marks, handoffs, forward); err != nil {
			return err
		}
		return r.agg.CheckpointHeld(w)
	})
	release()
	if err != nil {
		return pos, err
	}
	// The log is kept back to the previous checkpoint at another position: a checkpoint
	// rewritten at the same position (nothing appended since) replaced the file of that
	// position, and the previous one is the fallback should it be found corrupt.
	if r.hasCheckpoint && pos == r.lastCheckpoint {
		return pos, nil
	}
	prev, hadPrev := r.lastCheckpoint, r.hasCheckpoint
	r.lastCheckpoint, r.hasCheckpoint = pos, true
	if hadPrev {
		if err := r.log.TruncateBefore(prev + 1); err != nil {
			return pos, fmt.Errorf("truncating the log before checkpoint %d: %w", prev, err)
		}
	}
	r.logger.Debug("checkpoint written", "index", pos, "took", time.Since(start))
	return pos, nil
}

// sinkMarks are the marks of one downstream, as deliveryMarks.snapshot returns them.
type sinkMarks struct {
	hashes     []uint64
	timestamps []int64
}

// markSnapshots prunes and copies the marks of every tracked downstream.
func (r *Router) markSnapshots(pending map[string][]prompb.TimeSeries) map[string]sinkMarks {
	out := map[string]sinkMarks{}
	for name, d := range r.delivered {
		h, ts := d.snapshot(pending[name])
		out[name] = sinkMarks{h, ts}
	}
	return out
}

// writePending writes the magic, the sinks' part of a checkpoint, the downstreams' marks, the
// handoffs not yet delivered and the peer queues' bodies (written as they are, not copied
// into one buffer: a backed-up queue holds many).
func writePending(w io.Writer, pending map[string][]prompb.TimeSeries, marks map[string]sinkMarks, handoffs []hashring.PendingHandoff, forward [][]byte) error {
	buf := append([]byte(checkpointMagic), checkpointVersion)
	buf = binary.AppendUvarint(buf, uint64(len(pending)))
	var enc remotewrite.Encoder
	for _, name := range slices.Sorted(maps.Keys(pending)) {
		body, err := enc.Encode(pending[name])
		if err != nil {
			return fmt.Errorf("encoding what downstream %q holds: %w", name, err)
		}
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)
		buf = binary.AppendUvarint(buf, uint64(len(body)))
		buf = append(buf, body...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(marks)))
	for _, name := range slices.Sorted(maps.Keys(marks)) {
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)
		buf = appendMarks(buf, marks[name].hashes, marks[name].timestamps)
	}
	buf = binary.AppendUvarint(buf, uint64(len(handoffs)))
	for _, h := range handoffs {
		for _, b := range [][]byte{[]byte(h.Peer), []byte(h.ID), h.Body} {
			buf = binary.AppendUvarint(buf, uint64(len(b)))
			buf = append(buf, b...)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(forward)))
	if _, err := w.Write(buf); err != nil {
		return err
	}
	for _, body := range forward {
		buf = binary.AppendUvarint(buf[:0], uint64(len(body)))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
	}
	return nil
}

// readCheckpoint is what readPending read of a checkpoint, the aggregator's state apart.
type readCheckpoint struct {
	sinks    map[string][]byte // by downstream name: its series, one snappy body
	handoffs []hashring.PendingHandoff
	forward  [][]byte // snappy bodies of what the queues to peers held, in any version
}

// readPending reads the magic, the sinks' part of a checkpoint (the snappy body of each
// sink's series, by name), from version 2 the downstreams' marks, passed to mark, from
// version 3 the handoffs not yet delivered, and from version 4 the peer queues' bodies.
func readPending(br *bufio.Reader, mark func(sink string, hash uint64, ts int64)) (readCheckpoint, error) {
	var rc readCheckpoint
	magic := make([]byte, len(checkpointMagic)+1)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic[:len(checkpointMagic)]) != checkpointMagic {
		return rc, fmt.Errorf("%w: no checkpoint header", errBadCheckpoint)
	}
	version := magic[len(checkpointMagic)]
	if version < 1 || version > checkpointVersion {
		return rc, fmt.Errorf("%w: version %d, this cardinal reads 1 to %d", errBadCheckpoint, version, checkpointVersion)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return rc, fmt.Errorf("%w: sink count: %v", errBadCheckpoint, err)
	}
	rc.sinks = map[string][]byte{}
	for range n {
		name, err := readBytes(br, 1<<16)
		if err != nil {
			return rc, fmt.Errorf("%w: sink name: %v", errBadCheckpoint, err)
		}
		body, err := readBytes(br, maxPendingBody)
		if err != nil {
			return rc, fmt.Errorf("%w: what downstream %q held: %v", errBadCheckpoint, name, err)
		}
		if string(name) == forwardQueues {
			rc.forward = append(rc.forward, body) // versions 2 and 3
			continue
		}
		rc.sinks[string(name)] = body
	}
	if version < 2 {
		return rc, nil
	}
	if n, err = binary.ReadUvarint(br); err != nil {
		return rc, fmt.Errorf("%w: marks count: %v", errBadCheckpoint, err)
	}
	for range n {
		name, err := readBytes(br, 1<<16)
		if err != nil {
			return rc, fmt.Errorf("%w: marks name: %v", errBadCheckpoint, err)
		}
		if err := readMarks(br, func(h uint64, ts int64) { mark(string(name), h, ts) }); err != nil {
			return rc, fmt.Errorf("%w: what downstream %q acknowledged: %v", errBadCheckpoint, name, err)
		}
	}
	if version < 3 {
		return rc, nil
	}
	if n, err = binary.ReadUvarint(br); err != nil {
		return rc, fmt.Errorf("%w: handoff count: %v", errBadCheckpoint, err)
	}
	for range n {
		var parts [3][]byte
		for i, limit := range []uint64{1 << 16, 1 << 16, maxPendingBody} {
			if parts[i], err = readBytes(br, limit); err != nil {
				return rc, fmt.Errorf("%w: a handoff not yet delivered: %v", errBadCheckpoint, err)
			}
		}
		rc.handoffs = append(rc.handoffs, hashring.PendingHandoff{Peer: string(parts[0]), ID: string(parts[1]), Body: parts[2]})
	}
	if version < 4 {
		return rc, nil
	}
	if n, err = binary.ReadUvarint(br); err != nil {
		return rc, fmt.Errorf("%w: forward body count: %v", errBadCheckpoint, err)
	}
	for range n {
		body, err := readBytes(br, maxPendingBody)
		if err != nil {
			return rc, fmt.Errorf("%w: what the queues to cluster peers held: %v", errBadCheckpoint, err)
		}
		rc.forward = append(rc.forward, body)
	}
	return rc, nil
}

// readMarks reads what appendMarks wrote from br.
func readMarks(br *bufio.Reader, fn func(hash uint64, ts int64)) error {
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return err
	}
	var h [8]byte
	prev := int64(0)
	for range count {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return err
		}
		d, err := binary.ReadVarint(br)
		if err != nil {
			return err
		}
		prev += d
		fn(binary.LittleEndian.Uint64(h[:]), prev)
	}
	return nil
}

func readBytes(br *bufio.Reader, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("length %d over %d", n, limit)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return b, err
}
