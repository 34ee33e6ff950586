package hashring

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A member stays out of its own ring only while the peers that write outputs and answer
// say their rings lack it; one that says its ring has it admits it; an older peer, which
// does not say, counts as lacking it only when its ring is exactly the others'.
func TestAdmittedOnlyOnceAPeerRoutesByARingWithTheMember(t *testing.T) {
	members := []Member{{Name: "node-a"}, {Name: "node-b"}, {Name: "node-c"}}
	without := New([]Member{{Name: "node-b"}, {Name: "node-c"}}).VersionString()
	with := New(members).VersionString()
	// A ring that also holds a member that died and has not left it yet.
	withDead := New([]Member{{Name: "node-b"}, {Name: "node-c"}, {Name: "node-x"}}).VersionString()
	yes, no := true, false
	peer := func(name, version string, in *bool) PeerState {
		return PeerState{Name: name, Member: true, RingVersion: version, InRing: in}
	}
	missing := peer("node-c", without, &no)
	missing.MissingSince = time.Unix(1, 0)
	outside := peer("node-c", with, &yes) // joining too: its ring (without itself) has node-a
	outside.Outside = true
	for _, tt := range []struct {
		name  string
		peers []PeerState
		want  Admission
	}{
		{"both say their rings lack it", []PeerState{peer("node-b", withDead, &no), peer("node-c", withDead, &no)}, AdmissionOutside},
		{"one says its ring has it", []PeerState{peer("node-b", withDead, &no), peer("node-c", with, &yes)}, AdmissionAdded},
		{"the one that answers lacks it", []PeerState{peer("node-b", without, &no), missing}, AdmissionOutside},
		{"one joining too says nothing", []PeerState{peer("node-b", withDead, &no), outside}, AdmissionOutside},
		{"only one joining too answered", []PeerState{{Name: "node-b", Member: true}, outside}, AdmissionUnknown},
		{"none answered", []PeerState{{Name: "node-b", Member: true}, missing}, AdmissionUnknown},
		{"a candidate says nothing", []PeerState{{Name: "node-b", RingVersion: without, InRing: &yes}}, AdmissionUnknown},
		{"older peers on the others' ring", []PeerState{peer("node-b", without, nil), peer("node-c", without, nil)}, AdmissionOutside},
		{"an older peer on another ring", []PeerState{peer("node-b", without, &no), peer("node-c", withDead, nil)}, AdmissionAdded},
	} {
		if got := Admitted("node-a", members, tt.peers); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := Admitted("node-a", []Member{{Name: "node-a"}}, nil); got != AdmissionAdded {
		t.Errorf("alone: %v, want added", got)
	}
}

// Outside its ring a member owns nothing (every series goes to the member that writes its
// output meanwhile); once added, it gains its shards from members of the ring, and waits for
// their handoffs as in any ring change.
func TestAMemberOutsideItsRingOwnsNothingUntilAdded(t *testing.T) {
	f, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{{Name: "node-b"}, {Name: "node-c"}}
	without := New(members).VersionString()
	peers := []PeerState{{Name: "node-b", Member: true, RingVersion: without}, {Name: "node-c", Member: true, RingVersion: without}}
	f.SetMembersFrom(members, peers)
	if !f.Outside() {
		t.Fatal("not outside its ring while every peer routes by the ring without it")
	}
	for key := range uint64(Shards) {
		if f.Owns(key) {
			t.Fatalf("shard %d owned outside the ring", key)
		}
	}
	if want := New(members).VersionString(); f.Ring().VersionString() != want {
		t.Fatalf("ring %s outside, want the peers' %s", f.Ring().VersionString(), want)
	}
	peers[0].RingVersion = New(append([]Member{{Name: "node-a"}}, members...)).VersionString() // node-b added it
	f.SetMembersFrom(members, peers)
	if f.Outside() {
		t.Fatal("still outside once a peer routes by the ring with it")
	}
	owned, awaited := 0, 0
	for key := range uint64(Shards) {
		if f.Owns(key) {
			owned++
			if f.Awaits(key) {
				awaited++
			}
		}
	}
	if owned == 0 || awaited != owned {
		t.Fatalf("added: owns %d shards, awaits %d; want its share, every one awaited", owned, awaited)
	}
	peers[0].RingVersion = without // a peer that drops it later does not put it out again
	if f.SetMembersFrom(members, peers); f.Outside() || !f.Owns(ownedKeys(f)[0]) {
		t.Fatal("outside its ring again after it was in")
	}

	// node-b has handed over, node-c hangs: what node-b owned goes on, what node-c owned
	// waits for it.
	f.cur.Load().last.Store(&round{done: map[string]bool{"node-b": true}})
	bc := New(members)
	var fromB, fromC int
	for key := range uint64(Shards) {
		if !f.Owns(key) {
			continue
		}
		switch prev := bc.OwnerOfKey(key).Name; {
		case prev == "node-b" && f.Awaits(key):
			t.Fatalf("shard %d, gained from node-b which handed over: still awaited", key)
		case prev == "node-c" && !f.Awaits(key):
			t.Fatalf("shard %d, gained from node-c which has not handed over: not awaited", key)
		case prev == "node-b":
			fromB++
		default:
			fromC++
		}
	}
	if fromB == 0 || fromC == 0 {
		t.Fatalf("gained %d shards from node-b, %d from node-c: the test does not test both", fromB, fromC)
	}
}

// Until a peer answers, a member routes by its own ring without being admitted: a peer that
// then says its ring lacks it puts it out (what it aggregated meanwhile is handed over, as in
// any ring change); one that says its ring has it admits it for good.
func TestAMemberNoPeerAnsweredRoutesByItsRingUntilTheyDo(t *testing.T) {
	f, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{{Name: "node-b"}, {Name: "node-c"}}
	f.SetMembersFrom(members, []PeerState{{Name: "node-b", Member: true}, {Name: "node-c", Member: true}})
	if f.Outside() || f.Admitted() || len(ownedKeys(f)) == 0 {
		t.Fatalf("no answer: outside %v, admitted %v, %d shards; want in its ring, not admitted", f.Outside(), f.Admitted(), len(ownedKeys(f)))
	}
	yes, no := true, false
	without := New(members).VersionString()
	peers := []PeerState{{Name: "node-b", Member: true, RingVersion: without, InRing: &no}, {Name: "node-c", Member: true}}
	if f.SetMembersFrom(members, peers); !f.Outside() || f.Admitted() || len(ownedKeys(f)) != 0 {
		t.Fatalf("node-b lacks it: outside %v, admitted %v, %d shards; want outside, owning nothing", f.Outside(), f.Admitted(), len(ownedKeys(f)))
	}
	// No answer in a round leaves it outside.
	if f.SetMembersFrom(members, []PeerState{{Name: "node-b", Member: true, MissingSince: time.Unix(1, 0)}, {Name: "node-c", Member: true}}); !f.Outside() {
		t.Fatal("back in its ring in a round no peer answered")
	}
	peers[1] = PeerState{Name: "node-c", Member: true, RingVersion: "00000000000000ff", InRing: &yes}
	if f.SetMembersFrom(members, peers); f.Outside() || !f.Admitted() || len(ownedKeys(f)) == 0 {
		t.Fatalf("node-c has it: outside %v, admitted %v, %d shards; want admitted", f.Outside(), f.Admitted(), len(ownedKeys(f)))
	}
	peers[1].InRing = &no
	if f.SetMembersFrom(members, peers); f.Outside() || !f.Admitted() {
		t.Fatal("out of its ring again after it was admitted")
	}
}

// A member admitted in the same change that brings it another new member waits for that
// member too, for the shards it would own in a ring without this one: a peer that added the
// other first may have given it those, with their state (the other member hands them over
// once its ring has this one). The rest wait only for their previous owner, and none waits
// for a new member that does not answer at all.
func TestAShardGainedWithAMemberThatJoinedWaitsForItToo(t *testing.T) {
	f, err := NewForwarder("node-m", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	o := []Member{{Name: "node-o"}}
	f.SetMembersFrom(o, []PeerState{{Name: "node-o", Member: true, RingVersion: New(o).VersionString(), InRing: &no}})
	if !f.Outside() {
		t.Fatal("not outside while node-o's ring lacks it")
	}
	ot := []Member{{Name: "node-o"}, {Name: "node-t"}}
	f.SetMembersFrom(ot, []PeerState{{Name: "node-o", Member: true, RingVersion: "00000000000000ff", InRing: &yes}, {Name: "node-t", Member: true}})
	keys := ownedKeys(f)
	if f.Outside() || len(keys) == 0 || !awaitsAny(f, keys) {
		t.Fatalf("admitted with node-t: outside %v, %d shards owned, awaited %v; want its shards awaited", f.Outside(), len(keys), awaitsAny(f, keys))
	}
	f.cur.Load().last.Store(&round{done: map[string]bool{"node-o": true}, answered: map[string]bool{"node-o": true, "node-t": true}})
	withoutIt := New(ot)
	var toT, toO int
	for _, k := range keys {
		switch tOwned := withoutIt.OwnerOfKey(k).Name == "node-t"; {
		case tOwned && !f.Awaits(k):
			t.Fatalf("shard %d goes on once node-o has handed over; node-t, which joined with it and would own it, has not", k)
		case !tOwned && f.Awaits(k):
			t.Fatalf("shard %d, which node-t would not own without node-m, waits once node-o has handed over", k)
		case tOwned:
			toT++
		default:
			toO++
		}
	}
	if toT == 0 || toO == 0 {
		t.Fatalf("%d shards node-t would own, %d node-o would: the test does not test both", toT, toO)
	}
	// node-t stops answering (down, or hung): it writes nothing, and holds nothing back.
	f.cur.Load().last.Store(&round{done: map[string]bool{"node-o": true}, answered: map[string]bool{"node-o": true}})
	if awaitsAny(f, keys) {
		t.Fatal("still waiting for node-t, which does not answer")
	}
	f.cur.Load().last.Store(&round{done: map[string]bool{"node-o": true, "node-t": true}, answered: map[string]bool{"node-o": true, "node-t": true}})
	if awaitsAny(f, keys) {
		t.Fatal("still waiting once node-o and node-t have handed over")
	}
	// A replaced ring's queue still sends to node-t: what it holds may begin a stray
	// there, of a shard node-t would own without node-m.
	f.cur.Load().last.Store(&round{done: map[string]bool{"node-o": true, "node-t": true}, answered: map[string]bool{"node-o": true, "node-t": true},
		drains: map[string]bool{"node-t": true}})
	for _, k := range keys {
		if tOwned := withoutIt.OwnerOfKey(k).Name == "node-t"; f.Awaits(k) != tOwned {
			t.Fatalf("a queue still sends to node-t: shard %d awaited %v, want %v (node-t would own it: %v)", k, !tOwned, tOwned, tOwned)
		}
	}
}
