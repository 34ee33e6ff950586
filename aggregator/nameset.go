package aggregator

import "slices"

// nameSet is a small set of label names (a rule's drop_labels or keep_labels), asked about
// every label of every input series. Most names asked about are not in it, and a bitmap of
// the members' first bytes answers those without comparing strings.
type nameSet struct {
	names []string
	first [4]uint64 // bit c is set when a member starts with byte c (0 for "")
}

func newNameSet(names []string) nameSet {
	s := nameSet{names: names}
	for _, n := range names {
		c := firstByte(n)
		s.first[c>>6] |= 1 << (c & 63)
	}
	return s
}

// has reports whether name is in the set.
func (s *nameSet) has(name string) bool {
	c := firstByte(name)
	return s.first[c>>6]&(1<<(c&63)) != 0 && s.contains(name)
}

// index returns name's position in the set, or -1.
func (s *nameSet) index(name string) int {
	c := firstByte(name)
	if s.first[c>>6]&(1<<(c&63)) == 0 {
		return -1
	}
	return slices.Index(s.names, name)
}

// contains compares name with every member.
func (s *nameSet) contains(name string) bool { return slices.Contains(s.names, name) }

// firstByte is name's first byte, or 0 for "".
func firstByte(name string) byte {
	if name == "" {
		return 0
	}
	return name[0]
}
