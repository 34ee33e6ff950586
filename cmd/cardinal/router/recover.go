package router

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/wal"
)

// RecoverStats is what Recover found.
type RecoverStats struct {
	// Checkpoint is the index of the checkpoint restored; HasCheckpoint is false when there
	// was none (a new log).
	Checkpoint    uint64
	HasCheckpoint bool
	Restored      aggregator.RestoreStats
	// Requeued is the number of series put back into downstream queues; Handoffs the
	// cluster handoffs being delivered again; HandoffsMerged the handoffs from peers that
	// the log held and the checkpoint did not (merged again).
	Requeued, Handoffs, HandoffsMerged int
	// UnreadableForward counts the bodies of what the queues to peers held that did not
	// decode: left out (logged), the rest restored.
	UnreadableForward int
	// Records and Samples were replayed from the log after the checkpoint; Delivered of
	// the records note batches a downstream acknowledged.
	Records, Samples, Delivered int
	Took                        time.Duration
}

// Recover brings the aggregator and the sinks back to where the previous process left them:
// the newest checkpoint's state is restored, what the sinks held then is queued again, and
// the log after it is replayed into the aggregator. What each remote-write downstream had
// acknowledged (the checkpoint's marks and the recordDelivered after it) is restored too, so
// that what is queued again, and the windows the replay closes again, are not sent twice. Call it after the rules are set and
// before anything is ingested, the flusher runs or the sinks start.
func (r *Router) Recover() (RecoverStats, error) {
	var st RecoverStats
	if r.log == nil {
		return st, nil
	}
	start := time.Now()
	from := r.log.FirstIndex()
	cp, ok, err := r.log.LatestCheckpoint()
	if err != nil {
		return st, err
	}
	var pend pendingReplay // the handoffs this member took out and had not delivered
	if ok {
		if err := r.restore(cp, &st, &pend); err != nil {
			return st, fmt.Errorf("checkpoint %d: %w (move it out of wal.dir to start from the log alone)", cp.Index, err)
		}
		from = cp.Index + 1
		r.lastCheckpoint, r.hasCheckpoint = cp.Index, true
	}
	dec := remotewrite.NewDecoder(r.maxBytes)
	dec.SetLimits(r.limits)
	var req prompb.WriteRequest
	err = r.log.Replay(from, func(index uint64, rec []byte) error {
		kind, payload, err := parseRecord(rec)
		if err != nil {
			return fmt.Errorf("record %d: %w", index, err)
		}
		switch kind {
		case recordRemoteWrite1:
			if err := dec.Decode(payload, &req); err != nil {
				return fmt.Errorf("record %d: %w", index, err)
			}
			remotewrite.RemoveInvalidSeries(&req, r.limits, func(error) {})
			st.Samples += remotewrite.CountSamples(req.Timeseries)
			r.ingestRequest(req.Timeseries, nil, hashring.ForwardInfo{}, false)
		case recordForwarded:
			fi, body, err := parseForwarded(payload)
			if err != nil {
				return fmt.Errorf("record %d: %w", index, err)
			}
			if err := dec.Decode(body, &req); err != nil {
				return fmt.Errorf("record %d: %w", index, err)
			}
			remotewrite.RemoveInvalidSeries(&req, r.limits, func(error) {})
			st.Samples += remotewrite.CountSamples(req.Timeseries)
			r.ingestRequest(req.Timeseries, nil, fi, true)
		case recordHandoffMerged:
			id, body, err := parseHandoff(payload)
			if err != nil {
				return fmt.Errorf("record %d: %w", index, err)
			}
			r.replayHandoff(id, body, &st)
		case recordHandoffTaken:
			p, err := parseTaken(payload)
			if err != nil {
				return fmt.Errorf("record %d: %w", index, err)
			}
			r.replayTaken(p, &pend)
		case recordHandoffEnded:
			pend.end(string(payload))
		case recordDelivered:
			if err := parseDelivered(payload, r.restoreMark); err != nil {
				return fmt.Errorf("record %d: %w", index, err)
			}
			st.Delivered++
		}
		st.Records++
		return nil
	})
	if err == nil {
		st.Handoffs = r.resend(pend.list())
	}
	st.Took = time.Since(start)
	r.metrics.replayedRecords.Add(float64(st.Records))
	r.metrics.replayedSamples.Add(float64(st.Samples))
	r.metrics.requeuedSeries.Add(float64(st.Requeued))
	r.metrics.replayDuration.Set(st.Took.Seconds())
	if err != nil {
		return st, fmt.Errorf("replaying the write-ahead log: %w", err)
	}
	return st, nil
}

