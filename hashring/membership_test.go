package hashring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

func TestMembershipStartsAsSelfAlone(t *testing.T) {
	c := newCluster(t, "a")
	if got := c.m.Members(); !slices.Equal(got, []Member{self}) {
		t.Fatalf("before any round, Members() = %v", got)
	}
	if c.changed() {
		t.Error("a change was signalled before any round")
	}
	if _, err := NewMembership(Member{Addr: "x:1"}, DefaultConfig(), []Discoverer{c.disc}, c.prober, nil, nil); err == nil {
		t.Error("a member without a name was accepted")
	}
	if _, err := NewMembership(self, DefaultConfig(), nil, c.prober, nil, nil); err == nil {
		t.Error("a membership without discovery was accepted")
	}
}

func TestMembershipStartUpAdmitsReadyPeersAtOnce(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	c.prober.set(addrOf("c"), Identity{Name: "c", Ready: false})
	c.round(0)
	c.want("first round", "a", "b")
	if !c.changed() {
		t.Error("the first joins were not signalled")
	}
	c.prober.set(addrOf("c"), Identity{Name: "c", Ready: true})
	c.round(20 * time.Second)
	c.want("c ready 20s after the first round, within join_after of it", "a", "b", "c")

	c.prober.set(addrOf("d"), Identity{Name: "d", Ready: true})
	c.discover("a", "b", "c", "d")
	c.round(10 * time.Second) // 30s after the first round: start-up is over
	c.want("d first seen after start-up", "a", "b", "c")
	c.round(20 * time.Second)
	c.want("d ready for 20s", "a", "b", "c")
	if s := c.m.Stats(); s.Candidates != 1 || s.Members != 4 {
		t.Errorf("Stats: %d candidates and %d members, want 1 and 4", s.Candidates, s.Members)
	}
	c.changed()
	c.round(10 * time.Second)
	c.want("d ready for join_after", "a", "b", "c", "d")
	if !c.changed() {
		t.Error("d's join was not signalled")
	}
	if s := c.m.Stats(); s.Joins != 4 || s.Candidates != 0 || s.Members != 5 || s.RingVersion != New(c.m.Members()).VersionString() {
		t.Errorf("Stats = %+v", s)
	}
}

func TestMembershipJoinNeedsReadinessWithoutABreak(t *testing.T) {
	for _, interruption := range []struct {
		name  string
		start func(*cluster)
		end   func(*cluster)
	}{
		{"not_ready", func(c *cluster) { c.prober.set(addrOf("b"), Identity{Name: "b"}) },
			func(c *cluster) { c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true}) }},
		{"not_discovered", func(c *cluster) { c.discover("a") }, func(c *cluster) { c.discover("a", "b") }},
		{"probe_failing", func(c *cluster) { c.prober.remove(addrOf("b")) },
			func(c *cluster) { c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true}) }},
	} {
		t.Run(interruption.name, func(t *testing.T) {
			c := newCluster(t, "a")
			c.round(0)
			c.round(time.Minute) // start-up is over
			c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true})
			c.discover("a", "b")
			c.round(10 * time.Second) // b ready since T
			interruption.start(c)
			c.round(10 * time.Second) // T+10s: the break
			interruption.end(c)
			c.round(10 * time.Second) // ready again since T+20s
			c.round(10 * time.Second)
			c.round(10 * time.Second) // T+40s: 30s after T, 20s after the break
			c.want("30s after b was first ready, with a break", "a")
			c.round(10 * time.Second) // T+50s
			c.want("30s after the break", "a", "b")
		})
	}
}

