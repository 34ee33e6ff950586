package hashring

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTheLastRingIsSavedAndLoadedForItsMemberOnly: what Save writes, Load returns for the
// same member; no file is no ring; a file of another member (cluster.name changed) or one
// that does not parse is an error, not a ring. Saving the members the file holds already
// writes nothing.
func TestTheLastRingIsSavedAndLoadedForItsMemberOnly(t *testing.T) {
	dir := t.TempDir()
	lr := OpenLastRing(dir, "node-a")
	if got, err := lr.Load(); got != nil || err != nil {
		t.Fatalf("no file: %v, %v; want nothing and no error", got, err)
	}
	members := []Member{{Name: "node-a", Addr: "10.0.0.1:9090"}, {Name: "node-b", Addr: "10.0.0.2:9090"}}
	if err := lr.Save(members); err != nil {
		t.Fatal(err)
	}
	got, err := OpenLastRing(dir, "node-a").Load()
	if err != nil || !slices.Equal(got, members) {
		t.Errorf("loaded %v, %v; want %v", got, err, members)
	}
	path := filepath.Join(dir, LastRingFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := lr.Save(slices.Clone(members)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("saving the members saved already wrote the file again")
	}
	if got, err := OpenLastRing(dir, "node-z").Load(); got != nil || err != nil {
		t.Errorf("no file for node-z: %v, %v", got, err)
	}
	if err := lr.Save(members[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := OpenLastRing(dir, "node-z").Load(); got != nil || err == nil || !strings.Contains(err.Error(), `"node-a"`) {
		t.Errorf("loaded by another member: %v, %v; want an error naming the writer", got, err)
	}
	for _, bad := range []string{`{"self": "node-a", "members": [{"name": "bad name"}]}`, "{"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := lr.Load(); got != nil || err == nil {
			t.Errorf("%q: %v, %v; want an error", bad, got, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d files, want the ring's alone (no temp file left)", len(entries))
	}
}

// TestAResumedRingHoldsUntilDiscoverySaysOtherwise: a restart resumes the previous
// process's ring before its first round, so that even with every peer down (a whole
// cluster restarted at once) it routes as before; a resumed peer that answers stays, one
// unseen leaves after leave_after as any member does, and self stays whatever the file
// says. Resume after the first round changes nothing.
func TestAResumedRingHoldsUntilDiscoverySaysOtherwise(t *testing.T) {
	c := newCluster(t, "a")
	c.prober.remove(addrOf("a")) // a is restarting too: it does not answer yet
	c.m.Resume([]Member{{Name: "a", Addr: addrOf("a")}, {Name: "b", Addr: addrOf("b")}, {Name: "self", Addr: "x:1"}})
	c.want("resumed", "a", "b")
	if !c.changed() {
		t.Error("the resumed ring was not signalled")
	}
	if got := c.m.Ring().VersionString(); got != New([]Member{self, {Name: "a"}, {Name: "b"}}).VersionString() {
		t.Errorf("resumed ring version %s, want that of self, a and b", got)
	}
	c.round(0)
	c.want("first round, no peer answering", "a", "b")
	c.prober.set(addrOf("a"), Identity{Name: "a", Ready: true})
	c.round(4 * time.Minute)
	c.want("a answers, b unseen for 4m", "a", "b")
	c.round(time.Minute)
	c.want("b unseen for leave_after", "a")
	if s := c.m.Stats(); s.Members != 2 || s.Leaves != 1 {
		t.Errorf("Stats: %d members, %d leaves; want 2 and 1", s.Members, s.Leaves)
	}
	c.m.Resume([]Member{{Name: "b", Addr: addrOf("b")}})
	c.want("Resume after the first round", "a")
}
