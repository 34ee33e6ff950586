package hashring

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// TestPeerQueueBatchesOneRulesVersion: a body carries one rules version in its header, so a
// batch never joins chunks routed by two rule sets (a reload between requests).
func TestPeerQueueBatchesOneRulesVersion(t *testing.T) {
	q := &peerQueue{limit: 1 << 20, held: new(atomic.Int64), metrics: newForwardMetrics(nil), wake: make(chan struct{}, 1), ctx: context.Background()}
	for _, rules := range []uint64{7, 7, 9, 7} {
		q.push([]byte{0x0a, 0x00}, 1, rules)
	}
	var got []uint64
	var sizes []int
	for range 3 {
		batch, _, samples, rules := q.take()
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
	q := &peerQueue{limit: 1 << 20, held: new(atomic.Int64), metrics: newForwardMetrics(nil), wake: make(chan struct{}, 1), ctx: context.Background()}
	start := time.Now()
	q.push([]byte{0x0a, 0x00}, 1, 7)
	got := make(chan int, 1)
	go func() {
		_, _, samples, _ := q.take()
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

// TestAPeersRetryAfterIsReadAsSecondsAndCapped: Retry-After is seconds or an HTTP date, as
// for any sink; a unit suffix is not a number of seconds, and an hour is capped so that a
// peer (or a proxy before it) cannot stall the queue until it fills.
func TestAPeersRetryAfterIsReadAsSecondsAndCapped(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{
		{"7", 7 * time.Second},
		{"3600", time.Minute},
		{"5m", 0},
		{"-3", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", tt.header)
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		q := &peerQueue{url: srv.URL, client: srv.Client(), timeout: 10 * time.Second, ctx: context.Background()}
		code, wait, _, err := q.post([]byte{0}, http.Header{})
		srv.Close()
		if err != nil || code != http.StatusServiceUnavailable || wait != tt.want {
			t.Errorf("Retry-After %q: %d, wait %v, %v; want 503 and %v", tt.header, code, wait, err, tt.want)
		}
	}
}

// TestAShutdownCutShortReportsWhatItDropped: a peer that never answers holds a batch in
// flight and more queued behind it; a shutdown whose deadline passes drops them all, counts
// them, and says so, rather than sending the rest to a queue that can no longer deliver.
func TestAShutdownCutShortReportsWhatItDropped(t *testing.T) {
	hang := make(chan struct{})
	srv := holdingServer(hang)
	defer srv.Close()
	defer close(hang)
	m := newForwardMetrics(nil)
	var pool chunkPool
	q := testQueue(srv, 1<<30, m, &pool)
	chunk := make([]byte, maxForwardBatch) // one chunk per batch
	for range 5 {
		q.push(slices.Clone(chunk), 10, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := q.shutdown(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "50 forwarded samples not delivered") {
		t.Errorf("shutdown: %v, want 50 forwarded samples not delivered", err)
	}
	if got := testutil.ToFloat64(m.forwardDropped.WithLabelValues("peer")); got != 50 {
		t.Errorf("%v samples counted dropped, want 50", got)
	}
	if got := testutil.ToFloat64(m.queueBytes.WithLabelValues("peer")); got != 0 {
		t.Errorf("the queue holds %v bytes after its shutdown, want 0", got)
	}
}

// TestTwoQueuesToOnePeerAddUpTheirBytes: while a replaced ring's queue to a peer drains,
// the new ring's queue to it fills; the peer's queue bytes are what both hold, and 0 once
// both have sent.
func TestTwoQueuesToOnePeerAddUpTheirBytes(t *testing.T) {
	release := make(chan struct{})
	srv := holdingServer(release)
	defer srv.Close()
	m := newForwardMetrics(nil)
	var pool chunkPool
	var qs []*peerQueue
	for range 2 {
		qs = append(qs, testQueue(srv, 1<<30, m, &pool))
	}
	qs[0].push(make([]byte, 1000), 1, 1)
	qs[1].push(make([]byte, 300), 1, 1)
	if got := testutil.ToFloat64(m.queueBytes.WithLabelValues("peer")); got != 1300 {
		t.Errorf("queue bytes %v, want 1300", got)
	}
	close(release)
	for _, q := range qs {
		if err := q.shutdown(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(m.queueBytes.WithLabelValues("peer")); got != 0 {
		t.Errorf("queue bytes %v after both sent, want 0", got)
	}
}

// TestTheQueuesToOnePeerShareItsLimit: while a replaced ring's queue to a member drains, the
// new ring's queue to it is full once both together hold the limit, so that ring changes in
// quick succession hold at most one limit per member, not one per ring; once sent, both
// are free again. The forwarder gives every ring's queue to a member the same count.
func TestTheQueuesToOnePeerShareItsLimit(t *testing.T) {
	release := make(chan struct{})
	srv := holdingServer(release)
	defer srv.Close()
	m := newForwardMetrics(nil)
	var pool chunkPool
	held := new(atomic.Int64)
	old, cur := sharingQueue(srv, 1000, held, m, &pool), sharingQueue(srv, 1000, held, m, &pool)
	old.push(make([]byte, 700), 1, 1)
	cur.push(make([]byte, 200), 1, 1)
	if cur.full() {
		t.Fatal("full at 900 of 1000 bytes")
	}
	old.push(make([]byte, 100), 1, 1)
	if !cur.full() {
		t.Error("the new ring's queue is not full while both queues hold 1000 of 1000 bytes")
	}
	close(release)
	for _, q := range []*peerQueue{old, cur} {
		if err := q.shutdown(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if cur.full() || held.Load() != 0 {
		t.Errorf("after both sent: full %v, %d bytes held; want free and 0", cur.full(), held.Load())
	}

	f, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Shutdown(context.Background()) }()
	f.SetMembers([]Member{{Name: "node-b", Addr: "127.0.0.1:1"}})
	first := f.cur.Load()
	f.SetMembers([]Member{{Name: "node-b", Addr: "127.0.0.1:1"}, {Name: "node-c", Addr: "127.0.0.1:1"}})
	second := f.cur.Load()
	b1, b2 := first.queues[first.view.ring.Index("node-b")], second.queues[second.view.ring.Index("node-b")]
	if b1 == b2 || b1.held != b2.held {
		t.Error("two rings' queues to node-b do not share one count of their bytes")
	}
}

// TestACheckpointReadsTheQueueWhileItSends: pending (the checkpoint's copy of the queue)
// runs while the queue sends and gives sent chunks back to the pool, from which new
// requests' series are written: every series it returns must be one that was queued, whole
// (and the race detector must see no access to a chunk being reused).
func TestACheckpointReadsTheQueueWhileItSends(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var pool chunkPool
	q := testQueue(srv, 1<<20, newForwardMetrics(nil), &pool)
	defer func() { _ = q.shutdown(context.Background(), nil) }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range 300 { // requests of 100 series
			chunk := pool.get()
			for i := r * 100; i < (r+1)*100; i++ {
				ts := prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "i", Value: strconv.Itoa(i)}},
					Samples: []prompb.Sample{{Value: float64(i), Timestamp: int64(i)}},
				}
				chunk = remotewrite.AppendRawSeries(chunk, nil, &ts)
			}
			for q.full() {
				time.Sleep(time.Millisecond)
			}
			q.push(chunk, 100, 1)
		}
	}()
	for checked := false; ; {
		select {
		case <-done:
			if !checked {
				t.Log("the queue was empty at every checkpoint")
			}
			return
		default:
		}
		bodies, err := q.pending()
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range decodeBodies(t, bodies) {
			checked = true
			i, err := strconv.Atoi(ts.Labels[len(ts.Labels)-1].Value)
			if len(ts.Labels) != 2 || ts.Labels[0].Value != "m" || err != nil || len(ts.Samples) != 1 || ts.Samples[0].Value != float64(i) {
				t.Fatalf("a checkpoint read a series never queued: %v", ts)
			}
		}
	}
}

// testQueue returns a running queue named peer to srv, holding up to limit bytes, with
// millisecond backoff and a minute's timeout per request.
func testQueue(srv *httptest.Server, limit int64, m *forwardMetrics, pool *chunkPool) *peerQueue {
	return sharingQueue(srv, limit, new(atomic.Int64), m, pool)
}

// sharingQueue is testQueue counting its bytes in held, with the other queues to the peer.
func sharingQueue(srv *httptest.Server, limit int64, held *atomic.Int64, m *forwardMetrics, pool *chunkPool) *peerQueue {
	return newPeerQueue("peer", srv.URL, http.Header{}, srv.Client(), time.Minute, limit, held,
		downstream.Backoff{Min: time.Millisecond, Max: time.Millisecond}, m, pool, slog.New(slog.DiscardHandler))
}

// holdingServer answers each request once release is closed or the request is cancelled.
func holdingServer(release <-chan struct{}) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// TestACheckpointHoldsASendTheShutdownCutShort: between a shutdown cutting a send short and
// the series being routed again, a checkpoint (pending) still holds them.
func TestACheckpointHoldsASendTheShutdownCutShort(t *testing.T) {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1}}}
	q := &peerQueue{cut: remotewrite.AppendRawSeries(nil, nil, &ts), cutN: 1}
	bodies, err := q.pending()
	if got := decodeBodies(t, bodies); err != nil || len(got) != 1 || got[0].Labels[0].Value != "m" {
		t.Errorf("pending holds %v (err %v), want the series cut short", got, err)
	}
}

// TestAQueueThatDoesNotDecodeFailsTheCheckpoint: bytes in a peer queue that do not decode
// are an error for the checkpoint, which then is not taken (and the log that holds those
// series is not truncated), rather than a checkpoint silently without that queue.
func TestAQueueThatDoesNotDecodeFailsTheCheckpoint(t *testing.T) {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1}}}
	good := remotewrite.AppendRawSeries(nil, nil, &ts)
	q := &peerQueue{name: "node-b", entries: []queued{{chunk: good}, {chunk: []byte{0x0a, 0xff}}}} // a series field longer than what follows
	got, err := q.pending()
	if err == nil || !strings.Contains(err.Error(), `"node-b"`) {
		t.Errorf("pending of a queue that does not decode: %v, err %v; want an error naming the peer", got, err)
	}
}