func TestMembershipLeaveAfterUnseenForLeaveAfter(t *testing.T) {
	for _, unseen := range []struct {
		name string
		make func(*cluster)
		undo func(*cluster)
	}{
		{"not_discovered", func(c *cluster) { c.discover("a") }, func(c *cluster) { c.discover("a", "b") }},
		{"probe_failing", func(c *cluster) { c.prober.remove(addrOf("b")) },
			func(c *cluster) { c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true}) }},
		{"not_ready", func(c *cluster) { c.prober.set(addrOf("b"), Identity{Name: "b"}) },
			func(c *cluster) { c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true}) }},
	} {
		t.Run(unseen.name, func(t *testing.T) {
			c := newCluster(t, "a", "b")
			c.round(0)
			c.want("start", "a", "b")
			c.changed()

			unseen.make(c)
			c.round(time.Minute) // unseen since T
			for range 23 {
				c.round(10 * time.Second)
			}
			c.want("unseen for 3m50s", "a", "b")
			unseen.undo(c)
			c.round(10 * time.Second) // T+4m: seen again, the run is broken
			unseen.make(c)
			c.round(10 * time.Second) // unseen since T+4m10s
			c.round(4*time.Minute + 50*time.Second)
			c.want("unseen for 4m50s since the break", "a", "b")
			if c.changed() {
				t.Fatal("a change was signalled while b stayed")
			}
			c.round(10 * time.Second)
			c.want("unseen for leave_after", "a")
			if !c.changed() {
				t.Error("b's leave was not signalled")
			}
			if s := c.m.Stats(); s.Leaves != 1 || s.Members != 2 {
				t.Errorf("Stats: %d leaves, %d members; want 1 and 2", s.Leaves, s.Members)
			}
		})
	}
}

func TestMembershipFailedDiscoveryChangesNothing(t *testing.T) {
	blip := errors.New("lookup cardinal on 10.96.0.10:53: server misbehaving")

	t.Run("members_stay_through_a_long_outage", func(t *testing.T) {
		c := newCluster(t, "a", "b")
		c.round(0)
		c.changed()
		before := c.m.Ring()
		c.disc.set(nil, blip)
		for range 60 { // 10 minutes, twice leave_after
			c.clock.advance(10 * time.Second)
			if err := c.m.Refresh(t.Context()); !errors.Is(err, blip) {
				t.Fatalf("Refresh during the outage returned %v", err)
			}
		}
		c.want("after 10 minutes of failed lookups", "a", "b")
		if c.m.Ring() != before || c.changed() {
			t.Error("the ring changed during the outage")
		}
		if s := c.m.Stats(); s.FailedRounds != 60 || s.Rounds != 61 {
			t.Errorf("Stats: %d failed of %d rounds, want 60 of 61", s.FailedRounds, s.Rounds)
		}
		c.discover("a", "b")
		c.round(10 * time.Second)
		c.want("after the outage", "a", "b")
	})

	t.Run("one_failing_source_of_two", func(t *testing.T) {
		c := newCluster(t, "a", "b")
		static, _ := NewStaticDiscoverer([]string{addrOf("a")})
		m, err := NewMembership(self, DefaultConfig(), []Discoverer{static, c.disc}, c.prober, c.clock.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.m = m
		c.round(0)
		c.want("both sources", "a", "b")
		c.disc.set(nil, blip)
		for range 60 {
			c.clock.advance(10 * time.Second)
			if err := c.m.Refresh(t.Context()); err == nil {
				t.Fatal("a round with a failing source succeeded")
			}
		}
		c.want("static still finds a, the other source fails", "a", "b")
	})

	t.Run("failed_rounds_neither_break_nor_extend_runs", func(t *testing.T) {
		c := newCluster(t, "a", "b")
		c.round(0)
		c.round(time.Minute) // start-up is over
		c.prober.set(addrOf("c"), Identity{Name: "c", Ready: true})
		c.discover("b", "c") // a unseen, c ready, since T
		c.round(10 * time.Second)
		c.disc.set(nil, blip)
		c.clock.advance(20 * time.Second)
		if err := c.m.Refresh(t.Context()); err == nil {
			t.Fatal("the blip did not fail the round")
		}
		c.discover("b", "c")
		c.round(10 * time.Second) // T+30s, the last round before it was at T
		c.want("c ready at T and T+30s with a failed round between; a unseen for 30s", "a", "b", "c")
		c.disc.set(nil, blip)
		c.clock.advance(5 * time.Minute)
		_ = c.m.Refresh(t.Context())
		c.discover("b", "c")
		c.round(0) // T+5m30s, and a not seen in any successful round since T
		c.want("a unseen at T, T+30s and T+5m30s", "b", "c")
	})

	t.Run("cancelled_round", func(t *testing.T) {
		c := newCluster(t, "a")
		c.round(0)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c.clock.advance(time.Minute)
		if err := c.m.Refresh(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Refresh with a cancelled context returned %v", err)
		}
		c.discover()
		c.round(5*time.Minute - time.Second)
		c.round(0)
		c.want("the cancelled round's failed probes did not count as unseen", "a")
	})
}

func TestMembershipNewAddressKeepsTheRing(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.round(0)
	c.changed()
	before := c.m.Ring()

	// b's pod restarts with a new IP: the old address goes away, the new one answers "b".
	c.prober.remove(addrOf("b"))
	c.prober.set("10.0.1.7:9090", Identity{Name: "b", Ready: true})
	c.disc.set([]string{addrOf("a"), "10.0.1.7:9090"}, nil)
	c.round(10 * time.Second)
	after := c.m.Ring()
	if i := after.Index("b"); i < 0 || after.Members()[i].Addr != "10.0.1.7:9090" {
		t.Fatalf("members after b moved: %v", after.Members())
	}
	if after.Version() != before.Version() || len(Moved(before, after)) != 0 {
		t.Error("a new address changed the ring's version or owners")
	}
	if !c.changed() {
		t.Error("the new address was not signalled")
	}
	if s := c.m.Stats(); s.AddressChanges != 1 || s.Joins != 2 || s.Leaves != 0 {
		t.Errorf("Stats = %+v", s)
	}

	// Both addresses answer "b" for a while: the current one is kept.
	c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true})
	c.disc.set([]string{addrOf("a"), addrOf("b"), "10.0.1.7:9090"}, nil)
	c.round(10 * time.Second)
	if got := c.m.Members()[c.m.Ring().Index("b")].Addr; got != "10.0.1.7:9090" || c.changed() {
		t.Errorf("with two addresses answering b, b is at %s", got)
	}
}

