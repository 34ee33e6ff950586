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

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// A checkpoint file (its framing and checksum are wal's) holds, in order:
//   - the magic "CRDLRTR" and a version byte;
//   - what the sinks held when it was taken: a uvarint count, then per sink its name (uvarint
//     length and bytes) and its series as one snappy-compressed Remote Write 1.0 body
//     (uvarint length and bytes);
//   - the aggregator's state, to the end (aggregator.Checkpoint).
//
// Both parts are taken while flushes are held, so every output the aggregator emitted
// before is either in a sink's part or was already written, and every window it has not
// emitted is in its state: nothing is lost and nothing is emitted twice.
const (
	checkpointMagic   = "CRDLRTR"
	checkpointVersion = 1
	// maxPendingBody bounds one sink's part, so that a damaged length cannot make a restore
	// allocate without limit.
	maxPendingBody = 1 << 32
)

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
	err := r.log.WriteCheckpoint(pos, func(w io.Writer) error {
		if err := writePending(w, pending); err != nil {
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
		if err := r.log.TruncateFront(prev + 1); err != nil {
			return pos, fmt.Errorf("truncating the log before checkpoint %d: %w", prev, err)
		}
	}
	r.logger.Debug("checkpoint written", "index", pos, "took", time.Since(start))
	return pos, nil
}

// writePending writes the magic and the sinks' part of a checkpoint.
func writePending(w io.Writer, pending map[string][]prompb.TimeSeries) error {
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
	_, err := w.Write(buf)
	return err
}

// readPending reads the magic and the sinks' part of a checkpoint: the snappy body of each
// sink's series, by name.
func readPending(br *bufio.Reader) (map[string][]byte, error) {
	magic := make([]byte, len(checkpointMagic)+1)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic[:len(checkpointMagic)]) != checkpointMagic {
		return nil, fmt.Errorf("%w: no checkpoint header", errBadCheckpoint)
	}
	if v := magic[len(checkpointMagic)]; v != checkpointVersion {
		return nil, fmt.Errorf("%w: version %d, this cardinal reads %d", errBadCheckpoint, v, checkpointVersion)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: sink count: %v", errBadCheckpoint, err)
	}
	out := map[string][]byte{}
	for range n {
		name, err := readBytes(br, 1<<16)
		if err != nil {
			return nil, fmt.Errorf("%w: sink name: %v", errBadCheckpoint, err)
		}
		body, err := readBytes(br, maxPendingBody)
		if err != nil {
			return nil, fmt.Errorf("%w: what downstream %q held: %v", errBadCheckpoint, name, err)
		}
		out[string(name)] = body
	}
	return out, nil
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
