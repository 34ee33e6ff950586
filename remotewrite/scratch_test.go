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
	big := &requestScratch{body: make([]byte, 0, maxIdleFootprint+1)}
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
