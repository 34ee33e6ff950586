package hashring

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// settleMember is a forwarder whose HandedOverHandler is served on a loopback port.
type settleMember struct {
	f    *Forwarder
	addr string
	reg  *prometheus.Registry
}

func newSettleMember(t *testing.T, name string, timeout time.Duration) *settleMember {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := NewForwarder(name, DefaultForwardConfig(), timeout, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.HandedOverHandler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = f.Shutdown(t.Context()) })
	return &settleMember{f: f, addr: strings.TrimPrefix(srv.URL, "http://"), reg: reg}
}

// join gives each member the others as its members.
func join(ms ...*settleMember) {
	for _, m := range ms {
		var others []Member
		for _, o := range ms {
			if o != m {
				others = append(others, Member{Name: o.f.self, Addr: o.addr})
			}
		}
		m.f.SetMembers(others)
	}
}

// ownedKeys returns some keys f owns in its ring.
func ownedKeys(f *Forwarder) []uint64 {
	var keys []uint64
	for key := uint64(0); len(keys) < 100 && key < Shards; key++ {
		if f.Owns(key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// awaitsAny reports whether f awaits a handoff for any of keys.
func awaitsAny(f *Forwarder, keys []uint64) bool {
	for _, k := range keys {
		if f.Awaits(k) {
			return true
		}
	}
	return false
}

// A member that starts (or restarts on its last ring) holds every output it owns for the
// state a running cluster may have of it. When every peer says it has handed over the ring,
// nothing more can come, and the wait ends long before the handoff timeout; while one peer
// has not (it has not started, or still holds another's state), it goes on.
func TestAStartWaitsUntilEveryPeerHasHandedOver(t *testing.T) {
	a, b, c := newSettleMember(t, "node-a", time.Minute), newSettleMember(t, "node-b", time.Minute), newSettleMember(t, "node-c", time.Minute)
	var cHolds atomic.Bool
	cHolds.Store(true)
	c.f.HoldsForOthers(cHolds.Load)
	join(a, b, c)
	keys := ownedKeys(a.f)
	if len(keys) == 0 || !awaitsAny(a.f, keys) {
		t.Fatal("a start does not wait for handoffs")
	}
	a.f.Started()
	b.f.Started()
	c.f.Started()
	// c holds state begun for a sender on another ring, for node-a maybe: node-a waits.
	time.Sleep(4 * settleEvery)
	if !awaitsAny(a.f, keys) {
		t.Fatal("the wait ended while a peer still held outputs for others")
	}
	if w := a.f.HandoffWait(); w.Settled || len(w.Waiting) != 1 || !strings.HasPrefix(w.Waiting[0], "node-c: status 409: not handed over: holding outputs") {
		t.Errorf("the wait says %+v, want node-c holding outputs", w)
	}
	cHolds.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for awaitsAny(a.f, keys) {
		if time.Now().After(deadline) {
			t.Fatal("the wait did not end within 10 s of every peer having handed over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := a.f.HandoffWait(); !w.Settled || w.SettledAfter <= 0 || w.Waiting != nil {
		t.Errorf("the wait says %+v once every peer handed over", w)
	}
	if n := waitObservations(t, a.reg, "handed_over"); n != 1 {
		t.Errorf("cardinal_cluster_handoff_wait_seconds{result=\"handed_over\"} observed %d waits, want 1", n)
	}
	if n := waitObservations(t, a.reg, "timeout"); n != 0 {
		t.Errorf("cardinal_cluster_handoff_wait_seconds{result=\"timeout\"} observed %d waits, want 0", n)
	}
}

// A peer that routes by another ring, is still taking state out, has a handoff pending or
// holds another's outputs has not handed over, and says why.
func TestHandedOverSaysWhyNot(t *testing.T) {
	m := newSettleMember(t, "node-a", time.Minute)
	var holds atomic.Bool
	m.f.HoldsForOthers(holds.Load)
	m.f.SetMembers([]Member{{Name: "node-b", Addr: "127.0.0.1:1"}})
	v := m.f.Ring().VersionString()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		m.f.mu.Lock()
		n := len(m.f.draining) // the start's ring (node-a alone) has no queue to drain
		m.f.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ring node-a started alone in is still draining after 5 s")
		}
	}
	draining := func(on bool, to ...string) func() {
		return func() {
			m.f.mu.Lock()
			defer m.f.mu.Unlock()
			clear(m.f.draining)
			if on {
				m.f.draining[drainingSet(to...)] = true
			}
		}
	}
	busy := func(to ...string) func() { // a request routed by the set is being taken in
		return func() {
			m.f.mu.Lock()
			defer m.f.mu.Unlock()
			clear(m.f.draining)
			ps := drainingSet(to...)
			ps.inUse.Add(1)
			m.f.draining[ps] = true
		}
	}
	ask := func(version string) (int, string, http.Header) {
		t.Helper()
		rec := httptest.NewRecorder()
		m.f.HandedOverHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HandedOverPath+"?ring="+version, nil))
		return rec.Code, rec.Body.String(), rec.Header()
	}
	for _, step := range []struct {
		do      func()
		version string
		code    int
		why     string
		// own and drainsTo are the headers HeaderHandedOverOwn and HeaderDrainingTo.
		own, drainsTo string
	}{
		{func() {}, v, http.StatusConflict, "still taking out", "", ""},
		{m.f.Started, v, http.StatusOK, "handed over", "", ""},
		{func() {}, "0000000000000001", http.StatusConflict, "ring " + v + " here", "", ""},
		{func() { holds.Store(true) }, v, http.StatusConflict, "holding outputs", "", ""},
		{func() {
			holds.Store(false)
			m.f.sending.add(PendingHandoff{Peer: "node-b", ID: "x"}, m.f.metrics.handoffsPending)
		}, v, http.StatusConflict, "1 handoffs pending", "", ""},
		{func() { m.f.sending.done("x", m.f.metrics.handoffsPending) }, v, http.StatusOK, "handed over", "", ""},
		// A set whose queues have finished, about to go: still sending, as far as is known.
		{draining(true), v, http.StatusConflict, "a replaced ring's queues are still sending\n", "", ""},
		// Queues still sending are all that is left: what it owned is handed over.
		{draining(true, "node-h", "node-c"), v, http.StatusConflict, "still sending to node-c, node-h", "true", "node-c,node-h"},
		{func() { holds.Store(true) }, v, http.StatusConflict, "holding outputs", "", "node-c,node-h"},
		{func() { holds.Store(false) }, v, http.StatusConflict, "still sending to node-c, node-h", "true", "node-c,node-h"},
		// Whatever else is left, the queues' members are named.
		{func() { m.f.sending.add(PendingHandoff{Peer: "node-b", ID: "y"}, m.f.metrics.handoffsPending) }, v, http.StatusConflict, "1 handoffs pending", "", "node-c,node-h"},
		{func() { m.f.sending.done("y", m.f.metrics.handoffsPending) }, "0000000000000001", http.StatusConflict, "ring " + v + " here", "", "node-c,node-h"},
		// A request routed by the replaced ring may still begin here an output given up.
		{busy("node-c"), v, http.StatusConflict, "a request routed by a replaced ring is still being taken in", "", "node-c"},
		{draining(false), v, http.StatusOK, "handed over", "", ""},
	} {
		step.do()
		code, body, h := ask(step.version)
		if code != step.code || !strings.Contains(body, step.why) {
			t.Errorf("answered %d %q, want %d and %q", code, body, step.code, step.why)
		}
		if own, to := h.Get(HeaderHandedOverOwn), h.Get(HeaderDrainingTo); own != step.own || to != step.drainsTo {
			t.Errorf("answered %q with %s %q and %s %q, want %q and %q", body, HeaderHandedOverOwn, own, HeaderDrainingTo, to, step.own, step.drainsTo)
		}
	}
	rec := httptest.NewRecorder()
	m.f.HandedOverHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HandedOverPath, nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("no ring: answered %d, want 400", rec.Code)
	}
}