// restore loads a checkpoint: the sinks' part is queued again (before the sinks start), the
// handoffs it holds are added to pend, what the queues to peers held is routed again by the
// ring now in force, the rest goes to the aggregator.
func (r *Router) restore(cp wal.Checkpoint, st *RecoverStats, pend *pendingReplay) error {
	rc, err := cp.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<16)
	saved, err := readPending(br, r.restoreMark)
	if err != nil {
		return err
	}
	if st.Restored, err = r.agg.Restore(br); err != nil {
		return err
	}
	for _, h := range saved.handoffs {
		pend.addCheckpointed(h)
	}
	// The rest of the file is read so that the wal's checksum of the whole is verified.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	st.Checkpoint, st.HasCheckpoint = cp.Index, true
	dec := remotewrite.NewDecoder(0)
	for i, body := range saved.forward {
		// What waited for peers is routed again, by the ring now in force, one body at a
		// time: a backed-up queue's backlog decoded at once would take many times its size.
		var req prompb.WriteRequest
		if err := dec.Decode(body, &req); err != nil {
			// Only its framing was checked when it was taken: one body that does not decode
			// costs its series, not the whole checkpoint.
			r.logger.Error("a body of what the queues to cluster peers held does not decode; its series are lost, the rest is restored",
				"body", i, "bytes", len(body), "err", err)
			st.UnreadableForward++
			continue
		}
		r.ingestRequest(req.Timeseries, nil, hashring.ForwardInfo{}, false)
		st.Requeued += len(req.Timeseries)
		saved.forward[i] = nil
	}
	for name, body := range saved.sinks {
		var req prompb.WriteRequest
		if err := dec.Decode(body, &req); err != nil {
			return fmt.Errorf("%w: what downstream %q held: %v", errBadCheckpoint, name, err)
		}
		// The decoder's strings point into its buffer, which the next body reuses: the sink
		// keeps these series, so they get a buffer of their own.
		dec = remotewrite.NewDecoder(0)
		if !r.sinks.SendTo(name, req.Timeseries) {
			r.logger.Warn("a downstream in the checkpoint is no longer configured; what it held is dropped",
				"downstream", name, "series", len(req.Timeseries))
			continue
		}
		st.Requeued += len(req.Timeseries)
	}
	return nil
}

// replayTaken replays a recordHandoffTaken: what the checkpoint restored and the records
// before rebuilt of the outputs the handoff names is dropped (its owner has it, or gets it
// from the handoff, delivered again), and the handoff is pending again, unless the
// checkpoint restored holds it pending already. With no cluster configured any more, the
// state stays and the handoff is dropped.
func (r *Router) replayTaken(p hashring.PendingHandoff, pend *pendingReplay) {
	if r.cluster == nil {
		// Alone now, this member owns every output: it keeps what the replay rebuilt.
		return
	}
	if pend.inCheckpoint(p.ID) {
		// The checkpoint restored was taken after the state was taken out, before this
		// record was written: it holds the handoff pending and not its state, and what the
		// records between rebuilt came after the taking out, so it stays.
		return
	}
	if n, err := r.agg.Forget(p.Body); err != nil {
		r.logger.Warn("a handoff taken out in the WAL cannot be read; what the replay rebuilt of its outputs stays here", "id", p.ID, "err", err)
	} else if n > 0 {
		r.logger.Info("a handoff taken out in the WAL: its outputs, rebuilt by the replay, are dropped again", "id", p.ID, "outputs", n)
	}
	pend.add(p)
}

// resend delivers again, under their ids, the handoffs a recovery found pending (an owner
// that merged one already says so), and returns how many.
func (r *Router) resend(hs []hashring.PendingHandoff) int {
	switch {
	case len(hs) == 0:
		return 0
	case r.cluster == nil:
		r.logger.Warn("the WAL holds cluster handoffs not yet delivered, but no cluster is configured: they are dropped", "handoffs", len(hs))
		return 0
	}
	r.cluster.ResendHandoffs(hs)
	return len(hs)
}

// restoreMark raises the mark of a series of a tracked downstream; a downstream no longer
// configured is ignored.
func (r *Router) restoreMark(sink string, hash uint64, ts int64) {
	d := r.delivered[sink]
	if d == nil {
		return
	}
	d.mu.Lock()
	d.raise(hash, ts)
	d.mu.Unlock()
}
