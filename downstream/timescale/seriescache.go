package timescale

// seriesCache remembers the ids of series known to be in the series table, so that each series
// is inserted once rather than with every sample. It is bounded: it keeps two generations and
// drops the older one when the newer is full, so recently seen series stay and the memory is at
// most 2*max ids. Forgetting an id costs one redundant, idempotent insert. It belongs to the
// writer goroutine and is not safe for concurrent use.
type seriesCache struct {
	max       int
	cur, prev map[int64]struct{}
}

func newSeriesCache(maxPerGeneration int) *seriesCache {
	return &seriesCache{max: maxPerGeneration, cur: make(map[int64]struct{})}
}

// contains reports whether id is known, promoting it to the current generation.
func (c *seriesCache) contains(id int64) bool {
	if _, ok := c.cur[id]; ok {
		return true
	}
	if _, ok := c.prev[id]; ok {
		c.add(id)
		return true
	}
	return false
}

// add records id as present in the database.
func (c *seriesCache) add(id int64) {
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[int64]struct{}, c.max)
	}
	c.cur[id] = struct{}{}
}

// reset forgets everything, for when the database may have changed under the sink.
func (c *seriesCache) reset() {
	c.cur, c.prev = make(map[int64]struct{}), nil
}
