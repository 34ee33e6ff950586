package aggregator

// windowOf returns the index k of the right-closed window ((k-1)·i, k·i] holding timestamp
// t (milliseconds), for an interval of i milliseconds.
func windowOf(t, i int64) int64 {
	if t > 0 {
		return (t + i - 1) / i
	}
	// Floor division for t ≤ 0 keeps the windows right-closed on the whole line.
	return -((-t) / i)
}

// windowCache remembers the last window a timestamp fell in: consecutive samples of a shard
// mostly fall in the same window, and this saves the division of windowOf for them. A cache
// serves one interval: a rule shard's, which never changes.
type windowCache struct {
	k      int64 // the window: timestamps in (lo, hi]
	lo, hi int64
}

// of returns windowOf(t, i), from the cache when t is in the last window seen. The zero
// cache is empty (its range holds no timestamp).
func (c *windowCache) of(t, i int64) int64 {
	if t > c.lo && t <= c.hi {
		return c.k
	}
	k := windowOf(t, i)
	c.k, c.lo, c.hi = k, (k-1)*i, k*i
	return k
}

// windowAcc accumulates what one open window of one output series has seen. Counters use
// increase; gauges use the value fields. An output keeps one per open window (usually one or
// two), sorted by k.
type windowAcc struct {
	k        int64
	samples  int32   // samples that landed in this window
	count    int32   // gauge: input series contributing a value
	increase float64 // counter: sum of increases
	sum      float64 // gauge: sum of contributed values
	min, max float64 // gauge: extremes of contributed values
	last     float64 // gauge: value of the newest contributed sample
	lastT    int64   // gauge: timestamp of that sample
}

// addValue folds one input series' value (sampled at t) into a gauge window.
func (w *windowAcc) addValue(v float64, t int64) {
	if w.count == 0 || v < w.min {
		w.min = v
	}
	if w.count == 0 || v > w.max {
		w.max = v
	}
	if w.count == 0 || t >= w.lastT {
		w.last, w.lastT = v, t
	}
	w.sum += v
	w.count++
}