func TestMembershipIgnoresAddressesAnsweringWithItsName(t *testing.T) {
	c := newCluster(t, "a")
	c.prober.set("10.0.0.10:9090", Identity{Name: "self", Ready: true}) // the Service's address
	c.disc.set([]string{addrOf("a"), "10.0.0.10:9090"}, nil)
	c.round(0)
	c.round(time.Hour)
	if got := c.m.Members(); !slices.Equal(got, []Member{{Name: "a", Addr: addrOf("a")}, self}) {
		t.Fatalf("Members() = %v", got)
	}
	if s := c.m.Stats(); s.Members != 2 || s.Candidates != 0 || s.Joins != 1 {
		t.Errorf("Stats: %d members, %d candidates, %d joins; want 2, 0, 1", s.Members, s.Candidates, s.Joins)
	}
}

func TestMembershipTreatsANamelessAnswerAsAFailedProbe(t *testing.T) {
	c := newCluster(t, "a")
	c.prober.set(addrOf("a"), Identity{Ready: true}) // a Prober that lets an empty name through
	c.round(0)
	c.want("a answered without a name")
	if s := c.m.Stats(); s.ProbeFailures != 1 || s.Members != 1 || s.Candidates != 0 {
		t.Errorf("Stats: %d probe failures, %d members, %d candidates; want 1, 1, 0", s.ProbeFailures, s.Members, s.Candidates)
	}
}

