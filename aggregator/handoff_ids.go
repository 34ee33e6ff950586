package aggregator

import (
	"time"
)

// mergedHandoffs are the ids of the handoffs merged lately (MergeOnce), with when: they are
// checkpointed with the state they were merged into, so that a handoff sent again after a
// restart of this member (its answer was lost) is not counted twice.
type mergedHandoffs map[string]int64 // id -> merged at, unix ms

const (
	// keepMergedHandoffs is how long an id is remembered: far longer than a sender tries
	// (its handoff_timeout, a minute by default).
	keepMergedHandoffs = time.Hour
	// maxMergedHandoffs bounds the ids remembered, whatever the churn of the ring.
	maxMergedHandoffs = 65536
)

// has reports whether handoff id was merged less than keepMergedHandoffs before now.
func (m mergedHandoffs) has(id string, now time.Time) bool {
	at, ok := m[id]
	return ok && id != "" && now.UnixMilli()-at < keepMergedHandoffs.Milliseconds()
}

// add records handoff id as merged at now, forgetting the ids too old to come again, and
// the oldest if there are too many.
func (m *mergedHandoffs) add(id string, now time.Time) {
	if id == "" {
		return
	}
	if *m == nil {
		*m = mergedHandoffs{}
	}
	t := now.UnixMilli()
	oldest, oldestID := t, ""
	for k, at := range *m {
		if t-at >= keepMergedHandoffs.Milliseconds() {
			delete(*m, k)
		} else if at < oldest {
			oldest, oldestID = at, k
		}
	}
	if len(*m) >= maxMergedHandoffs {
		delete(*m, oldestID)
	}
	(*m)[id] = t
}

// mergedHandoffs encodes the payload of the merged handoffs' frame: their count, then per
// id the id and when it was merged.
func (e *shardEncoder) mergedHandoffs(m mergedHandoffs) {
	e.uvarint(uint64(len(m)))
	for id, at := range m {
		e.string(id)
		e.varint(at)
	}
}

// mergedHandoffs decodes what shardEncoder.mergedHandoffs wrote.
func (d *frameDecoder) mergedHandoffs() mergedHandoffs {
	m := mergedHandoffs{}
	for range d.count(2) {
		id, at := d.string(), d.varint()
		if d.err != nil {
			break
		}
		m[id] = at
	}
	return m
}