// Settled, a member stops waiting for the shards it gained from members still in the ring,
// but not for one gained from a member that has left: that member's handoff (it may be
// leaving on shutdown) may still come, and only it or the timeout ends the wait.
func TestASettledRingStillAwaitsTheShardsOfAMemberThatLeft(t *testing.T) {
	f, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	f.now = func() time.Time { return clock }
	f.SetMembers([]Member{{Name: "node-b"}, {Name: "node-c"}})
	clock = clock.Add(2 * time.Minute)
	f.SetMembers([]Member{{Name: "node-b"}}) // node-c leaves
	clock = clock.Add(time.Second)
	f.SetMembers([]Member{{Name: "node-b"}, {Name: "node-d"}}) // node-d joins
	clock = clock.Add(time.Second)
	f.SetMembers([]Member{{Name: "node-d"}}) // node-b leaves: node-a gains from node-b and node-c
	f.cur.Load().settled.Store(true)         // as if every peer said so
	abc, ab, abd, ad := ringOf("node-a", "node-b", "node-c"), ringOf("node-a", "node-b"), ringOf("node-a", "node-b", "node-d"), ringOf("node-a", "node-d")
	var fromB, fromC int
	for key := range uint64(Shards) {
		if ad.OwnerOfKey(key).Name != "node-a" {
			continue
		}
		switch {
		case abd.OwnerOfKey(key).Name == "node-b": // gained in the last change, from node-b: left
			fromB++
			if !f.Awaits(key) {
				t.Fatalf("shard %d, gained from node-b which left: not awaited", key)
			}
		case abc.OwnerOfKey(key).Name == "node-c" && ab.OwnerOfKey(key).Name == "node-a": // from node-c: left
			fromC++
			if !f.Awaits(key) {
				t.Fatalf("shard %d, gained from node-c which left: not awaited", key)
			}
		}
	}
	if fromB == 0 || fromC == 0 {
		t.Fatalf("the rings do not exercise the test: %d from node-b, %d from node-c", fromB, fromC)
	}
	// The status page says so, though the ring is settled.
	want := []DepartedMember{{Name: "node-b", Until: clock.Add(time.Minute)}, {Name: "node-c", Until: clock.Add(time.Minute - 2*time.Second)}}
	if got := f.HandoffWait().Departed; !slices.Equal(got, want) {
		t.Errorf("HandoffWait().Departed = %v, want %v", got, want)
	}

	// node-c comes back: what node-a gained from it, node-c (in the ring again) has
	// handed over once the ring settles.
	f.SetMembers([]Member{{Name: "node-c"}, {Name: "node-d"}})
	if !awaitsAnyKey(f) {
		t.Fatal("nothing awaited after node-c came back, before the ring settled")
	}
	f.cur.Load().settled.Store(true)
	if got := f.HandoffWait().Departed; !slices.Equal(got, want[:1]) {
		t.Errorf("node-c back: HandoffWait().Departed = %v, want %v", got, want[:1])
	}
	acd := ringOf("node-a", "node-c", "node-d")
	for key := range uint64(Shards) {
		gainedFromB := ad.OwnerOfKey(key).Name == "node-a" && abd.OwnerOfKey(key).Name == "node-b"
		if want := gainedFromB && acd.OwnerOfKey(key).Name == "node-a"; f.Awaits(key) != want {
			t.Fatalf("shard %d, settled: awaits %v, want %v (only what node-b, gone, had)", key, !want, want)
		}
	}
}

