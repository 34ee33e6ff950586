package timescale

import "testing"

func TestSeriesCache(t *testing.T) {
	t.Run("bounded_to_two_generations", func(t *testing.T) {
		c := newSeriesCache(10)
		for id := range int64(100) {
			c.add(id)
		}
		if n := len(c.cur) + len(c.prev); n > 20 {
			t.Fatalf("cache holds %d ids, want at most 20", n)
		}
		if c.contains(0) {
			t.Error("the oldest id is still known")
		}
		if !c.contains(99) {
			t.Error("the newest id is forgotten")
		}
	})
	t.Run("recently_used_ids_survive_rotation", func(t *testing.T) {
		c := newSeriesCache(10)
		c.add(-1)
		for id := range int64(30) {
			c.add(id)
			if !c.contains(-1) {
				t.Fatalf("id used at every step forgotten after %d adds", id+1)
			}
		}
	})
	t.Run("reset_forgets_everything", func(t *testing.T) {
		c := newSeriesCache(10)
		c.add(7)
		c.reset()
		if c.contains(7) {
			t.Error("id known after reset")
		}
	})
}
