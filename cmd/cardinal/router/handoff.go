package router

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/cardinal-proxy/cardinal/aggregator"
)

// maxLoggedHandoff bounds a handoff logged as a record. A larger one would stop ingestion
// for the time its merge takes (hashring splits what it sends into parts of about
// hashring.HandoffPartBytes, a sixteenth of this), take that much of wal.max_bytes for two
// checkpoint intervals and grow the log's write buffers to its size for good, so it waits
// for a checkpoint instead.
const maxLoggedHandoff = 16 << 20

// MergeHandoff adds a handoff a peer delivered to the aggregator's state
// (aggregator.MergeOnce: one merged before, by id, is reported already and merged no
// more) and, with a WAL, returns once the WAL holds it: the peer drops the state when the
// merge is acknowledged, so a crash right after must not lose it.
//
// Up to maxLoggedHandoff, the handoff goes into the log as a record (recordHandoffMerged),
// fsynced whatever the fsync mode, and the replay merges it again unless the checkpoint
// restored has its id. Kept in the log, it survives a fallback to the checkpoint before a
// corrupt newest one, which a merge that only a checkpoint held did not. A checkpoint
// holds it instead when it is larger, when the log cannot take it (past wal.max_bytes, or
// failed), and when the merge was late (MergeStats.Late): whether a merge is late depends
// on what flushes did since the last checkpoint, which the replay does not do again, so
// replayed it would add back the total that was left out. A failure of that checkpoint is
// logged, not returned: the state is merged, and the peer would only find it merged if it
// sent it again.
func (r *Router) MergeHandoff(id string, body []byte) (st aggregator.MergeStats, already bool, err error) {
	if r.log == nil {
		return r.agg.MergeOnce(id, body)
	}
	var written func() (uint64, error)
	why := "larger than a record may be"
	if len(body) <= maxLoggedHandoff {
		st, already, written, why, err = r.mergeLogged(id, body)
	} else {
		st, already, err = r.agg.MergeOnce(id, body)
	}
	if err != nil || already {
		return st, already, err
	}
	if written != nil {
		// Outside the locks: requests and flushes need not wait for the disk.
		_, err := written()
		if err == nil {
			err = r.log.Sync()
		}
		if err == nil {
			return st, false, nil
		}
		why = err.Error()
	}
	r.logger.Info("cluster: a checkpoint holds a merged handoff, not the WAL", "id", id, "bytes", len(body), "why", why)
	if err := r.CheckpointSoon(); err != nil {
		r.logger.Warn("cluster: a merged handoff is not yet in a checkpoint; it is lost if this member crashes before the next one", "id", id, "err", err)
	}
	return st, false, nil
}

// mergeLogged merges a handoff and appends it to the log as a record with no checkpoint
// under way (a checkpoint takes the aggregator's state shard by shard while ingestion goes
// on, which the replay repairs for samples, ingesting one again changing nothing, but
// could not for half a merge: so either the checkpoint has the merge and its id, or the
// record is after its position), no flush (the merge's outcome depends on what flushes
// wrote) and no request between its log append and its ingestion (the replay merges where
// the record is, so a request logged before it must be ingested before the merge).
// Ingestion waits for the merge; the record is queued in the log then (its place among the
// requests' fixed), and written returns once it is written. written is nil, and why says
// why, when the merge is left to a checkpoint.
func (r *Router) mergeLogged(id string, body []byte) (st aggregator.MergeStats, already bool, written func() (uint64, error), why string, err error) {
	// Locks in the order a checkpoint takes them: checkpointMu, the aggregator's (flushes),
	// then ingest.
	r.checkpointMu.Lock()
	defer r.checkpointMu.Unlock()
	release := r.agg.HoldFlushes()
	defer release()
	r.ingest.Lock()
	defer r.ingest.Unlock()
	st, already, err = r.agg.MergeOnceHeld(id, body)
	switch {
	case err != nil || already:
		return st, already, nil, "", err
	case st.Late > 0:
		return st, false, nil, "late", nil
	}
	rec := appendRecord(make([]byte, 0, 1+binary.MaxVarintLen64+len(id)+len(body)), recordHandoffMerged, nil)
	written, qerr := r.log.Enqueue(context.Background(), appendHandoff(rec, id, body))
	if qerr != nil {
		return st, false, nil, qerr.Error(), nil
	}
	return st, false, written, "", nil
}

// appendHandoff appends the payload of a recordHandoffMerged to dst: the handoff's id (a
// uvarint length and bytes), then its body to the end.
func appendHandoff(dst []byte, id string, body []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	return append(dst, body...)
}

// parseHandoff splits a recordHandoffMerged payload into the id and the body.
func parseHandoff(payload []byte) (id string, body []byte, err error) {
	n, k := binary.Uvarint(payload)
	if k <= 0 || n > uint64(len(payload)-k) {
		return "", nil, errors.New("handoff record: bad id")
	}
	return string(payload[k : k+int(n)]), payload[k+int(n):], nil
}

// replayHandoff merges a logged handoff again, unless the restored checkpoint holds it. A
// body the aggregator refuses now (the process was down longer than a handoff may be old)
// is logged and skipped: the rest of the log still replays.
func (r *Router) replayHandoff(id string, body []byte, st *RecoverStats) {
	ms, already, err := r.agg.MergeOnce(id, body)
	switch {
	case err != nil:
		r.logger.Warn("a handoff in the WAL cannot be merged again; its state is lost", "id", id, "err", err)
	case !already:
		st.HandoffsMerged++
		r.logger.Info("a handoff in the WAL merged again", "id", id, "outputs", ms.Outputs, "inputs", ms.Inputs, "unknown_rule", ms.Unknown)
	}
}
