package router

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/cardinal-proxy/cardinal/hashring"
)

// takenQueueWait bounds how long HandoffTaken waits for a place in the log's queue, which
// the flush that calls it waits for; after one such wait ran out, takenStuckFor of handoffs
// wait for a checkpoint instead, so that a flush with many parts (one record each) is not
// held a takenQueueWait for each while the disk is stuck.
const (
	takenQueueWait = time.Second
	takenStuckFor  = 10 * time.Second
)

// HandoffTaken gives a handoff this member just took out of its aggregator its place in the
// log, and returns the function that waits until it is durable, which its delivery calls
// before the first attempt (hashring.Forwarder.OnHandoffTaken): the owner may merge it at
// once, and a restart must then deliver it again under its id, which the owner merges once,
// and must not hand the state it held off again under a new id, which the owner would count
// a second time. It is called by the flush that took the state out, which holds checkpoints
// off, and must not wait for the disk.
//
// Up to maxLoggedHandoff, it is a record (recordHandoffTaken), fsynced whatever the fsync
// mode. The replay of one from a checkpoint older than the handoff drops what the checkpoint
// and the records before rebuilt of the outputs it names (aggregator.Forget) and delivers it
// again, unless a recordHandoffEnded says its owner answered it; a checkpoint after it
// holds it among its pending handoffs. So a fallback to the checkpoint before a corrupt
// newest one does not count it twice, which a handoff that only a checkpoint held did.
//
// The record is queued while the flush that took the state out still runs: every request
// logged after it was ingested after the state was taken out, so what the replay drops is
// not what a ring change gave back since. A request logged before it may have been ingested
// after (in flight during the flush): what it began of those outputs was a stray, handed on
// at the next flush tick as a handoff of its own, which the replay delivers again too.
// Only if a second ring change during that flush gave the outputs back to this member did
// it stay here, and a restart drops that request's samples of them. A checkpoint taken
// before the record is written holds the handoff pending and not its state: the replay of
// the record after it then drops nothing. A larger one, and one the log cannot take,
// waits for a checkpoint instead.
func (r *Router) HandoffTaken(p hashring.PendingHandoff) (durable func() error) {
	if r.log == nil {
		return nil
	}
	instead := func(why string) func() error {
		return func() error {
			r.logger.Info("cluster: a checkpoint holds a handoff taken out, not the WAL", "id", p.ID, "bytes", len(p.Body), "why", why)
			return r.CheckpointSoon()
		}
	}
	if len(p.Body) > maxLoggedHandoff {
		return instead("larger than a record may be")
	}
	if at := r.takenStuck.Load(); at != 0 && time.Since(time.Unix(0, at)) < takenStuckFor {
		return instead("the log was stuck")
	}
	rec := appendRecord(make([]byte, 0, 1+2*binary.MaxVarintLen64+len(p.Peer)+len(p.ID)+len(p.Body)), recordHandoffTaken, nil)
	ctx, cancel := context.WithTimeout(context.Background(), takenQueueWait)
	defer cancel()
	written, err := r.queueTaken(ctx, appendTaken(rec, p))
	if errors.Is(err, context.DeadlineExceeded) {
		r.takenStuck.Store(time.Now().UnixNano())
	}
	if err != nil {
		return instead(err.Error())
	}
	return func() error {
		_, err := written()
		if err == nil {
			err = r.log.Sync()
		}
		if err != nil {
			return instead(err.Error())()
		}
		return nil
	}
}

// HandoffEnded notes in the log that the owner of the handoff that began under id answered
// it for good (hashring.Forwarder.OnHandoffEnded), so that a replay does not deliver it
// again. It is not fsynced: lost, the handoff is delivered again under its id, which its
// owner merges once.
func (r *Router) HandoffEnded(id string) {
	if r.log == nil {
		return
	}
	rec := appendRecord(make([]byte, 0, 1+len(id)), recordHandoffEnded, []byte(id))
	if _, err := r.log.Append(context.Background(), rec); err != nil {
		r.logger.Debug("cluster: the end of a handoff is not in the log; a restart delivers it again", "id", id, "err", err)
	}
}

// appendTaken appends the payload of a recordHandoffTaken to dst: the owner's name and the
// handoff's id (each a uvarint length and bytes), then its body to the end.
func appendTaken(dst []byte, p hashring.PendingHandoff) []byte {
	return append(appendStrings(dst, p.Peer, p.ID), p.Body...)
}

// parseTaken reads a recordHandoffTaken payload. The body is a copy: the replay's record
// buffer is reused.
func parseTaken(payload []byte) (hashring.PendingHandoff, error) {
	parts, body, ok := parseStrings(payload, 2)
	if !ok {
		return hashring.PendingHandoff{}, errors.New("handoff taken record: bad header")
	}
	return hashring.PendingHandoff{Peer: parts[0], ID: parts[1], Body: slices.Clone(body)}, nil
}

// pendingReplay is what a recovery finds pending of the handoffs this member took out: those
// of the checkpoint restored, and those the log took after it, but for those it says ended.
// One given up before the crash is delivered again: its owner merges what it still can.
type pendingReplay struct {
	byID  map[string]hashring.PendingHandoff
	order []string // ids in the order found, so that they are sent again in it
	// checkpointed are the ids the restored checkpoint holds pending.
	checkpointed map[string]bool
}

// addCheckpointed registers a pending handoff of the checkpoint restored.
func (p *pendingReplay) addCheckpointed(h hashring.PendingHandoff) {
	if p.checkpointed == nil {
		p.checkpointed = map[string]bool{}
	}
	p.checkpointed[h.ID] = true
	p.add(h)
}

// inCheckpoint reports whether the checkpoint restored holds the handoff that began under id
// (or what an older owner was sent under it) pending: it was taken after the state was taken
// out, so its state is without the handoff's outputs already.
func (p *pendingReplay) inCheckpoint(id string) bool {
	return p.checkpointed[id] || p.checkpointed[hashring.LegacyHandoffID(id)]
}

// add registers a pending handoff.
func (p *pendingReplay) add(h hashring.PendingHandoff) {
	if p.byID == nil {
		p.byID = map[string]hashring.PendingHandoff{}
	}
	if _, ok := p.byID[h.ID]; !ok {
		p.order = append(p.order, h.ID)
	}
	p.byID[h.ID] = h
}

// end drops the handoff that began under id, and what an older owner was sent under it
// (hashring's legacy retry).
func (p *pendingReplay) end(id string) {
	delete(p.byID, id)
	delete(p.byID, hashring.LegacyHandoffID(id))
}

// list returns the handoffs still pending, in the order found.
func (p *pendingReplay) list() []hashring.PendingHandoff {
	var out []hashring.PendingHandoff
	for _, id := range p.order {
		if h, ok := p.byID[id]; ok {
			out = append(out, h)
		}
	}
	return out
}