// lateReadingTransport answers every request at once and reads its body a moment later, as
// net/http does when a peer answers before reading the whole body (or a request times out
// while its body is being written); it records each body, decompressed.
type lateReadingTransport struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (l *lateReadingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	go func() {
		time.Sleep(30 * time.Millisecond)
		b, _ := io.ReadAll(req.Body)
		req.Body.Close()
		raw, err := snappy.Decode(nil, b)
		if err != nil {
			raw = []byte("corrupt: " + err.Error())
		}
		l.mu.Lock()
		l.bodies = append(l.bodies, raw)
		l.mu.Unlock()
	}()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// TestTheNextForwardDoesNotOverwriteABodyStillBeingSent: the queue reuses its body buffer
// from batch to batch. When the transport still reads a request's body after the answer,
// the next batch must not be compressed into that buffer: the owner would get a corrupt
// body, or the next batch in place of this one (series lost, others counted twice).
func TestTheNextForwardDoesNotOverwriteABodyStillBeingSent(t *testing.T) {
	tr := &lateReadingTransport{}
	var pool chunkPool
	q := newPeerQueue("peer", "http://peer.invalid/api/v1/write", http.Header{}, &http.Client{Transport: tr}, time.Minute, 1<<30,
		new(atomic.Int64), downstream.Backoff{Min: time.Millisecond, Max: time.Millisecond}, newForwardMetrics(nil), &pool, slog.New(slog.DiscardHandler))
	var want [][]byte
	for i := range 4 {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, maxForwardBatch) // one chunk per batch
		want = append(want, chunk)
		q.push(slices.Clone(chunk), 1, 1)
	}
	if err := q.shutdown(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.mu.Lock()
		n := len(tr.bodies)
		tr.mu.Unlock()
		if n == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	got := slices.Clone(tr.bodies)
	slices.SortFunc(got, bytes.Compare)
	if len(got) != len(want) {
		t.Fatalf("the peer read %d bodies, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("body %d: the peer read %.20q..., want %.20q...", i, got[i], want[i])
		}
	}
}

// TestABackedUpQueueIsPackedAndSentInOrder: a queue whose member does not answer (down, and
// not yet out of the ring) packs its backlog ahead of sending, so that the same
// forward.queue.max_bytes holds a longer outage; what it sends once the member answers,
// and what a checkpoint reads meanwhile, are the series as they were queued, in order.
func TestABackedUpQueueIsPackedAndSentInOrder(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		compressed, _ := io.ReadAll(r.Body)
		var req prompb.WriteRequest
		raw, err := snappy.Decode(nil, compressed)
		if err == nil {
			err = req.Unmarshal(raw)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, seriesLines(req.Timeseries)...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	answer := sync.OnceFunc(func() { close(release) })
	defer answer() // before srv.Close, which waits for the requests held
	q := testQueue(srv, 1<<30, newForwardMetrics(nil), &chunkPool{})

	var want []string
	pushed := 0
	for i := range 8000 { // about 20 MiB of series, 25 a request
		var chunk []byte
		var series []prompb.TimeSeries
		for j := range 25 {
			ts := prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total_" + strconv.Itoa(i%100)},
					{Name: "instance", Value: "10.1." + strconv.Itoa(j) + ".7:9100"}, {Name: "job", Value: "api"},
					{Name: "pod", Value: "api-7d9f8c6b5-" + strconv.Itoa(i*25+j)}},
				Samples: []prompb.Sample{{Timestamp: int64(i) * 1000, Value: float64(i + j)}},
			}
			chunk = remotewrite.AppendRawSeries(chunk, nil, &ts)
			series = append(series, ts)
		}
		want = append(want, seriesLines(series)...)
		pushed += len(chunk)
		q.push(chunk, 25, 7)
	}
	for q.pack() {
	}
	held := q.held.Load()
	t.Logf("%d series queued in %d bytes; held after packing: %d bytes", len(want), pushed, held)
	if held*2 > int64(pushed) {
		t.Errorf("the backlog holds %d bytes of the %d pushed; packed (but its last packAbove bytes), it should hold under half", held, pushed)
	}
	// What is counted is what the heap holds: a packed body keeps no room beyond itself
	// (snappy's MaxEncodedLen, more than the input, would be kept otherwise).
	q.mu.Lock()
	for i, e := range q.entries {
		if e.packed != nil && cap(e.packed) > len(e.packed)+8<<10 {
			t.Errorf("packed entry %d holds %d bytes in a buffer of %d", i, len(e.packed), cap(e.packed))
		}
	}
	q.mu.Unlock()
	// A checkpoint costs about what the queue holds: packed bodies are shared, the rest
	// copied and compressed; nothing is decoded.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pending, err := q.pending()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a checkpoint of it allocated %d bytes", alloc)
	if alloc > 3*uint64(held) {
		t.Errorf("a checkpoint of a queue holding %d bytes allocated %d", held, alloc)
	}
	if p := seriesLines(decodeBodies(t, pending)); !slices.Equal(p, want) {
		t.Fatalf("a checkpoint of the packed queue reads %d series, want the %d queued, in order", len(p), len(want))
	}

	answer()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := q.shutdown(ctx, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("the member got %d series, want the %d queued, in order", len(got), len(want))
	}
	if held := q.held.Load(); held != 0 {
		t.Errorf("%d bytes held after everything was sent", held)
	}
}

