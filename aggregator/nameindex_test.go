package aggregator

import (
	"fmt"
	"testing"
)

func TestNameIndexFindsEveryNameAndNothingElse(t *testing.T) {
	byName := map[string][]*ruleState{}
	var names []string
	// Names that share prefixes, suffixes and lengths, short ones, and the empty name: the
	// hash reads only the ends, so these collide in it and must still come apart.
	for i := range 300 {
		names = append(names, fmt.Sprintf("node_metric_%03d_seconds_total", i))
	}
	names = append(names, "", "a", "up", "abcdefg", "abcdefgh", "abcdefghi",
		"node_metric_000_xxxxxxx_seconds_total", "node_metric_000_yyyyyyy_seconds_total")
	for _, n := range names {
		byName[n] = []*ruleState{{}}
	}
	x := newNameIndex(byName)
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
