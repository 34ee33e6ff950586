package aggregator

import (
	"fmt"
	"testing"
)

func TestNameIndexFindsEveryNameAndNothingElse(t *testing.T) {
	byName := map[string][]*ruleState{}
	var names []string
	// Names that share prefixes, suffixes and lengths, short ones, and the empty name: the
	// cheap hash reads only the ends, so these collide in it and must still come apart.
	// Both hashes are checked, whichever newNameIndex picks.
	for i := range 300 {
		names = append(names, fmt.Sprintf("node_metric_%03d_seconds_total", i))
	}
	names = append(names, "", "a", "up", "abcdefg", "abcdefgh", "abcdefghi",
		"node_metric_000_xxxxxxx_seconds_total", "node_metric_000_yyyyyyy_seconds_total")
	for _, n := range names {
		byName[n] = []*ruleState{{}}
	}
	for _, full := range []bool{false, true} {
		checkNameIndex(t, buildNameIndex(byName, full), byName, names)
	}
	checkNameIndex(t, newNameIndex(byName), byName, names)
}

// Names that differ at their ends, as most of an exposition's do, keep the cheap hash.
func TestNameIndexKeepsTheCheapHashForNamesThatDifferAtTheEnds(t *testing.T) {
	byName, names := numberedNames("loadgen_counter_%d_total", 100)
	x := newNameIndex(byName)
	if x.full {
		t.Errorf("names that differ at their ends: the index hashes every byte (longest run %d), want the cheap hash", x.longestRun())
	}
	checkNameIndex(t, x, byName, names)
}

// Names that differ only in the middle all look alike to the cheap hash of the ends: the
// index must notice the clustering and hash every byte, and still find every name.
func TestNameIndexHashesEveryByteOfLookAlikeNames(t *testing.T) {
	byName, names := numberedNames("kube_pod_container_status_%04d_reason", 200)
	x := newNameIndex(byName)
	if !x.full {
		t.Errorf("200 names alike at both ends: longest run %d with the cheap hash, want the full hash", x.longestRun())
	}
	if run := x.longestRun(); run > 20 {
		t.Errorf("longest run of occupied slots is %d with the full hash", run)
	}
	checkNameIndex(t, x, byName, names)
}

// numberedNames returns n names made by format from 0..n-1, each with a rule of its own.
func numberedNames(format string, n int) (map[string][]*ruleState, []string) {
	byName := map[string][]*ruleState{}
	var names []string
	for i := range n {
		name := fmt.Sprintf(format, i)
		names = append(names, name)
		byName[name] = []*ruleState{{}}
	}
	return byName, names
}

func checkNameIndex(t *testing.T, x nameIndex, byName map[string][]*ruleState, names []string) {
	t.Helper()
	for _, n := range names {
		got := x.lookup(n)
		if len(got) != 1 || got[0] != byName[n][0] {
			t.Errorf("lookup(%q) = %v, want its own rule", n, got)
		}
	}
	for _, n := range []string{"b", "upp", "abcdefgj", "node_metric_300_seconds_total",
		"node_metric_000_zzzzzzz_seconds_total", "node_metric_000_seconds_total ", "\x00"} {
		if got := x.lookup(n); got != nil {
			t.Errorf("lookup(%q) = %v, want nil", n, got)
		}
	}
	var empty nameIndex
	if got := empty.lookup("up"); got != nil {
		t.Errorf("empty index: lookup(up) = %v", got)
	}
}