func TestMembershipNamedPeerMustAnswerWithItsName(t *testing.T) {
	c := newCluster(t)
	c.prober.set(addrOf("a"), Identity{Name: "x", Ready: true})
	c.disc.set([]string{"a=" + addrOf("a")}, nil)
	c.round(0)
	c.want("a's address answers x")
	if s := c.m.Stats(); s.NameMismatches != 1 {
		t.Errorf("NameMismatches = %d, want 1", s.NameMismatches)
	}
	c.prober.set(addrOf("a"), Identity{Name: "a", Ready: true})
	c.round(10 * time.Second)
	c.want("a's address answers a", "a")

	// One address under two names, from two sources, is nobody's.
	other := &fakeDiscoverer{peers: []string{"b=" + addrOf("a")}}
	m, err := NewMembership(self, DefaultConfig(), []Discoverer{c.disc, other}, c.prober, c.clock.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.m = m
	c.round(0)
	c.want("listed as a and as b")
}

func TestMembershipChangesAreMerged(t *testing.T) {
	c := newCluster(t, "a")
	c.round(0) // a joins
	c.discover("a", "b")
	c.prober.set(addrOf("b"), Identity{Name: "b", Ready: true})
	c.round(10 * time.Second) // b joins
	if !c.changed() {
		t.Fatal("no change signalled")
	}
	if c.changed() {
		t.Error("two changes read unread were signalled twice")
	}
	c.want("after two joins", "a", "b")
}

func TestMembershipProbesConcurrentlyWithinProbeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var addrs []string
		for i := range 100 {
			addrs = append(addrs, fmt.Sprintf("10.0.2.%d:9090", i))
		}
		var mu sync.Mutex
		probed := 0
		hang := proberFunc(func(ctx context.Context, _ string) (Identity, error) {
			mu.Lock()
			probed++
			mu.Unlock()
			<-ctx.Done()
			return Identity{}, ctx.Err()
		})
		m, err := NewMembership(self, DefaultConfig(), []Discoverer{&fakeDiscoverer{peers: addrs}}, hang, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		// 64 probes at a time, each cut at probe_timeout (2s): two waves.
		if took := time.Since(start); took != 4*time.Second {
			t.Errorf("a round of 100 hanging probes took %v, want 4s", took)
		}
		if s := m.Stats(); probed != 100 || s.ProbeFailures != 100 {
			t.Errorf("%d probes made, %d failures counted; want 100", probed, s.ProbeFailures)
		}
	})
}

func TestMembershipRunRefreshesEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		disc := &fakeDiscoverer{peers: []string{addrOf("a")}}
		prober := &fakeProber{ids: map[string]Identity{addrOf("a"): {Name: "a", Ready: true}}}
		m, err := NewMembership(self, DefaultConfig(), []Discoverer{disc}, prober, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			m.Run(ctx)
			close(done)
		}()
		<-m.Changes() // the first round, at once, admits a
		time.Sleep(35 * time.Second)
		synctest.Wait()
		disc.mu.Lock()
		rounds := disc.calls
		disc.mu.Unlock()
		if rounds != 4 {
			t.Errorf("%d rounds in 35s, want 4 (at 0s, 10s, 20s, 30s)", rounds)
		}
		cancel()
		<-done
	})
}

// TestMembershipRemovedOnlyWhenUnlisted: a member listed by discovery, then not listed in
// every successful round for leave_after, has been removed and should leave (Removed). Its
// own probe failing while discovery still lists it (an overloaded member answering late)
// is not being unlisted; nor do failed rounds (a DNS outage) count towards it, as they do
// not towards a peer's leave. Leaving cannot be undone, so neither may remove it.
func TestMembershipRemovedOnlyWhenUnlisted(t *testing.T) {
	listed := func(t *testing.T) *cluster {
		c := newCluster(t, "a")
		c.prober.set(self.Addr, Identity{Name: "self", Ready: true})
		c.disc.set([]string{addrOf("a"), self.Addr}, nil)
		c.round(0)
		return c
	}
	t.Run("unlisted_for_leave_after", func(t *testing.T) {
		c := listed(t)
		c.disc.set([]string{addrOf("a")}, nil)
		c.round(10 * time.Second) // unlisted since
		c.round(4*time.Minute + 50*time.Second)
		if c.m.Removed() {
			t.Fatal("removed after 4m50s unlisted, before leave_after")
		}
		c.round(10 * time.Second)
		if !c.m.Removed() {
			t.Fatal("not removed after leave_after unlisted")
		}
		c.disc.set([]string{addrOf("a"), self.Addr}, nil)
		c.round(10 * time.Second)
		if c.m.Removed() {
			t.Error("still removed once listed again")
		}
	})
	t.Run("its_own_probe_failing", func(t *testing.T) {
		c := listed(t)
		c.prober.remove(self.Addr)
		for range 31 {
			c.round(10 * time.Second)
		}
		if c.m.Removed() {
			t.Fatal("removed although discovery listed this member in every round; only its own probe failed")
		}
	})
	t.Run("failed_rounds", func(t *testing.T) {
		blip := errors.New("lookup cardinal-peers: i/o timeout")
		c := listed(t)
		c.disc.set([]string{addrOf("a")}, nil)
		c.round(10 * time.Second) // one successful round without it
		c.disc.set(nil, blip)
		for range 31 {
			c.clock.advance(10 * time.Second)
			if err := c.m.Refresh(t.Context()); !errors.Is(err, blip) {
				t.Fatal(err)
			}
		}
		if c.m.Removed() {
			t.Fatal("removed by failed rounds: one successful round without it, then DNS down for leave_after")
		}
		c.disc.set([]string{addrOf("a")}, nil)
		c.round(10 * time.Second)
		if !c.m.Removed() {
			t.Error("not removed by a successful round after leave_after unlisted")
		}
	})
}

