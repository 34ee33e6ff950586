package hashring

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a time source the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeDiscoverer finds what the test sets, or fails with err.
type fakeDiscoverer struct {
	mu    sync.Mutex
	peers []string
	err   error
	calls int
}

func (d *fakeDiscoverer) set(peers []string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peers, d.err = peers, err
}

func (d *fakeDiscoverer) Discover(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	return slices.Clone(d.peers), d.err
}

// fakeProber answers with the identity set for an address; other addresses refuse.
type fakeProber struct {
	mu  sync.Mutex
	ids map[string]Identity
}

func (p *fakeProber) set(addr string, id Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids[addr] = id
}

func (p *fakeProber) remove(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ids, addr)
}

func (p *fakeProber) Probe(ctx context.Context, addr string) (Identity, error) {
	if err := ctx.Err(); err != nil {
		return Identity{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.ids[addr]
	if !ok {
		return Identity{}, fmt.Errorf("dial %s: connection refused", addr)
	}
	return id, nil
}

// cluster is a Membership of "self" with fake discovery, probing and time, and peers
// a, b, c, ... at 10.0.0.1:9090, 10.0.0.2:9090, ... that answer ready.
type cluster struct {
	t      *testing.T
	m      *Membership
	clock  *fakeClock
	disc   *fakeDiscoverer
	prober *fakeProber
}

var self = Member{Name: "self", Addr: "10.0.0.100:9090"}

func newCluster(t *testing.T, peers ...string) *cluster {
	t.Helper()
	c := &cluster{
		t:      t,
		clock:  &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		disc:   &fakeDiscoverer{},
		prober: &fakeProber{ids: map[string]Identity{}},
	}
	var addrs []string
	for _, name := range peers {
		c.prober.set(addrOf(name), Identity{Name: name, Ready: true})
		addrs = append(addrs, addrOf(name))
	}
	c.disc.set(addrs, nil)
	m, err := NewMembership(self, DefaultConfig(), []Discoverer{c.disc}, c.prober, c.clock.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.m = m
	return c
}

// addrOf is the address of the test peer called name ("a" is 10.0.0.1:9090).
func addrOf(name string) string { return fmt.Sprintf("10.0.0.%d:9090", name[0]-'a'+1) }

// discover makes discovery find exactly these peers.
func (c *cluster) discover(names ...string) {
	var addrs []string
	for _, n := range names {
		addrs = append(addrs, addrOf(n))
	}
	c.disc.set(addrs, nil)
}

// round advances the clock by d and runs a round that must succeed.
func (c *cluster) round(d time.Duration) {
	c.t.Helper()
	c.clock.advance(d)
	if err := c.m.Refresh(c.t.Context()); err != nil {
		c.t.Fatalf("Refresh: %v", err)
	}
}

// want fails unless the members are self and names.
func (c *cluster) want(when string, names ...string) {
	c.t.Helper()
	var got []string
	for _, m := range c.m.Members() {
		if m.Name != "self" {
			got = append(got, m.Name)
		}
	}
	if !slices.Equal(got, names) || c.m.Ring().Index("self") < 0 {
		c.t.Fatalf("%s: members besides self are %v, want %v (all: %v)", when, got, names, c.m.Members())
	}
}

// changed reports whether a change was signalled since the last call.
func (c *cluster) changed() bool {
	select {
	case <-c.m.Changes():
		return true
	default:
		return false
	}
}

// proberFunc adapts a function to Prober.
type proberFunc func(ctx context.Context, addr string) (Identity, error)

func (f proberFunc) Probe(ctx context.Context, addr string) (Identity, error) { return f(ctx, addr) }