// awaitsAnyKey reports whether f awaits a handoff for any shard.
func awaitsAnyKey(f *Forwarder) bool {
	for key := range uint64(Shards) {
		if f.Awaits(key) {
			return true
		}
	}
	return false
}

// waitObservations returns how many waits cardinal_cluster_handoff_wait_seconds counted with
// result, failing if the series is not exported.
func waitObservations(t *testing.T, reg *prometheus.Registry, result string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cardinal_cluster_handoff_wait_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("cardinal_cluster_handoff_wait_seconds{result=%q} is not exported", result)
	return 0
}

// ringOf is the ring of the members with these names.
func ringOf(names ...string) *Ring {
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{Name: n}
	}
	return New(ms)
}

// drainingSet is a replaced ring's peer set whose queues to the members to have not
// finished sending (none when to is empty).
func drainingSet(to ...string) *peerSet {
	ps := &peerSet{queues: []*peerQueue{nil}} // this member's place
	for _, name := range to {
		ps.queues = append(ps.queues, &peerQueue{name: name, done: make(chan struct{})})
	}
	return ps
}

// A peer whose only work left is a replaced ring's queues to other members has handed over
// what it owned, and says where those queues send: the asker reads both from the answer.
func TestAnAnswerNamesTheQueuesStillSending(t *testing.T) {
	a, b := newSettleMember(t, "node-a", time.Minute), newSettleMember(t, "node-b", time.Minute)
	join(a, b)
	b.f.Started()
	version := b.f.Ring().VersionString()
	client := &http.Client{Transport: a.f.transport(), Timeout: settleTimeout}
	if got := a.f.askHandedOver(client, "node-b", version); !got.heard || got.why != "" || !got.own || got.drainsTo != nil {
		t.Fatalf("node-b handed over everything: asked, %+v", got)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if draining, _, _ := b.f.replacedQueues(); !draining { // node-b's start ring, alone
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node-b's start ring is still draining after 5 s")
		}
	}
	b.f.mu.Lock()
	b.f.draining[drainingSet("node-h")] = true
	b.f.mu.Unlock()
	t.Cleanup(func() { // before Shutdown: the set's queues are not real ones
		b.f.mu.Lock()
		clear(b.f.draining)
		b.f.mu.Unlock()
	})
	got := a.f.askHandedOver(client, "node-b", version)
	if !got.heard || !got.own || !slices.Equal(got.drainsTo, []string{"node-h"}) || !strings.Contains(got.why, "still sending to node-h") {
		t.Fatalf("node-b still sending to node-h: asked, %+v", got)
	}
	var holds atomic.Bool
	holds.Store(true)
	b.f.HoldsForOthers(holds.Load)
	if got := a.f.askHandedOver(client, "node-b", version); got.own || !slices.Equal(got.drainsTo, []string{"node-h"}) {
		t.Fatalf("node-b holding outputs for others, and sending to node-h: asked, %+v", got)
	}
	if got := a.f.askHandedOver(client, "node-b", "0000000000000001"); got.own || got.why == "" {
		t.Fatalf("another ring: asked, %+v", got)
	}
}