// TestMembershipForgetsAnAddressThatAnswersAnotherName: member b is away and a new member c
// comes up at b's old address (a node replaced with the same IP). b must not keep that
// address until it leaves: sent there, b's series would be taken by c, which aggregates
// what the sender's ring gives it and drops the rest after its 2xx.
func TestMembershipForgetsAnAddressThatAnswersAnotherName(t *testing.T) {
	c := newCluster(t, "b")
	c.round(0)
	c.round(time.Minute) // start-up is over
	c.prober.set(addrOf("b"), Identity{Name: "c", Ready: true})
	for range 4 {
		c.round(10 * time.Second)
	}
	for _, m := range c.m.Members() {
		if m.Name == "b" && m.Addr == addrOf("b") {
			t.Fatalf("b is still at %s, which answers as c", m.Addr)
		}
	}
	c.want("c joined, b not yet left", "b", "c")
}

// TestMembershipCountsAnotherProcessAnsweringWithItsName: two members configured with one
// name (cluster.name in a shared config) each ignore the other as themselves, run alone and
// write the same outputs. Their instance ids tell them apart: counted and logged, and not
// taken as this member being listed.
func TestMembershipCountsAnotherProcessAnsweringWithItsName(t *testing.T) {
	c := newCluster(t)
	c.prober.set(self.Addr, Identity{Name: "self", Ready: true, Instance: c.m.Instance()})
	c.prober.set(addrOf("a"), Identity{Name: "self", Ready: true, Instance: "another"})
	c.disc.set([]string{self.Addr, addrOf("a")}, nil)
	c.round(0)
	if s := c.m.Stats(); s.NameCollisions != 1 || s.Members != 1 {
		t.Errorf("Stats: %d name collisions, %d members; want 1 and 1", s.NameCollisions, s.Members)
	}
	// The other process's address is not this member's: with it alone listed, this member
	// is not.
	c.disc.set([]string{addrOf("a")}, nil)
	c.round(10 * time.Second)
	c.round(5 * time.Minute)
	if !c.m.Removed() {
		t.Error("listed only by another process answering with its name, this member counts as listed")
	}
}

// TestARoundAskedForDuringAnotherGetsItsWholeBudget: a handoff asks for a round while the
// periodic one waits out the probe of a peer that hangs. Its budget counts from when its own
// round begins: counted from the ask, the wait ate it, the round was cut short and changed
// nothing, and the handoff was merged by a stale ring. (Real time, scaled down.)
func TestARoundAskedForDuringAnotherGetsItsWholeBudget(t *testing.T) {
	hang := proberFunc(func(ctx context.Context, addr string) (Identity, error) {
		if addr == addrOf("d") { // a node that went away: nothing answers
			<-ctx.Done()
			return Identity{}, ctx.Err()
		}
		return Identity{Name: "a", Ready: true}, nil
	})
	cfg := DefaultConfig()
	cfg.ProbeTimeout = setting.Duration(200 * time.Millisecond)
	disc := &fakeDiscoverer{peers: []string{addrOf("a"), addrOf("d")}}
	m, err := NewMembership(self, cfg, []Discoverer{disc}, hang, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = m.Refresh(context.Background()); close(done) }() // the periodic round
	time.Sleep(50 * time.Millisecond)                                // the ask comes 50 ms into it
	err = m.RefreshWithin(context.Background(), time.Duration(cfg.ProbeTimeout)+100*time.Millisecond)
	<-done
	if err != nil {
		t.Fatalf("the round asked for failed: %v", err)
	}
}

