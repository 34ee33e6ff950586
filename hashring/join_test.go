package hashring

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A member stays out of its own ring only while the peers that answer provably route by the
// ring without it; any sign they added it (or no answer at all) makes it a member.
func TestOutsideTheirRingOnlyWhileThePeersRouteWithoutIt(t *testing.T) {
	members := []Member{{Name: "node-a"}, {Name: "node-b"}, {Name: "node-c"}}
	without := New([]Member{{Name: "node-b"}, {Name: "node-c"}}).VersionString()
	with := New(members).VersionString()
	peer := func(name, version string) PeerState { return PeerState{Name: name, Member: true, RingVersion: version} }
	missing := peer("node-c", without)
	missing.MissingSince = time.Unix(1, 0)
	for _, tt := range []struct {
		name  string
		peers []PeerState
		want  bool
	}{
		{"both route without it", []PeerState{peer("node-b", without), peer("node-c", without)}, true},
		{"one added it", []PeerState{peer("node-b", without), peer("node-c", with)}, false},
		{"one routes by yet another ring", []PeerState{peer("node-b", without), peer("node-c", "00000000000000ff")}, false},
		{"the one that answers routes without it", []PeerState{peer("node-b", without), missing}, true},
		{"none answered", []PeerState{{Name: "node-b", Member: true}, missing}, false},
		{"a candidate says nothing", []PeerState{{Name: "node-b", RingVersion: without}}, false},
	} {
		if got := OutsideTheirRing("node-a", members, tt.peers); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if OutsideTheirRing("node-a", []Member{{Name: "node-a"}}, nil) {
		t.Error("alone, it is outside its own ring")
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
	f.cur.Load().done.Store(&map[string]bool{"node-b": true})
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
