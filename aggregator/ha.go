package aggregator

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// The HA election (docs/design.md §3.8). A Prometheus HA pair is two or more replicas that
// scrape the same targets and all remote-write, told apart by a replica label; a rule with
// ha counts, per HA group, the samples of one elected replica and drops the others'. The
// replica label is left out of the input series' identity (seriesHashes), so the replicas'
// copies of one target series are one input: when another replica takes over, its counter
// continues from the last value the elected one gave, and the increase across the switch is
// the target's own. The one exception is a counter that the new replica reads lower than the
// old one did: its first sample after the switch is a new baseline, not a reset (replicas
// that disagree on a value, as behind a load balancer, must not make a reset's jump). Failover is judged by sample timestamps, not the wall clock: a replica
// takes over when its samples are failover_timeout newer than the elected replica's newest.
// So a replay of the write-ahead log elects exactly as the live run did, and a replica that
// catches up on an old backlog never wins against one that is current.

// haKey names one HA group under one pair of label names.
type haKey struct {
	groupLabel, replicaLabel, group string
}

// maxHAGroups bounds the elections an aggregator holds, so that a client sending ever new
// group values cannot grow them without limit. A series of a group past it is counted as
// without a replica label (an operator sees it in cardinal_ha_samples_without_replica_total).
const maxHAGroups = 10000

// haForget is how long a group may go unseen before its election is forgotten: a
// Prometheus pair that was decommissioned leaves the metrics and the status page.
const haForget = time.Hour

// haGroup is the election of one HA group.
type haGroup struct {
	key      haKey
	mu       sync.Mutex             // serialises elections; the elected replica's samples take no lock
	elected  atomic.Pointer[string] // the replica whose samples count
	newest   atomic.Int64           // newest sample timestamp (ms) accepted from it
	switches atomic.Uint64          // failovers: another replica elected after the first
	// from is the newest sample timestamp of the replica elected before the last failover
	// (0 before any): an input whose last sample is no newer came from that replica.
	from atomic.Int64
	// seen is the wall clock (ms) of the last request with a series of the group.
	seen atomic.Int64
}