// A member starting up admits the peers that answer ready at once, so that it takes the
// ring they route by; but not a candidate they have not added (it says it waits outside its
// own ring). One in a crash loop, ready for less than join_after at a time, is never added
// by the running members; a member restarted while it was up admitted it for good (seen
// again within leave_after each time), and the rings disagreed for as long as it flapped.
func TestAMemberStartingDoesNotAdmitACandidateItsPeersHaveNot(t *testing.T) {
	c := newCluster(t, "a", "y")
	c.prober.set(addrOf("y"), Identity{Name: "y", Ready: true, Outside: true})
	c.round(0)
	c.want("first round, y waiting to be added", "a")
	for range 6 { // y stays up: it joins after join_after, as at any other time
		c.round(10 * time.Second)
	}
	c.want("y ready for a minute", "a", "y")

	c = newCluster(t, "a", "y")
	for i := range 180 { // 30 minutes: y answers ready 20 s of every 60
		if i%6 < 2 {
			c.prober.set(addrOf("y"), Identity{Name: "y", Ready: true, Outside: true})
		} else {
			c.prober.remove(addrOf("y"))
		}
		c.round(10 * time.Second)
	}
	c.want("y in a crash loop for 30 minutes", "a")
}

// A process answering with this member's name is a collision only if it serves as a
// member: this member's previous process, still listed while it shuts down (a Service that
// publishes addresses not ready), answers leaving or not ready, and must not page.
func TestThisMembersPreviousProcessShuttingDownIsNotACollision(t *testing.T) {
	for _, prev := range []Identity{
		{Name: "self", Ready: false, Leaving: true, Instance: "previous"},
		{Name: "self", Ready: false, Instance: "previous"},
	} {
		c := newCluster(t, "a")
		c.prober.set(self.Addr, Identity{Name: "self", Ready: true, Instance: c.m.Instance()})
		c.prober.set("10.0.0.99:9090", prev)
		c.disc.set([]string{addrOf("a"), self.Addr, "10.0.0.99:9090"}, nil)
		c.round(0)
		if n := c.m.Stats().NameCollisions; n != 0 {
			t.Errorf("%+v: %d name collisions, want none", prev, n)
		}
	}
}

