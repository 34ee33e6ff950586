package aggregator

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestWindowOf(t *testing.T) {
	for _, c := range []struct{ t, i, want int64 }{
		{1, 10, 1}, {10, 10, 1}, {11, 10, 2}, {20, 10, 2},
		{0, 10, 0}, {-1, 10, 0}, {-9, 10, 0}, {-10, 10, -1}, {-11, 10, -1},
	} {
		if got := windowOf(c.t, c.i); got != c.want {
			t.Errorf("windowOf(%d, %d) = %d, want %d", c.t, c.i, got, c.want)
		}
	}
}

// TestWindowCache checks the cache against windowOf on window edges, random timestamps and
// extreme ones.
func TestWindowCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var c windowCache
	check := func(ts, i int64) {
		t.Helper()
		if got, want := c.of(ts, i), windowOf(ts, i); got != want {
			t.Fatalf("cache says window %d for t=%d i=%d, windowOf says %d", got, ts, i, want)
		}
	}
	for _, i := range []int64{15_000, 60_000, 1} {
		c = windowCache{} // a cache serves one interval, as a rule shard's does
		for k := int64(-3); k <= 3; k++ {
			for _, d := range []int64{-1, 0, 1} {
				check(k*i+d, i)
				check(k*i+d, i) // now from the cache
			}
		}
		for range 10_000 {
			check(rng.Int64N(1<<42)-1<<41, i)
		}
	}
	c = windowCache{}
	for _, ts := range []int64{math.MinInt64 + 5, math.MinInt64 / 2, math.MaxInt64 / 2} {
		check(ts, 15_000)
		check(ts, 15_000)
	}
}
