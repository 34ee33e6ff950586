package aggregator

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// nameIndex maps a metric name to the rules that select it by name. It is asked once for
// most input series (each time the name differs from the previous series'), so it is an
// open-addressing table probed by a cheap hash of the name's length and its first and last
// eight bytes, which tell apart the names of one exposition (a common prefix, a varying
// suffix, or a different length) without reading all of them; a full comparison confirms
// the hit. A Go map hashes every byte of the name and probes a group of control bytes
// first, which cost several times more here. Names that differ only in the middle
// (kube_pod_container_status_waiting_reason, ..._running_reason) look alike to the cheap
// hash: when it clusters the table worse than a hash of every byte, the index uses the
// latter. It is built once per rule set and read-only.
type nameIndex struct {
	slots []nameSlot // length is a power of two, at most half full; empty when no names
	shift uint       // 64 - log2(len(slots))
	full  bool       // hash every byte of the name (xxhash) rather than its ends
}

// nameSlot is one name and its rules; rules is nil in an empty slot.
type nameSlot struct {
	name  string
	rules []*ruleState
}

// clusterSlack is how much longer the longest run of occupied slots may be with the cheap
// hash than with the full one before the index pays for hashing every byte: a lookup of a
// name that no rule selects (most names, often) walks to the end of its run.
const clusterSlack = 2

// newNameIndex builds the index of byName.
func newNameIndex(byName map[string][]*ruleState) nameIndex {
	if len(byName) == 0 {
		return nameIndex{}
	}
	cheap := buildNameIndex(byName, false)
	full := buildNameIndex(byName, true)
	if cheap.longestRun() <= full.longestRun()+clusterSlack {
		return cheap
	}
	return full
}

// buildNameIndex fills an index of byName with the hash chosen by full.
func buildNameIndex(byName map[string][]*ruleState, full bool) nameIndex {
	size := 4
	for size < 2*len(byName) {
		size *= 2
	}
	x := nameIndex{slots: make([]nameSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size))), full: full}
	for name, rs := range byName {
		i := x.home(name)
		for x.slots[i].rules != nil {
			i = (i + 1) & (len(x.slots) - 1)
		}
		x.slots[i] = nameSlot{name: name, rules: rs}
	}
	return x
}

// longestRun returns the length of the longest run of occupied slots, wrapping around.
func (x *nameIndex) longestRun() int {
	longest, run := 0, 0
	for i := range 2 * len(x.slots) { // twice round, for a run that wraps; the table is never full
		if x.slots[i&(len(x.slots)-1)].rules == nil {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
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
	var h uint64
	if x.full {
		h = xxhash.Sum64String(name)
	} else {
		h = nameHash(name)
	}
	h *= 0x9e3779b97f4a7c15 // Fibonacci hashing: the top bits mix all of h
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
