package hashring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// A handoff whose answer the sender did not get (it timed out while the receiver merged) is
// sent again with the same id: the receiver must merge it once and answer both attempts
// alike, or the outputs it carries would count twice.
func TestARetriedHandoffIsMergedOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	recv, err := NewForwarder("node-b", DefaultForwardConfig(), time.Minute, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var merges atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(recv.HandoffHandler(func(id string, body []byte) error {
		merges.Add(1)
		if !strings.HasPrefix(id, "node-a/") {
			return fmt.Errorf("handoff id %q does not name its sender", id) // merge refuses: a 400
		}
		<-release // a slow merge (it waits for a checkpoint): the first attempt times out
		if string(body) == "bad" {
			return errBadHandoff
		}
		return nil
	}))
	defer srv.Close()

	send, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	send.addrs.Store(&map[string]string{"node-b": strings.TrimPrefix(srv.URL, "http://")})
	client := &http.Client{Transport: send.transport()}

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := send.postHandoff(short, client, "node-b", "node-a/1", []byte("state")); err == nil {
		t.Fatal("the first attempt was answered while the merge was held")
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = send.postHandoff(context.Background(), client, "node-b", "node-a/1", []byte("state"))
		}()
	}
	time.Sleep(100 * time.Millisecond) // the retries wait for the first merge
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("retry %d: %v, want it accepted", i, err)
		}
	}
	if n := merges.Load(); n != 1 {
		t.Errorf("merged %d times, want once", n)
	}
	if err := send.postHandoff(context.Background(), client, "node-b", "node-a/2", []byte("state")); err != nil || merges.Load() != 2 {
		t.Errorf("another handoff: %v, %d merges; want it merged too", err, merges.Load())
	}
	if err := send.postHandoff(context.Background(), client, "node-b", "node-a/3", []byte("bad")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a refused handoff: %v, want a 400", err)
	}
	if err := send.postHandoff(context.Background(), client, "node-b", "node-a/3", []byte("bad")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a refused handoff sent again: %v, want the same 400", err)
	}
	for result, want := range map[string]float64{"ok": 2, "duplicate": 3, "refused": 1} {
		if got := testutil.ToFloat64(recv.metrics.handoffsReceived.WithLabelValues("node-a", result)); got != want {
			t.Errorf("handoffs received, result %q: %v, want %v", result, got, want)
		}
	}
}

var errBadHandoff = errors.New("not a handoff")

// bytesHandoff is a Handoff of one body, of outputs that node-b owns in a ring of node-a
// and node-b (handoffSender's).
type bytesHandoff []byte

func (b bytesHandoff) Encode(keep func(uint64) bool) []byte {
	if keep(keyOwnedBy(New([]Member{{Name: "node-a"}, {Name: "node-b"}}), "node-b")) {
		return b
	}
	return nil
}
func (b bytesHandoff) Len() int { return 1 }

// keyOwnedBy returns a placement key that member name owns in r.
func keyOwnedBy(r *Ring, name string) uint64 {
	for key := uint64(1); ; key++ {
		if r.OwnerOfKey(key).Name == name {
			return key
		}
	}
}

// keyedHandoff is a Handoff of one body per placement key: Encode joins the kept ones, in
// key order.
type keyedHandoff map[uint64]string

func (h keyedHandoff) Encode(keep func(uint64) bool) []byte {
	var b []byte
	for _, key := range slices.Sorted(maps.Keys(h)) {
		if keep(key) {
			b = append(b, h[key]...)
		}
	}
	return b
}
func (h keyedHandoff) Len() int { return len(h) }

