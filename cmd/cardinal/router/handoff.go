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
	logged, why := false, "larger than a record may be"
	if len(body) <= maxLoggedHandoff {
		st, already, logged, why, err = r.mergeLogged(id, body)
	} else {
		st, already, err = r.agg.MergeOnce(id, body)
	}
	if err != nil || already {
		return st, already, err
	}
	if logged {
		// Outside the locks: flushes and checkpoints need not wait for the fsync.
		err := r.log.Sync()
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

// mergeLogged merges a handoff and logs it as a record. No checkpoint runs from the merge
// until the record is written (a checkpoint takes the aggregator's state shard by shard
// while ingestion goes on, which the replay repairs for samples, ingesting one again
// changing nothing, but could not for half a merge; and one that held the merge with its
// position before the record would leave the record to the replay, which merges it again
// once its id has aged out of those remembered). No flush runs either (the merge's outcome
// depends on what flushes wrote, and a window written from it before the record would be
// written again, its delivery mark lost with the record, after a crash in between). No
// request is between its log append and its ingestion while the merge runs and the record
// is queued (the replay merges where the record is, so a request logged before it must
// be ingested before the merge, and one after it, after): ingestion waits for the merge
// only, not for the disk. logged is false, and why says why, when the merge is left to a
// checkpoint; err is the merge's.
func (r *Router) mergeLogged(id string, body []byte) (st aggregator.MergeStats, already, logged bool, why string, err error) {
	// Locks in the order a checkpoint takes them: checkpointMu, the aggregator's (flushes),
	// then ingest.
	r.checkpointMu.Lock()
	defer r.checkpointMu.Unlock()
	release := r.agg.HoldFlushes()
	defer release()
	r.ingest.Lock()
	st, already, err = r.agg.MergeOnceHeld(id, body)
	if err != nil || already || st.Late > 0 {
		r.ingest.Unlock()
		if st.Late > 0 {
			why = "late"
		}
		return st, already, false, why, err
	}
	rec := appendRecord(make([]byte, 0, 1+binary.MaxVarintLen64+len(id)+len(body)), recordHandoffMerged, nil)
	written, qerr := r.log.Enqueue(context.Background(), appendHandoff(rec, id, body))
	r.ingest.Unlock() // the record's place among the requests is fixed
	if qerr == nil {
		_, qerr = written()
	}
	if qerr != nil {
		return st, false, false, qerr.Error(), nil
	}
	return st, false, true, "", nil
}

// appendHandoff appends the payload of a recordHandoffMerged to dst: the handoff's id (a
// uvarint length and bytes), then its body to the end.
func appendHandoff(dst []byte, id string, body []byte) []byte {
	return append(appendStrings(dst, id), body...)
}

// parseHandoff splits a recordHandoffMerged payload into the id and the body.
func parseHandoff(payload []byte) (id string, body []byte, err error) {
	ids, body, ok := parseStrings(payload, 1)
	if !ok {
		return "", nil, errors.New("handoff record: bad id")
	}
	return ids[0], body, nil
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