// An output gained from a member still in the ring waits for that member to have handed
// over what it owned and for every replaced ring's queue to it, wherever it is: what such a
// queue still holds begins a stray there. A queue to another member (one that hangs, which
// no queue drains to) does not hold it back.
func TestAShardGainedFromAMemberWaitsForTheQueuesToIt(t *testing.T) {
	f, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// node-a starts outside the ring of its peers, then they add it: it gains a share of
	// every peer's shards, from members still in the ring.
	yes, no := true, false
	peers := []Member{{Name: "node-b"}, {Name: "node-c"}, {Name: "node-h"}}
	states := func(inRing *bool) []PeerState {
		var st []PeerState
		for _, p := range peers {
			st = append(st, PeerState{Name: p.Name, Member: true, RingVersion: New(peers).VersionString(), InRing: inRing})
		}
		return st
	}
	f.SetMembersFrom(peers, states(&no))
	f.SetMembersFrom(peers, states(&yes))
	if f.Outside() {
		t.Fatal("still outside once its peers added it")
	}
	var keys []uint64 // gained from node-c
	withoutA := New(peers)
	for key := range uint64(Shards) {
		if f.Owns(key) && withoutA.OwnerOfKey(key).Name == "node-c" {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		t.Fatal("the rings do not exercise the test: nothing gained from node-c")
	}
	ps := f.cur.Load()
	set := func(done, drains []string) {
		d, q := map[string]bool{}, map[string]bool{}
		for _, n := range done {
			d[n] = true
		}
		for _, n := range drains {
			q[n] = true
		}
		ps.last.Store(&round{done: d, drains: q})
	}
	for _, c := range []struct {
		done, drains []string
		want         bool
	}{
		{nil, nil, true}, // node-c has not said so yet
		{[]string{"node-b", "node-c"}, nil, false},                // it has, and nothing is on its way to it
		{[]string{"node-b", "node-c"}, []string{"node-h"}, false}, // queues to node-h only
		{[]string{"node-b", "node-c"}, []string{"node-c"}, true},  // a queue to node-c still sends
		{[]string{"node-b"}, []string{"node-h"}, true},            // node-c has not handed over
	} {
		set(c.done, c.drains)
		for _, key := range keys {
			if got := f.Awaits(key); got != c.want {
				t.Fatalf("done %v, queues sending to %v: shard %d gained from node-c awaited %v, want %v", c.done, c.drains, key, got, c.want)
			}
		}
	}
	ps.settled.Store(true) // every peer handed over everything: no queue sends any more
	if awaitsAny(f, keys) {
		t.Fatal("settled: a shard gained from node-c is still awaited")
	}
}

// Each round of the handed-over question counts with the one before: a peer is done when
// it handed over what it owned in both, and a queue that sent to a member in either still
// holds back what was gained from that member. A queue that finished just before its
// member answered may have delivered to a member that answered a moment earlier, which
// says it holds a stray only in the next round.
func TestARoundCountsWithTheOneBefore(t *testing.T) {
	peers := []string{"node-b", "node-c"}
	done := handedOverAnswer{heard: true, own: true}
	drainingToC := handedOverAnswer{heard: true, why: "status 409: not handed over: a replaced ring's queues are still sending to node-c", own: true, drainsTo: []string{"node-c"}}
	holding := handedOverAnswer{heard: true, why: "status 409: not handed over: holding outputs begun for a sender on another ring"}
	silent := handedOverAnswer{why: "context deadline exceeded"}
	keys := func(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
	r := &round{}
	for i, step := range []struct {
		answers      []handedOverAnswer
		mine         []string
		done, drains []string
		answered     []string
		all          bool
	}{
		// The first round: nobody is done yet; node-b's queue sends to node-c.
		{[]handedOverAnswer{drainingToC, done}, nil, nil, []string{"node-c"}, []string{"node-b", "node-c"}, false},
		// node-b's queue has delivered to node-c, which answered just before that: both
		// say they handed over, but node-c's shards still wait a round.
		{[]handedOverAnswer{done, done}, nil, []string{"node-b", "node-c"}, []string{"node-c"}, []string{"node-b", "node-c"}, false},
		// node-c now holds the stray it began.
		{[]handedOverAnswer{done, holding}, []string{"node-d"}, []string{"node-b"}, []string{"node-d"}, []string{"node-b", "node-c"}, false},
		// This member's own queue to node-d has finished: it counts one more round.
		{[]handedOverAnswer{done, silent}, nil, []string{"node-b"}, []string{"node-d"}, []string{"node-b"}, false},
		{[]handedOverAnswer{done, done}, nil, []string{"node-b"}, nil, []string{"node-b", "node-c"}, false},
		{[]handedOverAnswer{done, done}, nil, []string{"node-b", "node-c"}, nil, []string{"node-b", "node-c"}, true},
		// Every peer has handed over, but this member's own queue still sends: not yet
		// all, in this round nor the next.
		{[]handedOverAnswer{done, done}, []string{"node-c"}, []string{"node-b", "node-c"}, []string{"node-c"}, []string{"node-b", "node-c"}, false},
		{[]handedOverAnswer{done, done}, nil, []string{"node-b", "node-c"}, []string{"node-c"}, []string{"node-b", "node-c"}, false},
		{[]handedOverAnswer{done, done}, nil, []string{"node-b", "node-c"}, nil, []string{"node-b", "node-c"}, true},
	} {
		r = judge(peers, step.answers, step.mine, r)
		if got := keys(r.done); !slices.Equal(got, step.done) {
			t.Errorf("round %d: done %v, want %v", i+1, got, step.done)
		}
		if got := keys(r.drains); !slices.Equal(got, step.drains) {
			t.Errorf("round %d: queues sending to %v, want %v", i+1, got, step.drains)
		}
		if got := keys(r.answered); !slices.Equal(got, step.answered) {
			t.Errorf("round %d: answered %v, want %v", i+1, got, step.answered)
		}
		if r.all != step.all {
			t.Errorf("round %d: all handed over %v, want %v", i+1, r.all, step.all)
		}
	}
}