// accept reports whether a series of replica whose newest sample is at t counts, electing
// replica when the group has none or its elected replica has fallen timeout behind.
func (g *haGroup) accept(replica string, t, timeout int64) bool {
	if e := g.elected.Load(); e != nil && *e == replica {
		g.advance(t)
		return true
	}
	if e := g.elected.Load(); e != nil && t <= g.newest.Load()+timeout {
		return false // the usual verdict on the other replicas, without the lock
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.elected.Load()
	switch {
	case e != nil && *e == replica:
		// Elected meanwhile by another request of this replica.
	case e == nil:
		g.elect(replica, t)
	case t > g.newest.Load()+timeout:
		g.from.Store(g.newest.Load())
		g.elect(replica, t)
		g.switches.Add(1)
	default:
		return false
	}
	g.advance(t)
	return true
}

// advance raises the elected replica's newest sample timestamp to t, if t is newer.
func (g *haGroup) advance(t int64) {
	for n := g.newest.Load(); t > n && !g.newest.CompareAndSwap(n, t); n = g.newest.Load() {
	}
}

// elect makes replica the elected one, its samples counting from t. Under g.mu.
func (g *haGroup) elect(replica string, t int64) {
	r := strings.Clone(replica) // it points into a request buffer
	g.elected.Store(&r)
	g.newest.Store(t)
}

// haTracker holds the elections of an aggregator, shared by its rules: the rules that name
// the same labels see one elected replica per group.
type haTracker struct {
	mu     sync.RWMutex
	groups map[haKey]*haGroup
}

// group returns the election of key, creating it, and notes it seen at now (wall clock, ms);
// nil when maxHAGroups are held. The key's strings may point into a request buffer; a new
// group keeps copies.
func (h *haTracker) group(k haKey, now int64) *haGroup {
	h.mu.RLock()
	g := h.groups[k]
	h.mu.RUnlock()
	if g != nil {
		g.seen.Store(now)
		return g
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if g = h.groups[k]; g == nil {
		if len(h.groups) >= maxHAGroups {
			return nil
		}
		k = haKey{strings.Clone(k.groupLabel), strings.Clone(k.replicaLabel), strings.Clone(k.group)}
		g = &haGroup{key: k}
		if h.groups == nil {
			h.groups = map[haKey]*haGroup{}
		}
		h.groups[k] = g
	}
	g.seen.Store(now)
	return g
}

// forget drops the elections of the groups not seen since before (wall clock, ms).
func (h *haTracker) forget(before int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, g := range h.groups {
		if g.seen.Load() < before {
			delete(h.groups, k)
		}
	}
}

// all returns every group, sorted by key.
func (h *haTracker) all() []*haGroup {
	h.mu.RLock()
	out := make([]*haGroup, 0, len(h.groups))
	for _, g := range h.groups {
		out = append(out, g)
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b *haGroup) int {
		return strings.Compare(a.key.groupLabel+"\xff"+a.key.replicaLabel+"\xff"+a.key.group,
			b.key.groupLabel+"\xff"+b.key.replicaLabel+"\xff"+b.key.group)
	})
	return out
}

// haCounts are what one request's series did under a rule's election, added to the rule's
// counters once per request.
type haCounts struct {
	r                     *ruleState
	deduplicated, unnamed uint64
}

// haAccept reports whether series ts counts for rule r, whose election settings are set,
// and counts its samples: dropped as deduplicated when another replica of its group is
// elected, or unnamed when it carries no replica label (it counts, as without ha). With a
// series that counts it returns its group's from: the newest sample of the replica elected
// before the last failover (0: none).
func (b *batch) haAccept(h *haTracker, r *ruleState, ts *prompb.TimeSeries) (bool, int64) {
	set := r.rule.HA
	var group, replica string
	hasReplica := false
	for i := range ts.Labels {
		switch l := &ts.Labels[i]; l.Name {
		case set.GroupLabel:
			group = l.Value
		case set.ReplicaLabel:
			replica, hasReplica = l.Value, true
		}
	}
	n := uint64(len(ts.Samples) + len(ts.Histograms))
	if !hasReplica {
		b.haCount(r).unnamed += n
		return true, 0
	}
	// The series of a request mostly come from one replica of one group: the last group
	// the request looked up is tried first.
	g := b.haLast
	if g == nil || g.key.group != group || g.key.groupLabel != set.GroupLabel || g.key.replicaLabel != set.ReplicaLabel {
		if g = h.group(haKey{set.GroupLabel, set.ReplicaLabel, group}, b.now); g == nil {
			b.haCount(r).unnamed += n
			return true, 0
		}
		b.haLast = g
	}
	if g.accept(replica, newestTimestamp(ts), r.failover) {
		return true, g.from.Load()
	}
	b.haCount(r).deduplicated += n
	return false, 0
}

// haCount returns the request's counts for rule r.
func (b *batch) haCount(r *ruleState) *haCounts {
	for i := len(b.ha) - 1; i >= 0; i-- {
		if b.ha[i].r == r {
			return &b.ha[i]
		}
	}
	b.ha = append(b.ha, haCounts{r: r})
	return &b.ha[len(b.ha)-1]
}

// flushHA adds the request's counts to its rules' counters.
func (b *batch) flushHA() {
	for i := range b.ha {
		c := &b.ha[i]
		if c.deduplicated > 0 {
			c.r.haDeduplicated.Add(c.deduplicated)
		}
		if c.unnamed > 0 {
			c.r.haUnnamed.Add(c.unnamed)
		}
	}
	b.ha = b.ha[:0]
}

// newestTimestamp returns the timestamp of a series' newest sample (samples are in order).
func newestTimestamp(ts *prompb.TimeSeries) int64 {
	var t int64
	if n := len(ts.Samples); n > 0 {
		t = ts.Samples[n-1].Timestamp
	}
	if n := len(ts.Histograms); n > 0 {
		t = max(t, ts.Histograms[n-1].Timestamp)
	}
	return t
}

// HAGroup is one HA group's election, for the status page and metrics.
type HAGroup struct {
	// GroupLabel and ReplicaLabel are the label names; Group the group label's value.
	GroupLabel, ReplicaLabel, Group string
	// Elected is the replica whose samples count.
	Elected string
	// Newest is the newest sample accepted from it.
	Newest time.Time
	// Failovers counts the elections after the first since the process started.
	Failovers uint64
	// From is the newest sample of the replica elected before the last failover (zero
	// time: none since the group was first seen or restored).
	From time.Time
}

// HAGroups returns the elections of every HA group seen, sorted.
func (a *Aggregator) HAGroups() []HAGroup {
	var out []HAGroup
	for _, g := range a.ha.all() {
		e := g.elected.Load()
		if e == nil {
			continue
		}
		out = append(out, HAGroup{GroupLabel: g.key.groupLabel, ReplicaLabel: g.key.replicaLabel, Group: g.key.group,
			Elected: *e, Newest: time.UnixMilli(g.newest.Load()), Failovers: g.switches.Load()})
		if f := g.from.Load(); f != 0 {
			out[len(out)-1].From = time.UnixMilli(f)
		}
	}
	return out
}

// haReplica returns the replica label of a rule with ha, or "" (no label name is empty).
func haReplica(r *rules.Rule) string {
	if r.HA == nil {
		return ""
	}
	return r.HA.ReplicaLabel
}
