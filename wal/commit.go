package wal

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrFull is wrapped by Append's error when the entry would take the segment files past
// max_bytes; the receiver answers 503 so the sender keeps the data and retries.
var ErrFull = errors.New("wal: full")

// maxBatchEntries bounds the appends written and fsynced together, and the queue before the
// committer.
const maxBatchEntries = 256

// appendRequest is one Append waiting for the committer.
type appendRequest struct {
	payload []byte
	size    int64
	done    chan appendResult // buffered: the committer never waits for the appender
}

type appendResult struct {
	index uint64
	err   error
}

// Append writes payload as the next entry and returns its index once it is as durable as
// the fsync mode promises: with always, fsynced (concurrent appends share one fsync); with
// interval, written to the operating system and fsynced within fsync_interval; with never,
// written. It fails with an error wrapping ErrFull when the log is at max_bytes, and with
// the first write or fsync error for good after one happened. ctx bounds the wait for a
// place in the queue; once queued, the entry is written and Append waits for it. payload is
// not retained after Append returns.
func (l *Log) Append(ctx context.Context, payload []byte) (uint64, error) {
	wait, err := l.Enqueue(ctx, payload)
	if err != nil {
		return 0, err
	}
	return wait()
}

// Enqueue is Append in two steps: it returns once the entry has its place in the log, every
// entry queued after it to be written after it, and wait returns what Append would, once it
// is written. A caller that must order the entry with others (a lock held while it is
// queued) need not hold that order for the write and fsync. payload must not change until
// wait has returned.
func (l *Log) Enqueue(ctx context.Context, payload []byte) (wait func() (uint64, error), err error) {
	size := entrySize(len(payload))
	l.mu.Lock()
	switch {
	case l.closed:
		err = ErrClosed
		l.m.rejected.WithLabelValues(rejectClosed).Inc()
	case l.failed != nil:
		err = l.failed
		l.m.rejected.WithLabelValues(rejectFailed).Inc()
	case l.reserved+size > int64(l.cfg.MaxBytes):
		err = fmt.Errorf("%w: an entry of %d bytes would take the log past wal.max_bytes %d (%d in use); truncation after the next checkpoint frees space",
			ErrFull, size, l.cfg.MaxBytes, l.reserved)
		l.m.rejected.WithLabelValues(rejectFull).Inc()
	default:
		l.reserved += size
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r := &appendRequest{payload: payload, size: size, done: make(chan appendResult, 1)}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		l.mu.Lock()
		l.reserved -= size
		l.mu.Unlock()
		return nil, ctx.Err()
	case <-l.stopped:
		return nil, ErrClosed
	}
	return func() (uint64, error) {
		select {
		case res := <-r.done:
			return res.index, res.err
		case <-l.stopped: // the committer answers every request it took before it stops
			select {
			case res := <-r.done:
				return res.index, res.err
			default:
				return 0, ErrClosed
			}
		}
	}, nil
}

// commitLoop is the committer: it takes every queued append, writes them as one batch and,
// with fsync: always, fsyncs once for all of them.
func (l *Log) commitLoop() {
	defer close(l.stopped)
	queue := make([]*appendRequest, 0, maxBatchEntries)
	for {
		select {
		case r := <-l.reqs:
			l.commit(l.drain(append(queue[:0], r)))
		case <-l.stop:
			for q := l.drain(queue[:0]); len(q) > 0; q = l.drain(queue[:0]) {
				l.commit(q)
			}
			return
		}
	}
}

// drain adds the appends already queued to q, up to maxBatchEntries, without waiting.
func (l *Log) drain(q []*appendRequest) []*appendRequest {
	for len(q) < maxBatchEntries {
		select {
		case r := <-l.reqs:
			q = append(q, r)
		default:
			return q
		}
	}
	return q
}

// commit writes q as one batch, fsyncs it under fsync: always, and answers each append.
func (l *Log) commit(q []*appendRequest) {
	first, err := l.write(q)
	if err == nil && l.cfg.Fsync == FsyncAlways {
		err = l.fsync()
	}
	if err != nil {
		l.m.rejected.WithLabelValues(rejectFailed).Add(float64(len(q)))
	}
	for i, r := range q {
		if err != nil {
			r.done <- appendResult{err: err}
		} else {
			r.done <- appendResult{index: first + uint64(i)}
		}
	}
}

// write appends q to the segment files and returns the index of its first entry.
func (l *Log) write(q []*appendRequest) (uint64, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed != nil {
		return 0, failed
	}
	first := l.last.Load() + 1
	l.batch.Clear()
	for i, r := range q {
		l.frame = appendFrame(l.frame[:0], r.payload)
		l.batch.Write(first+uint64(i), l.frame) // copies
	}
	if err := l.tw.WriteBatch(&l.batch); err != nil {
		return 0, l.fail(fmt.Errorf("wal: write: %w", err))
	}
	l.last.Store(first + uint64(len(q)) - 1)

	// Follow tidwall/wal's rule for starting a segment file: before a batch when the last
	// one is over the segment size, and after each entry that takes it to the size.
	segSize := int64(l.opts.segmentSize)
	var written int64
	created := 0
	if l.tailBytes > segSize {
		created, l.tailBytes = created+1, 0
	}
	for _, r := range q {
		written += r.size
		if l.tailBytes += r.size; l.tailBytes >= segSize {
			created, l.tailBytes = created+1, 0
		}
	}
	if created > 0 {
		l.dirDirty.Store(true)
	}
	l.diskBytes += written
	l.segments += created
	l.m.diskBytes.Set(float64(l.diskBytes))
	l.m.segments.Set(float64(l.segments))
	l.m.appends.Add(float64(len(q)))
	l.m.appendedBytes.Add(float64(written))
	return first, nil
}

// syncLoop fsyncs every fsync_interval (fsync: interval) until Close.
func (l *Log) syncLoop() {
	defer l.syncer.Done()
	t := time.NewTicker(time.Duration(l.cfg.FsyncInterval))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if l.usable() == nil {
				l.fsync() // a failure is recorded and refuses further appends
			}
		case <-l.stop:
			return
		}
	}
}
