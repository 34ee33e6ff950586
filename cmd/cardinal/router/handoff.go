package router

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/cardinal-proxy/cardinal/aggregator"
)

// MergeHandoff adds a handoff a peer delivered to the aggregator's state
// (aggregator.MergeOnce: one merged before, by id, is reported already and merged no
// more) and, with a WAL, returns once the log holds it: the peer drops the state when the
// merge is acknowledged, so a crash right after must not lose it.
//
// The handoff goes into the log as a record (recordHandoffMerged), fsynced whatever the
// fsync mode, and the replay merges it again unless the checkpoint restored has its id.
// Kept in the log, it survives a fallback to the checkpoint before the newest, which a
// merge that only a checkpoint held did not. A handoff the log cannot take (it would pass
// wal.max_bytes, or the log has failed) is made durable by a checkpoint instead, as before
// the record existed; a failure of both is logged, not returned: the state is merged, and
// the peer would only find it merged if it sent it again.
func (r *Router) MergeHandoff(id string, body []byte) (st aggregator.MergeStats, already bool, err error) {
	if r.log == nil {
		return r.agg.MergeOnce(id, body)
	}
	// A checkpoint takes the aggregator's state shard by shard while ingestion goes on,
	// which the replay repairs for samples (ingesting one again changes nothing) but could
	// not for a merge half in it. So no checkpoint runs between a merge and its record:
	// either the checkpoint has both the state and the id, or the record is after its
	// position and is replayed.
	r.checkpointMu.Lock()
	st, already, err = r.agg.MergeOnce(id, body)
	var logErr error
	if err == nil && !already {
		logErr = r.logHandoff(id, body)
	}
	r.checkpointMu.Unlock()
	if logErr != nil {
		r.logger.Warn("cluster: the WAL cannot take a merged handoff; a checkpoint holds it instead", "id", id, "bytes", len(body), "err", logErr)
		if err := r.CheckpointSoon(); err != nil {
			r.logger.Warn("cluster: a merged handoff is neither in the WAL nor in a checkpoint; it is lost if this member crashes before the next checkpoint", "id", id, "err", err)
		}
	}
	return st, already, err
}

// logHandoff appends a recordHandoffMerged of id and body and forces it to disk.
func (r *Router) logHandoff(id string, body []byte) error {
	rec := appendRecord(make([]byte, 0, 1+binary.MaxVarintLen64+len(id)+len(body)), recordHandoffMerged, nil)
	rec = appendHandoff(rec, id, body)
	if _, err := r.log.Append(context.Background(), rec); err != nil {
		return err
	}
	return r.log.Sync()
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
		r.logger.Info("a handoff in the WAL merged again", "id", id, "outputs", ms.Outputs, "inputs", ms.Inputs)
	}
}
