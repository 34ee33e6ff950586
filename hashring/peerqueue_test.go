package hashring

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestPeerQueueBatchesOneRulesVersion: a body carries one rules version in its header, so a
// batch never joins chunks routed by two rule sets (a reload between requests).
func TestPeerQueueBatchesOneRulesVersion(t *testing.T) {
	q := &peerQueue{limit: 1 << 20, metrics: newForwardMetrics(nil), wake: make(chan struct{}, 1), ctx: context.Background()}
	for _, rules := range []uint64{7, 7, 9, 7} {
		q.push([]byte{0x0a, 0x00}, 1, rules)
	}
	var got []uint64
	var sizes []int
	for range 3 {
		batch, samples, rules := q.take()
		got, sizes = append(got, rules), append(sizes, samples)
		if len(batch) != samples {
			t.Fatalf("batch of %d chunks for %d samples", len(batch), samples)
		}
	}
	if want := []uint64{7, 9, 7}; !slices.Equal(got, want) || sizes[0] != 2 || sizes[1] != 1 || sizes[2] != 1 {
		t.Errorf("batches of versions %v and sizes %v, want [7 9 7] and [2 1 1]", got, sizes)
	}
}

// TestASmallBatchWaitsForMore: a queue holding less than lingerBytes waits for more, up to
// forwardLinger after its oldest chunk came, so that a busy sender forwards fewer, larger
// requests. (Not a timing assertion: the second chunk must join only when it came within the
// linger, which the test checks before it expects it.)
func TestASmallBatchWaitsForMore(t *testing.T) {
	q := &peerQueue{limit: 1 << 20, metrics: newForwardMetrics(nil), wake: make(chan struct{}, 1), ctx: context.Background()}
	start := time.Now()
	q.push([]byte{0x0a, 0x00}, 1, 7)
	got := make(chan int, 1)
	go func() {
		_, samples, _ := q.take()
		got <- samples
	}()
	time.Sleep(2 * time.Millisecond)
	q.push([]byte{0x0a, 0x00}, 1, 7)
	within := time.Since(start) < forwardLinger
	if n := <-got; within && n != 2 {
		t.Errorf("a batch took %d chunks; the second came within the linger and must join", n)
	}
	// A closing queue does not wait.
	q.push([]byte{0x0a, 0x00}, 1, 7)
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.take(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a closing queue kept its last chunk")
	}
}

// TestForwardInfoCarriesTheRulesVersion: the owner reads the version the sender set; a
// sender that sets none (an older version) or sets garbage gives 0, which places again.
func TestForwardInfoCarriesTheRulesVersion(t *testing.T) {
	base := forwardHeader("a", New([]Member{{Name: "a"}, {Name: "b"}}))
	for value, want := range map[string]uint64{"": 0, "1f": 0x1f, "not-hex": 0, "ffffffffffffffff": ^uint64(0)} {
		h := base.Clone()
		if value != "" {
			h.Set(HeaderRules, value)
		}
		fi, ok, err := ParseForwardInfo(h)
		if !ok || err != nil || fi.Rules != want {
			t.Errorf("%s %q: rules %x (ok %v, err %v), want %x", HeaderRules, value, fi.Rules, ok, err, want)
		}
	}
	if _, ok, _ := ParseForwardInfo(http.Header{}); ok {
		t.Error("a request without forwarding headers parsed as forwarded")
	}
}
