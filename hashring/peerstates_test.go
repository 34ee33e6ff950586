package hashring

import (
	"testing"
	"time"
)

// PeerStates tells an operator why the ring is what it is: a member that answers (and the
// ring it says it routes by), one that has stopped answering and when it leaves, and a
// candidate and when it joins.
func TestPeerStatesSayWhenEachPeerJoinsOrLeaves(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.prober.set(addrOf("a"), Identity{Name: "a", Ready: true, RingVersion: "00000000000000aa"})
	c.round(0) // the first round admits ready peers at once
	c.round(time.Duration(DefaultConfig().JoinAfter) + time.Second)
	c.prober.remove(addrOf("b")) // b stops answering
	c.prober.set(addrOf("c"), Identity{Name: "c", Ready: true})
	c.discover("a", "b", "c")
	c.round(10 * time.Second)
	c.round(10 * time.Second)
	now := c.clock.now()
	got := map[string]PeerState{}
	for _, p := range c.m.PeerStates() {
		got[p.Name] = p
	}
	if len(got) != 3 {
		t.Fatalf("peer states %+v, want a, b and c", got)
	}
	if a := got["a"]; !a.Member || !a.MissingSince.IsZero() || a.RingVersion != "00000000000000aa" || a.Addr != addrOf("a") {
		t.Errorf("a: %+v, want a member seen in the last round, routing by ring 00000000000000aa", a)
	}
	if b := got["b"]; !b.Member || !b.MissingSince.Equal(now.Add(-10*time.Second)) || !b.LeaveAt.Equal(b.MissingSince.Add(time.Duration(DefaultConfig().LeaveAfter))) {
		t.Errorf("b: %+v, want a member missing since the round before that leaves leave_after after it went missing", b)
	}
	if c := got["c"]; c.Member || !c.ReadySince.Equal(now.Add(-10*time.Second)) || !c.JoinAt.Equal(c.ReadySince.Add(time.Duration(DefaultConfig().JoinAfter))) {
		t.Errorf("c: %+v, want a candidate ready for 10 s that joins join_after after it was first seen", c)
	}
}
