package hashring

// View is a ring seen from one member: the aggregator's Router, which answers Local (-1) for
// the shards that member owns and the owner's index in the ring for the others.
type View struct {
	ring *Ring
	self int // the member's index in ring, or -1 if it is not in it
}

// NewView returns r seen from the member named self.
func NewView(r *Ring, self string) View { return View{ring: r, self: r.Index(self)} }

// Ring returns the ring.
func (v View) Ring() *Ring { return v.ring }

// Owner implements aggregator.Router: -1 when the viewing member owns key's shard (or the
// ring is empty: a member alone aggregates everything), else the owner's index in the ring.
func (v View) Owner(key uint64) int {
	if v.ring.owners == nil {
		return -1
	}
	o := int(v.ring.owners[key%Shards])
	if o == v.self {
		return -1
	}
	return o
}

// OwnersOf implements aggregator.BatchRouter: owners[i] is Owner(keys[i]). The loads of
// the owner table, which is larger than the CPU's caches, do not depend on each other here,
// so their misses overlap instead of coming one after another.
func (v View) OwnersOf(keys []uint64, owners []int) {
	if v.ring.owners == nil {
		for i := range owners {
			owners[i] = -1
		}
		return
	}
	table := v.ring.owners
	for i, k := range keys {
		owners[i] = int(table[k%Shards])
	}
	for i, o := range owners {
		if o == v.self {
			owners[i] = -1
		}
	}
}
