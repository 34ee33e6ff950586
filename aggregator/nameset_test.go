package aggregator

import "testing"

func TestNameSet(t *testing.T) {
	s := newNameSet([]string{"pod", "instance", "", "\x00x"})
	for name, want := range map[string]bool{
		"pod": true, "instance": true, "": true, "\x00x": true,
		"po": false, "pods": false, "path": false, "job": false, "\x00": false, "i": false, "\xffpod": false,
	} {
		if got := s.has(name); got != want {
			t.Errorf("has(%q) = %v, want %v", name, got, want)
		}
	}
	empty := newNameSet(nil)
	for _, name := range []string{"", "pod", "\x00"} {
		if empty.has(name) {
			t.Errorf("empty set has %q", name)
		}
	}
}
