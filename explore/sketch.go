package explore

import "github.com/axiomhq/hyperloglog"

// sketch is a HyperLogLog sketch of precision 14 that starts sparse, and what it is charged
// against the memory budget.
type sketch struct {
	hll     *hyperloglog.Sketch
	inserts uint64
	charged int64
}

// What a sketch is charged: sketchBase when created, then per insert firstEntryBytes for the
// first firstEntries (its set of recent entries) and entryBytes after that (its compressed
// list), up to maxSketchBytes. That bounds the heap a sketch really holds from above, as
// measured with runtime.MemStats: about 150 bytes empty, 1.2 KB after 100 inserts, 4.2 KB
// after 1,000, 9.4 KB after 3,000, and 16.4 KB once dense (2^14 one-byte registers), which
// it becomes at a few thousand distinct entries.
const (
	sketchBase      = 256
	firstEntries    = 128
	firstEntryBytes = 12
	entryBytes      = 4
	maxSketchBytes  = 20 << 10
)

// newSketch returns an empty sketch and the bytes it is charged.
func newSketch() (sketch, int64) {
	return sketch{hll: hyperloglog.New14(), charged: sketchBase}, sketchBase
}

// insert adds a uniformly distributed hash and returns the bytes charged for it.
func (s *sketch) insert(h uint64) int64 {
	s.hll.InsertHash(h)
	s.inserts++
	c := int64(entryBytes)
	if s.inserts <= firstEntries {
		c = firstEntryBytes
	}
	c = min(c, maxSketchBytes-s.charged)
	s.charged += c
	return c
}

// estimate returns the distinct count, at most limit (a sketch can overshoot the exact
// count it is part of by its error).
func (s *sketch) estimate(limit uint64) uint64 {
	if s.hll == nil {
		return 0
	}
	return min(s.hll.Estimate(), limit, s.inserts)
}