// TestAHandoffsPartThatCameBackIsMergedHere: a flush takes out the outputs this member does
// not own by one ring, and SendHandoff splits them by the ring in force when it runs. If the
// ring changed in between and gave some back to this member, that part is merged here
// (pending until it is), not dropped; the rest still goes to its owner. Only the owner's
// part is ended (OnHandoffEnded): whether a merge here is in the log or only in a
// checkpoint is the merge function's, and one delivered again after a restart merges once.
func TestAHandoffsPartThatCameBackIsMergedHere(t *testing.T) {
	var posted atomic.Value
	release := make(chan struct{}) // holds both deliveries until the pending ones are read
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		b, _ := io.ReadAll(r.Body)
		posted.Store(string(b))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	send := handoffSender(t, srv, DefaultForwardConfig())
	mine, theirs := keyOwnedBy(send.Ring(), "node-a"), keyOwnedBy(send.Ring(), "node-b")
	merged := make(chan string, 2)
	send.HandoffHandler(func(id string, body []byte) error {
		<-release
		if !strings.HasPrefix(id, "node-a/") {
			t.Errorf("merged here under id %q, want one of node-a's", id)
		}
		merged <- string(body)
		return nil
	})

	var endedMu sync.Mutex
	var ended []string
	send.OnHandoffEnded(func(id string) {
		endedMu.Lock()
		defer endedMu.Unlock()
		ended = append(ended, id)
	})
	send.SendHandoff(keyedHandoff{mine: "back", theirs: "gone"})
	pending := send.PendingHandoffs()
	peers := []string{}
	var theirsID string
	for _, p := range pending {
		peers = append(peers, p.Peer+":"+string(p.Body))
		if p.Peer == "node-b" {
			theirsID = p.ID
		}
	}
	slices.Sort(peers)
	if !slices.Equal(peers, []string{"node-a:back", "node-b:gone"}) {
		t.Errorf("pending right after SendHandoff: %v, want the part that came back pending too", peers)
	}
	close(release)
	select {
	case got := <-merged:
		if got != "back" {
			t.Errorf("merged here: %q, want the part this member owns again", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the part this member owns again was never merged here")
	}
	eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
	if got, _ := posted.Load().(string); got != "gone" {
		t.Errorf("node-b was posted %q, want its own part only", got)
	}
	if len(merged) != 0 {
		t.Errorf("merged here more than once")
	}
	// Called just after a part stops pending; the other part's would be by the sleep's end.
	eventually(t, func() bool { endedMu.Lock(); defer endedMu.Unlock(); return len(ended) >= 1 })
	time.Sleep(50 * time.Millisecond)
	endedMu.Lock()
	defer endedMu.Unlock()
	if !slices.Equal(ended, []string{theirsID}) {
		t.Errorf("ended %v, want node-b's part alone, %s", ended, theirsID)
	}
}

// TestHandoffsArePendingUntilDelivered: a handoff is pending from SendHandoff until its
// owner accepts it, so that a checkpoint in between keeps it; delivered again after a restart
// (ResendHandoffs) it keeps its id, which lets the owner merge it once.
func TestHandoffsArePendingUntilDelivered(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		mu.Lock()
		ids = append(ids, r.Header.Get(headerHandoffID))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	send := handoffSender(t, srv, DefaultForwardConfig())
	send.SendHandoff(bytesHandoff("state"))
	if got := testutil.ToFloat64(send.metrics.handoffsPending); got != 1 {
		t.Errorf("cardinal_cluster_handoffs_pending = %v while one is in flight, want 1", got)
	}
	pending := send.PendingHandoffs()
	if len(pending) != 1 || pending[0].Peer != "node-b" || string(pending[0].Body) != "state" || !strings.HasPrefix(pending[0].ID, "node-a/") {
		t.Fatalf("pending right after SendHandoff: %+v, want the handoff to node-b", pending)
	}
	close(release)
	eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
	if got := testutil.ToFloat64(send.metrics.handoffsPending); got != 0 {
		t.Errorf("cardinal_cluster_handoffs_pending = %v once delivered, want 0", got)
	}

	// A restarted sender delivers what its checkpoint held, under the same id.
	again, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	again.SetMembers([]Member{{Name: "node-b", Addr: strings.TrimPrefix(srv.URL, "http://")}})
	again.ResendHandoffs(pending)
	eventually(t, func() bool { return len(again.PendingHandoffs()) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 || ids[0] != pending[0].ID || ids[1] != pending[0].ID {
		t.Errorf("the owner saw ids %v, want %s twice", ids, pending[0].ID)
	}
}

// TestWaitHandoffsReturnsOnceNoneIsPending: a member leaving before it exits waits for its
// handoffs: WaitHandoffs returns when the last one is delivered, and before that only when
// its context is done, saying how many are left.
func TestWaitHandoffsReturnsOnceNoneIsPending(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	send := handoffSender(t, srv, DefaultForwardConfig())
	if err := send.WaitHandoffs(t.Context()); err != nil {
		t.Fatalf("WaitHandoffs with none pending: %v", err)
	}
	send.SendHandoff(bytesHandoff("state"))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := send.WaitHandoffs(ctx); err == nil || !strings.Contains(err.Error(), "1 handoffs not delivered") {
		t.Errorf("WaitHandoffs while the owner holds the handoff: %v, want 1 not delivered", err)
	}
	done := make(chan error, 1)
	go func() { done <- send.WaitHandoffs(t.Context()) }()
	select {
	case err := <-done:
		t.Fatalf("WaitHandoffs returned %v before the owner answered", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WaitHandoffs once delivered: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitHandoffs did not return 10s after the handoff was delivered")
	}
}

// TestALeaverShuttingDownKeepsItsUndeliveredHandoff: a member that has left owns nothing,
// so when it shuts down, a handoff its owner did not take within the handoff timeout is the
// only copy of that state: it stays pending, for the last checkpoint, counted as failed. A
// member that stays, or that left and keeps running (removed by discovery), gives it up at
// the timeout: it is not retried past the hour its owner remembers merged ids, nor sent to
// an owner that a later ring change replaced.
func TestALeaverShuttingDownKeepsItsUndeliveredHandoff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	peer := []Member{{Name: "node-b", Addr: strings.TrimPrefix(srv.URL, "http://")}}
	cfg := DefaultForwardConfig()
	cfg.Queue.MinBackoff, cfg.Queue.MaxBackoff = setting.Duration(5*time.Millisecond), setting.Duration(20*time.Millisecond)
	failed := func(f *Forwarder) float64 {
		return testutil.ToFloat64(f.metrics.handoffs.WithLabelValues("node-b", "failed"))
	}
	for _, c := range []struct {
		name          string
		leave, stop   bool
		keptAfterward bool
	}{
		{"a member that stays", false, false, false},
		{"a member that stays, shutting down", false, true, false},
		{"a member that left and runs on", true, false, false},
		{"a member that left, shutting down", true, true, true},
	} {
		f, err := NewForwarder("node-a", cfg, 100*time.Millisecond, prometheus.NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		f.SetMembers(peer)
		if c.leave {
			f.Leave(peer)
		}
		if c.stop {
			f.StopHandingOff()
		}
		f.SendHandoff(bytesHandoff("state"))
		eventually(t, func() bool { return failed(f) == 1 })
		time.Sleep(50 * time.Millisecond)
		if kept := len(f.PendingHandoffs()) == 1; kept != c.keptAfterward {
			t.Errorf("%s: pending after the handoff timeout %v, want %v", c.name, kept, c.keptAfterward)
		}
		if got := testutil.ToFloat64(f.metrics.handoffsPending); got != float64(len(f.PendingHandoffs())) {
			t.Errorf("%s: cardinal_cluster_handoffs_pending %v, want %d", c.name, got, len(f.PendingHandoffs()))
		}
	}
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAHandoffByAnotherRingSyncsTheRingFirst: a member that leaves hands its outputs over
// as soon as it has left its own ring, while the receiver still counts it as an owner. The
// receiver must bring its ring up to date before it merges: merged by the stale ring, the
// outputs would be strays at its next flush and go straight back to the member leaving (the
// cluster test lost a window to this). A handoff by the same ring runs no round. The member
// leaving is no longer discovered, so its handoff says it is leaving.
func TestAHandoffByAnotherRingSyncsTheRingFirst(t *testing.T) {
	c := newCluster(t, "a")
	c.round(0)
	c.want("start", "a")
	recv, err := NewForwarder("self", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.SetMembers(c.m.Members())
	recv.OnRingDisagreement(func(ctx context.Context, leaving string) {
		if leaving != "" {
			c.m.Leaving(leaving)
		}
		if err := c.m.Refresh(ctx); err != nil {
			t.Errorf("Refresh: %v", err)
			return
		}
		recv.SetMembers(c.m.Members())
	})
	var members []int
	var ownedAll []bool
	srv := httptest.NewServer(recv.HandoffHandler(func(string, []byte) error {
		members = append(members, recv.Ring().Len())
		owned := true
		for k := range uint64(1000) {
			owned = owned && recv.Owns(k*0x9e3779b97f4a7c15)
		}
		ownedAll = append(ownedAll, owned)
		return nil
	}))
	defer srv.Close()

	send, err := NewForwarder("a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	recvAt := Member{Name: "self", Addr: strings.TrimPrefix(srv.URL, "http://")}
	send.SetMembers([]Member{recvAt})
	client := &http.Client{Transport: send.transport()}
	calls := func() int {
		c.disc.mu.Lock()
		defer c.disc.mu.Unlock()
		return c.disc.calls
	}
	before := calls()
	if err := send.postHandoff(t.Context(), client, "self", "a/1", []byte("state")); err != nil {
		t.Fatal(err)
	}
	if calls() != before || members[0] != 2 {
		t.Fatalf("a handoff by the same ring: %d rounds, merged with %d members; want none, 2", calls()-before, members[0])
	}

	// a was taken out of discovery: nobody probes it, so only its handoff says it is
	// leaving, and the round must drop it at once, not leave_after from now.
	send.Leave([]Member{recvAt})
	c.discover()
	if err := send.postHandoff(t.Context(), client, "self", "a/2", []byte("state")); err != nil {
		t.Fatal(err)
	}
	if members[1] != 1 || !ownedAll[1] {
		t.Errorf("a handoff from a member leaving was merged by a ring of %d members (owning every key: %v); want this member alone", members[1], ownedAll[1])
	}
	if got := testutil.ToFloat64(recv.metrics.handoffRingSyncs); got != 1 {
		t.Errorf("cardinal_cluster_handoff_ring_syncs_total = %v, want 1", got)
	}
}

// A member that gained shards from a member that left must go on waiting for that member's
// handoff when the ring changes again before it comes (another member joins a moment
// later): only the timeout since the change that gave it a shard ends the wait, never a
// later change that left the shard where it was.
func TestAShardGainedInAnEarlierRingChangeStillAwaitsItsHandoff(t *testing.T) {
	f, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	f.now = func() time.Time { return clock }
	abc, ab, abd := ringOf("node-a", "node-b", "node-c"), ringOf("node-a", "node-b"), ringOf("node-a", "node-b", "node-d")
	f.SetMembers([]Member{{Name: "node-b"}, {Name: "node-c"}}) // the start
	clock = clock.Add(2 * time.Minute)                         // the start's wait is over

	f.SetMembers([]Member{{Name: "node-b"}}) // node-c leaves
	clock = clock.Add(10 * time.Second)
	f.SetMembers([]Member{{Name: "node-b"}, {Name: "node-d"}}) // node-d joins

	var fromC, kept, lost int
	for key := range uint64(Shards) {
		owned := abd.OwnerOfKey(key).Name == "node-a"
		gained := abc.OwnerOfKey(key).Name == "node-c" && ab.OwnerOfKey(key).Name == "node-a"
		switch got := f.Awaits(key); {
		case owned && gained:
			fromC++
			if !got {
				t.Fatalf("shard %d, gained from node-c 10 s ago and owned since: not awaited after node-d joined", key)
			}
		case got:
			t.Fatalf("shard %d awaits a handoff: owned %v, gained from node-c %v", key, owned, gained)
		case owned:
			kept++
		default:
			lost++
		}
	}
	if fromC == 0 || kept == 0 || lost == 0 {
		t.Fatalf("the rings do not exercise the test: %d shards gained from node-c and kept, %d owned throughout, %d not owned", fromC, kept, lost)
	}
	clock = clock.Add(51 * time.Second) // a minute after node-c left
	for key := range uint64(Shards) {
		if f.Awaits(key) {
			t.Fatalf("shard %d still awaits a handoff a minute after the change that gave it", key)
		}
	}

	// After a start every owned shard awaits, until the first change: then only the shards
	// that change gave it (the start's wait does not stretch over the changes after it).
	g, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.now = func() time.Time { return clock }
	g.SetMembers([]Member{{Name: "node-b"}})
	for key := range uint64(Shards) {
		if owned := ab.OwnerOfKey(key).Name == "node-a"; g.Awaits(key) != owned {
			t.Fatalf("shard %d just after the start: awaits %v, owned %v", key, !owned, owned)
		}
	}
	clock = clock.Add(10 * time.Second)
	g.SetMembers([]Member{{Name: "node-b"}, {Name: "node-c"}})
	for key := range uint64(Shards) {
		if g.Awaits(key) {
			t.Fatalf("shard %d awaits a handoff after a change that gave node-a nothing", key)
		}
	}
}

// TestARefusedHandoffIsNotRetried: an owner that refuses a handoff (a 400: its merge
// failed, which it answers again to every retry of that id) ends the handoff at once,
// counted failed; a 503 or 408 is tried again until it is accepted.
func TestARefusedHandoffIsNotRetried(t *testing.T) {
	for _, tt := range []struct {
		answers []int
		result  string
	}{
		{[]int{http.StatusBadRequest}, "failed"},
		{[]int{http.StatusServiceUnavailable, http.StatusRequestTimeout, http.StatusNoContent}, "ok"},
	} {
		var mu sync.Mutex
		posts := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			w.WriteHeader(tt.answers[min(posts, len(tt.answers)-1)])
			posts++
		}))
		cfg := DefaultForwardConfig()
		cfg.Queue.MinBackoff, cfg.Queue.MaxBackoff = setting.Duration(time.Millisecond), setting.Duration(time.Millisecond)
		send := handoffSender(t, srv, cfg)
		send.SendHandoff(bytesHandoff("state"))
		eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
		srv.Close()
		mu.Lock()
		if got := testutil.ToFloat64(send.metrics.handoffs.WithLabelValues("node-b", tt.result)); got != 1 || posts != len(tt.answers) {
			t.Errorf("answers %v: %d posts, %v handoffs %s; want %d posts and 1 %s", tt.answers, posts, got, tt.result, len(tt.answers), tt.result)
		}
		mu.Unlock()
	}
}

// TestAHandoffIsDurableBeforeItIsDelivered: a handoff just taken out of the aggregator is
// given to OnHandoffTaken's function before SendHandoff returns (the server queues it in its
// log there, before any request ingested after the state was taken out), and posted only
// after the function that returned (waiting for the disk) has, so that a crash after the
// owner merged it cannot restart with the state it took out; one resent after a restart is
// posted without it. OnHandoffEnded's function learns of each once its owner answered it,
// by the id it began with.
func TestAHandoffIsDurableBeforeItIsDelivered(t *testing.T) {
	var durable atomic.Int32
	var seen []int32 // handoffs made durable when each post arrived
	var ended []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		seen = append(seen, durable.Load())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	send := handoffSender(t, srv, DefaultForwardConfig())
	var takenID string
	send.OnHandoffTaken(func(p PendingHandoff) func() error {
		if p.Peer != "node-b" || string(p.Body) != "state" {
			t.Errorf("taken: %+v", p)
		}
		mu.Lock()
		takenID = p.ID
		mu.Unlock()
		return func() error {
			time.Sleep(20 * time.Millisecond) // a write to the log takes a while
			durable.Add(1)
			return nil
		}
	})
	send.OnHandoffEnded(func(id string) {
		mu.Lock()
		defer mu.Unlock()
		ended = append(ended, id)
	})
	send.SendHandoff(bytesHandoff("state"))
	mu.Lock()
	if takenID == "" {
		t.Error("SendHandoff returned before it gave the handoff to OnHandoffTaken's function")
	}
	mu.Unlock()
	eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
	send.ResendHandoffs([]PendingHandoff{{Peer: "node-b", ID: "node-a/1", Body: []byte("state")}})
	eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(ended) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 1 {
		t.Errorf("handoffs made durable when the posts arrived: %v, want [1 1] (one before the new handoff, none for the resent one)", seen)
	}
	want := []string{"node-a/1", takenID}
	slices.Sort(want)
	if slices.Sort(ended); !slices.Equal(ended, want) {
		t.Errorf("ended: %v, want the new handoff's id %q and node-a/1", ended, takenID)
	}
}

// handoffSender returns the forwarder of node-a in a ring with node-b, which srv serves.
func handoffSender(t *testing.T, srv *httptest.Server, cfg ForwardConfig) *Forwarder {
	t.Helper()
	send, err := NewForwarder("node-a", cfg, time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	send.SetMembers([]Member{{Name: "node-b", Addr: strings.TrimPrefix(srv.URL, "http://")}})
	return send
}

// TestARefusedHandoffGoesOnceMoreAsAnOlderOwnerReadsIt: an owner of an older build refuses a
// handoff in a format it does not read; the sender rewrites it (OnHandoffRefused's function)
// and sends it once more under a new id, and gives up if that is refused too. What is
// pending is the body being sent, so that a checkpoint meanwhile holds that one.
func TestARefusedHandoffGoesOnceMoreAsAnOlderOwnerReadsIt(t *testing.T) {
	for _, tt := range []struct {
		reads  string // the only body the owner takes
		posts  []string
		result string
	}{
		{"old", []string{"new", "old"}, "ok"},
		{"neither", []string{"new", "old"}, "failed"},
	} {
		var mu sync.Mutex
		var posts, ids, pending []string // pending: the bodies pending at each post
		var send *Forwarder
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			posts, ids = append(posts, string(body)), append(ids, r.Header.Get(headerHandoffID))
			for _, p := range send.PendingHandoffs() {
				pending = append(pending, p.ID+"="+string(p.Body))
			}
			if string(body) != tt.reads {
				http.Error(w, "bad flag", http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		send = handoffSender(t, srv, DefaultForwardConfig())
		send.OnHandoffRefused(func(b []byte) ([]byte, bool) {
			if string(b) != "new" {
				return nil, false
			}
			return []byte("old"), true
		})
		send.SendHandoff(bytesHandoff("new"))
		eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
		srv.Close()
		mu.Lock()
		if !slices.Equal(posts, tt.posts) || len(ids) != 2 || ids[1] != ids[0]+legacySuffix {
			t.Fatalf("owner reading %q: posts %q with ids %q, want %q, the second under the first's id + %q", tt.reads, posts, ids, tt.posts, legacySuffix)
		}
		if got := testutil.ToFloat64(send.metrics.handoffs.WithLabelValues("node-b", tt.result)); got != 1 {
			t.Errorf("owner reading %q: %v handoffs %s, want 1", tt.reads, got, tt.result)
		}
		if want := []string{ids[0] + "=new", ids[0] + legacySuffix + "=old"}; !slices.Equal(pending, want) {
			t.Errorf("pending at each post: %q, want %q (the body being sent, alone)", pending, want)
		}
		mu.Unlock()
	}
}

// TestALargeHandoffGoesInParts: what goes to one owner is sent in parts of about
// HandoffPartBytes, each under its own id, every output in exactly one of them. Every part
// is given to OnHandoffTaken's function before SendHandoff returns, also those whose
// delivery waits for others to finish.
func TestALargeHandoffGoesInParts(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]string{} // by id
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-hold
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies[r.Header.Get(headerHandoffID)] = string(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	send := handoffSender(t, srv, DefaultForwardConfig())
	ring := New([]Member{{Name: "node-a"}, {Name: "node-b"}})
	h := keyedHandoff{}
	for i := uint64(1); len(h) < 64; i++ {
		key := i * 0x9e3779b97f4a7c15              // spread over all 64 bits, as placement keys are
		if ring.OwnerOfKey(key).Name == "node-b" { // outputs of 256 KiB, 16 MiB in all
			h[key] = fmt.Sprintf("%-*d", 256<<10, key)
		}
	}
	var taken atomic.Int32
	send.OnHandoffTaken(func(PendingHandoff) func() error {
		taken.Add(1)
		return nil
	})
	send.SendHandoff(h)
	if n, parts := int(taken.Load()), len(send.PendingHandoffs()); n != parts || n <= handoffParallelParts {
		t.Errorf("%d of %d parts given to OnHandoffTaken's function when SendHandoff returned, want all (more than %d)", n, parts, handoffParallelParts)
	}
	close(hold)
	eventually(t, func() bool { return len(send.PendingHandoffs()) == 0 })
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, b := range bodies {
		if len(b) > 2*HandoffPartBytes {
			t.Errorf("a part of %d bytes, over twice HandoffPartBytes", len(b))
		}
		for i := 0; i < len(b); i += 256 << 10 {
			seen[strings.TrimSpace(b[i:i+256<<10])]++
		}
	}
	if len(bodies) < 4 || len(seen) != len(h) {
		t.Fatalf("%d parts holding %d outputs, want at least 4 parts and all %d", len(bodies), len(seen), len(h))
	}
	for key, n := range seen {
		if n != 1 {
			t.Errorf("output %s sent %d times", key, n)
		}
	}
}

// TestHandoffsByOneRingShareItsSync: the parts of one sender's handoff, arriving together by
// a ring this member does not route by, bring its ring up to date once, not once each.
func TestHandoffsByOneRingShareItsSync(t *testing.T) {
	f, err := NewForwarder("self", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.SetMembers([]Member{{Name: "self"}, {Name: "a"}})
	synctest.Test(t, func(t *testing.T) {
		var syncs atomic.Int32
		release := make(chan struct{})
		f.OnRingDisagreement(func(context.Context, string) {
			syncs.Add(1)
			<-release // a membership round under way
		})
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() { f.syncRing(t.Context(), "another", "a") })
		}
		synctest.Wait() // one in the round, the others waiting for it
		close(release)
		wg.Wait()
		if got := syncs.Load(); got != 1 {
			t.Errorf("5 handoffs by one ring ran %d syncs, want 1", got)
		}
		f.syncRing(t.Context(), "another", "a") // one that comes after it syncs again
		if got := syncs.Load(); got != 2 {
			t.Errorf("a handoff after the shared sync: %d syncs in all, want 2", got)
		}
	})
}
