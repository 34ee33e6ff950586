package hashring

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMembersAgreeOverHTTP runs three members in-process, each serving its identity over
// HTTP and reading one peers file, and checks that they agree on the ring, that each serves
// the version it routes by, and that a peer turning not ready leaves everyone's ring after
// leave_after but not before.
func TestMembersAgreeOverHTTP(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	names := []string{"node-a", "node-b", "node-c"}
	type node struct {
		m     atomic.Pointer[Membership] // set once the addresses are known
		ready atomic.Bool
		addr  string
	}
	nodes := make([]*node, len(names))
	var addrs []string
	for i, name := range names {
		n := &node{}
		n.ready.Store(true)
		srv := httptest.NewServer(IdentityHandler(func(string) Identity {
			id := Identity{Name: name, Ready: n.ready.Load()}
			if m := n.m.Load(); m != nil {
				id.RingVersion = m.Ring().VersionString()
			}
			return id
		}))
		t.Cleanup(srv.Close)
		n.addr = strings.TrimPrefix(srv.URL, "http://")
		nodes[i] = n
		addrs = append(addrs, n.addr)
	}
	file := filepath.Join(t.TempDir(), "peers.yaml")
	if err := os.WriteFile(file, []byte("- "+strings.Join(addrs, "\n- ")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.PeersFile = file
	for i, n := range nodes {
		ds, err := NewDiscoverers(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMembership(Member{Name: names[i], Addr: n.addr}, cfg, ds, HTTPProber{}, clock.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.m.Store(m)
	}
	refreshAll := func(after time.Duration) {
		t.Helper()
		clock.advance(after)
		for _, n := range nodes {
			if err := n.m.Load().Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	refreshAll(0)
	want := New([]Member{{names[0], addrs[0]}, {names[1], addrs[1]}, {names[2], addrs[2]}})
	for i, n := range nodes {
		if got := n.m.Load().Ring(); got.Version() != want.Version() || got.Len() != 3 {
			t.Fatalf("%s routes by %v, want all three", names[i], got.Members())
		}
		id, err := HTTPProber{}.Probe(t.Context(), n.addr)
		if err != nil || id.RingVersion != want.VersionString() {
			t.Fatalf("%s serves %+v, %v; want ring version %s", names[i], id, err, want.VersionString())
		}
	}

	nodes[2].ready.Store(false) // node-c drains
	refreshAll(time.Minute)
	refreshAll(4*time.Minute + 50*time.Second)
	if got := nodes[0].m.Load().Ring().Len(); got != 3 {
		t.Fatalf("node-c left after 4m50s not ready: %d members", got)
	}
	refreshAll(10 * time.Second)
	for i, n := range nodes[:2] {
		if got := n.m.Load().Ring(); got.Len() != 2 || got.Index("node-c") >= 0 {
			t.Fatalf("%s after node-c was not ready for leave_after: %v", names[i], got.Members())
		}
	}
	if nodes[2].m.Load().Ring().Len() != 3 {
		t.Error("node-c, unready itself, dropped peers that are ready")
	}
}