// TestAShutdownReroutesAPackedBacklog: what a shutdown cuts short, packed or not, goes to
// reroute as the series queued, in order, a batch at a time.
func TestAShutdownReroutesAPackedBacklog(t *testing.T) {
	release := make(chan struct{})
	srv := holdingServer(release) // answers nothing until the test ends
	defer srv.Close()
	defer close(release)
	q := testQueue(srv, 1<<30, newForwardMetrics(nil), &chunkPool{})
	var want []byte
	for i := range 12000 { // about 12 MiB
		var chunk []byte
		for j := range 25 {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "pod", Value: strconv.Itoa(i*25 + j)}}, Samples: []prompb.Sample{{Value: float64(i)}}}
			chunk = remotewrite.AppendRawSeries(chunk, nil, &ts)
		}
		want = append(want, chunk...)
		q.push(chunk, 25, 7)
	}
	for q.pack() {
	}
	if held := q.held.Load(); held*2 > int64(len(want)) {
		t.Fatalf("the backlog holds %d bytes of the %d pushed: not packed, the test shows nothing", held, len(want))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	var left []byte
	largest := 0
	if err := q.shutdown(ctx, func(raw []byte) error {
		left, largest = append(left, raw...), max(largest, len(raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(left, want) {
		t.Errorf("rerouted %d bytes, want the %d queued, in order", len(left), len(want))
	}
	// A part at a time: the whole backlog decoded at once would take many times the
	// memory the queue held.
	if largest > maxForwardBatch {
		t.Errorf("reroute got %d bytes in one call, want at most maxForwardBatch (%d)", largest, maxForwardBatch)
	}
}

// seriesLines renders series as one line each: labels and samples.
func seriesLines(series []prompb.TimeSeries) []string {
	out := make([]string, len(series))
	for i, ts := range series {
		var b strings.Builder
		for _, l := range ts.Labels {
			b.WriteString(l.Name + "=" + l.Value + ",")
		}
		for _, s := range ts.Samples {
			b.WriteString(strconv.FormatInt(s.Timestamp, 10) + "=" + strconv.FormatFloat(s.Value, 'g', -1, 64) + ";")
		}
		out[i] = b.String()
	}
	return out
}

// decodeBodies decodes the snappy bodies pending returns, in order.
func decodeBodies(t *testing.T, bodies [][]byte) []prompb.TimeSeries {
	t.Helper()
	var out []prompb.TimeSeries
	for i, b := range bodies {
		raw, err := snappy.Decode(nil, b)
		if err != nil {
			t.Fatalf("body %d of %d: %v", i, len(bodies), err)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("body %d of %d: %v", i, len(bodies), err)
		}
		out = append(out, req.Timeseries...)
	}
	return out
}