// A member answering at several addresses (a dual-stack Service lists an IPv4 and an IPv6
// one) is logged when its addresses change, not in every round.
func TestSeveralAddressesAreLoggedWhenTheyChange(t *testing.T) {
	c := newCluster(t, "a")
	var logs strings.Builder
	m, err := NewMembership(self, DefaultConfig(), []Discoverer{c.disc}, c.prober, c.clock.now, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.m = m
	v6 := "[fd00::1]:9090"
	c.prober.set(v6, Identity{Name: "a", Ready: true})
	c.disc.set([]string{addrOf("a"), v6}, nil)
	for range 6 {
		c.round(10 * time.Second)
	}
	if n := strings.Count(logs.String(), "several addresses"); n != 1 {
		t.Errorf("%d lines about several addresses in 6 rounds, want 1:\n%s", n, logs.String())
	}
	c.disc.set([]string{addrOf("a"), v6, "[fd00::2]:9090"}, nil)
	c.prober.set("[fd00::2]:9090", Identity{Name: "a", Ready: true})
	c.round(10 * time.Second)
	if n := strings.Count(logs.String(), "several addresses"); n != 2 {
		t.Errorf("%d lines about several addresses after a third appeared, want 2", n)
	}
}

// slowDiscoverer answers after delay, or when ctx ends: a DNS server that drops queries
// (the resolver's timeouts and retries).
type slowDiscoverer struct{ delay time.Duration }

func (d slowDiscoverer) Discover(ctx context.Context) ([]string, error) {
	select {
	case <-time.After(d.delay):
		return []string{addrOf("a")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A round a handoff asks for (RefreshWithin with the request's context) stops waiting for
// the round under way when its context ends: behind a DNS lookup that hangs, the handoff
// request hung with it. And a periodic round's lookup (Run) ends within refresh_interval.
func TestARoundAskedForStopsWaitingWhenItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProber{ids: map[string]Identity{addrOf("a"): {Name: "a", Ready: true}}}
		m, err := NewMembership(self, DefaultConfig(), []Discoverer{slowDiscoverer{time.Minute}}, p, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		ran := make(chan struct{})
		go func() { defer close(ran); m.Run(ctx) }()
		synctest.Wait() // the periodic round waits for its lookup

		asked, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := m.RefreshWithin(asked, 3*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RefreshWithin: %v, want its context's deadline", err)
		}
		if took := time.Since(start); took != 200*time.Millisecond {
			t.Errorf("RefreshWithin waited %v for the round under way, want its context's 200ms", took)
		}
		time.Sleep(time.Duration(DefaultConfig().RefreshInterval))
		synctest.Wait() // the round has failed, the next one waits for its lookup
		if s := m.Stats(); s.FailedRounds != 1 {
			t.Errorf("after refresh_interval, %d failed rounds; want the periodic round cut short at refresh_interval", s.FailedRounds)
		}
		stop()
		<-ran
	})
}

// An address that answers with one member's name in a round and another's in the next (a
// Service's address listed beside the pods', which answers with whichever member it hits)
// is not a member's address while one of the member's own answers: forwards sent there
// would reach a member that does not own them. Here b restarts at a new address while the
// shared one, which sorts first, answers with its name.
func TestAnAddressThatAnswersSeveralNamesIsNotAMembersAddress(t *testing.T) {
	c := newCluster(t, "a", "b")
	vip := "10.0.0.0:9090" // sorts before every pod's address
	c.disc.set([]string{addrOf("a"), addrOf("b"), vip}, nil)
	c.prober.set(vip, Identity{Name: "a", Ready: true})
	c.round(0)
	c.prober.set(vip, Identity{Name: "b", Ready: true})
	c.round(10 * time.Second)
	moved := "10.0.0.42:9090"
	c.prober.remove(addrOf("b"))
	c.prober.set(moved, Identity{Name: "b", Ready: true})
	c.disc.set([]string{addrOf("a"), moved, vip}, nil)
	c.round(10 * time.Second)
	want := map[string]string{"a": addrOf("a"), "b": moved, "self": self.Addr}
	for _, mb := range c.m.Members() {
		if mb.Addr != want[mb.Name] {
			t.Errorf("member %s at %s, want %s (members %v)", mb.Name, mb.Addr, want[mb.Name], c.m.Members())
		}
	}
}

// slowLookup is a discoverer whose lookups take delay (a DNS round trip).
type slowLookup struct {
	d     Discoverer
	delay time.Duration
}

func (d slowLookup) Discover(ctx context.Context) ([]string, error) {
	time.Sleep(d.delay)
	return d.d.Discover(ctx)
}

// A peer whose address does not answer (a dead node, still listed) holds its probe for
// probe_timeout, which may be all of refresh_interval (the config allows it): the round
// must still count, others joining and leaving. Bounding the whole round by
// refresh_interval cut every such round short, and the membership stood still.
func TestAHungPeerDoesNotStopTheRoundsWhenItsProbeTakesTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.RefreshInterval = setting.Duration(2 * time.Second)
		cfg.Peers = []string{"a:9090"}
		if err := cfg.Validate(); err != nil || cfg.ProbeTimeout != cfg.RefreshInterval {
			t.Fatalf("config: %v, probe_timeout %v; want valid with probe_timeout = refresh_interval", err, cfg.ProbeTimeout)
		}
		disc := &fakeDiscoverer{}
		disc.set([]string{addrOf("a"), addrOf("h")}, nil)
		ids := &fakeProber{ids: map[string]Identity{addrOf("a"): {Name: "a", Ready: true}, addrOf("c"): {Name: "c", Ready: true}}}
		prober := proberFunc(func(ctx context.Context, addr string) (Identity, error) {
			if addr == addrOf("h") {
				<-ctx.Done() // black-holed
				return Identity{}, ctx.Err()
			}
			return ids.Probe(ctx, addr)
		})
		m, err := NewMembership(self, cfg, []Discoverer{slowLookup{disc, 5 * time.Millisecond}}, prober, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		ran := make(chan struct{})
		go func() { defer close(ran); m.Run(ctx) }()
		time.Sleep(time.Minute)
		disc.set([]string{addrOf("a"), addrOf("c"), addrOf("h")}, nil) // c comes up
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if m.Ring().Index("c") < 0 || m.Ring().Index("a") < 0 {
			t.Errorf("members %v after 6 minutes; want a, ready from the start, and c, ready for 5 minutes (stats %+v)", m.Members(), m.Stats())
		}
		if s := m.Stats(); s.FailedRounds != 0 {
			t.Errorf("%d failed rounds, want none", s.FailedRounds)
		}
		stop()
		<-ran
	})
}
