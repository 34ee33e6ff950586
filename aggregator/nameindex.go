package aggregator

import "math/bits"

// nameIndex maps a metric name to the rules that select it by name. It is asked once for
// most input series (each time the name differs from the previous series'), so it is an
// open-addressing table probed by a cheap hash of the name's length and its first and last
// eight bytes, which tell apart the names of one exposition (a common prefix, a varying
// suffix, or a different length) without reading all of them; a full comparison confirms
// the hit. A Go map hashes every byte of the name and probes a group of control bytes
// first, which cost several times more here. It is built once per rule set and read-only.
type nameIndex struct {
	slots []nameSlot // length is a power of two, at most half full; empty when no names
	shift uint       // 64 - log2(len(slots))
}

// nameSlot is one name and its rules; rules is nil in an empty slot.
type nameSlot struct {
	name  string
	rules []*ruleState
}

// newNameIndex builds the index of byName.
func newNameIndex(byName map[string][]*ruleState) nameIndex {
	if len(byName) == 0 {
		return nameIndex{}
	}
	size := 4
	for size < 2*len(byName) {
		size *= 2
	}
	x := nameIndex{slots: make([]nameSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	for name, rs := range byName {
		i := x.home(name)
		for x.slots[i].rules != nil {
			i = (i + 1) & (len(x.slots) - 1)
		}
		x.slots[i] = nameSlot{name: name, rules: rs}
	}
	return x
}

// lookup returns the rules of metric name, or nil.
func (x *nameIndex) lookup(name string) []*ruleState {
	if len(x.slots) == 0 {
		return nil
	}
	for i := x.home(name); ; i = (i + 1) & (len(x.slots) - 1) {
		s := &x.slots[i]
		if s.rules == nil {
			return nil
		}
		if s.name == name {
			return s.rules
		}
	}
}

// home is the slot where a probe for name starts.
func (x *nameIndex) home(name string) int {
	h := nameHash(name) * 0x9e3779b97f4a7c15 // Fibonacci hashing: the top bits mix all of h
	return int(h >> x.shift)
}

// nameHash mixes a name's length with its first and last eight bytes (fewer when shorter).
func nameHash(s string) uint64 {
	n := len(s)
	if n < 8 {
		var h uint64
		for i := 0; i < n; i++ {
			h = h<<8 | uint64(s[i])
		}
		return h ^ uint64(n)<<56
	}
	head := load64(s)
	tail := load64(s[n-8:])
	return head ^ bits.RotateLeft64(tail, 29) ^ uint64(n)*0xff51afd7ed558ccd
}

// load64 reads the first eight bytes of s, little-endian; the compiler makes it one load.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
