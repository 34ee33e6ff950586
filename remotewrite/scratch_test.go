package remotewrite

import (
	"runtime"
	"testing"
)

func TestScratchPoolKeepsTypicalScratchAcrossCollections(t *testing.T) {
	made := 0
	p := newScratchPool(func() *requestScratch { made++; return &requestScratch{} })
	s := p.get()
	s.body = make([]byte, 0, 256<<10)
	p.put(s)
	runtime.GC()
	runtime.GC() // a sync.Pool would have dropped s by now
	if got := p.get(); got != s {
		t.Fatalf("got a different scratch after two collections (made %d)", made)
	}
}

func TestScratchPoolReturnsMostRecentFirst(t *testing.T) {
	p := newScratchPool(func() *requestScratch { return &requestScratch{} })
	a, b := p.get(), p.get()
	p.put(a)
	p.put(b)
	if got := p.get(); got != b {
		t.Fatal("the last scratch returned is not the first handed out")
	}
}

func TestScratchPoolLeavesLargeOrSurplusScratchToGC(t *testing.T) {
	p := newScratchPool(func() *requestScratch { return &requestScratch{} })
	big := &requestScratch{body: make([]byte, 0, maxIdleBytes+1)}
	p.put(big)
	if len(p.idle) != 0 {
		t.Fatalf("a scratch of %d bytes was kept for good", big.footprint())
	}
	for range idleScratches + 3 {
		p.put(&requestScratch{})
	}
	if len(p.idle) != idleScratches {
		t.Fatalf("%d idle scratches kept, want at most %d", len(p.idle), idleScratches)
	}
	huge := &requestScratch{body: make([]byte, 0, maxPooledBytes+1)}
	p.put(huge)
	for range idleScratches {
		p.get()
	}
	if got := p.get(); got == huge {
		t.Fatal("a scratch over the pooling bounds came back")
	}
}

// A peer's forwarded batch decodes into a scratch larger than an agent's request does: a few
// of those are kept for good, as long as the idle scratches stay within their budget in all.
func TestScratchPoolKeepsLargeScratchesWithinItsBudget(t *testing.T) {
	p := newScratchPool(func() *requestScratch { return &requestScratch{} })
	const size = 5 << 20 // about what a 1 MiB forwarded batch decodes into
	var large []*requestScratch
	for range idleScratches {
		large = append(large, &requestScratch{dec: Decoder{buf: make([]byte, 0, size)}})
	}
	for _, s := range large {
		p.put(s)
	}
	want := maxIdleBytes / size
	if len(p.idle) != want || p.idleBytes != want*size {
		t.Fatalf("%d idle scratches of %d bytes in all kept, want %d of %d", len(p.idle), p.idleBytes, want, want*size)
	}
	runtime.GC()
	runtime.GC()
	for i := want - 1; i >= 0; i-- {
		if got := p.get(); got != large[i] {
			t.Fatalf("scratch %d did not come back after two collections", i)
		}
	}
	if p.idleBytes != 0 {
		t.Fatalf("%d idle bytes counted with no scratch idle", p.idleBytes)
	}
	p.put(&requestScratch{}) // a small one still fits once the large are out
	if len(p.idle) != 1 {
		t.Fatal("an empty scratch was not kept")
	}
}
