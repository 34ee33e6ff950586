package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// faultMode is how a faultyDownstream answers.
type faultMode int32

const (
	faultNone  faultMode = iota // 204, samples stored
	faultHang                   // never answers; returns when the request is cancelled
	faultSlow                   // 204 after faultSlowDelay
	fault400                    // 400: cardinal must drop the batch, not retry it
	fault500                    // 500: cardinal must retry
	faultReset                  // the connection is reset without an answer
)

// faultSlowDelay is how long a slow downstream takes to answer.
const faultSlowDelay = 300 * time.Millisecond

// faultyDownstream is a remote-write receiver in the test process that misbehaves on demand
// and records the samples it accepted (series labels + timestamp, so a resent sample counts
// once) and how many requests it got.
type faultyDownstream struct {
	URL      string
	mode     atomic.Int32
	requests atomic.Int64
	stop     chan struct{}

	mu      sync.Mutex
	samples map[uint64]bool // hashes of series labels + timestamp
}

func startFaultyDownstream(t testing.TB, mode faultMode) *faultyDownstream {
	t.Helper()
	d := &faultyDownstream{stop: make(chan struct{}), samples: map[uint64]bool{}}
	d.mode.Store(int32(mode))
	srv := httptest.NewServer(http.HandlerFunc(d.serve))
	d.URL = srv.URL + "/api/v1/write"
	t.Cleanup(func() {
		close(d.stop) // hung handlers return, so Close does not wait for them
		srv.CloseClientConnections()
		srv.Close()
	})
	return d
}

func (d *faultyDownstream) serve(w http.ResponseWriter, r *http.Request) {
	d.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	switch faultMode(d.mode.Load()) {
	case faultHang:
		select {
		case <-r.Context().Done():
		case <-d.stop:
		}
		return
	case faultSlow:
		select {
		case <-time.After(faultSlowDelay):
		case <-d.stop:
			return
		}
	case fault400:
		http.Error(w, "bad request from the faulty downstream", http.StatusBadRequest)
		return
	case fault500:
		http.Error(w, "internal error of the faulty downstream", http.StatusInternalServerError)
		return
	case faultReset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, not FIN
			}
			conn.Close()
		}
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	for _, ts := range req.Timeseries {
		for _, s := range ts.Samples {
			d.samples[xxhash.Sum64String(fmt.Sprintf("%s@%d", labelKey(ts.Labels), s.Timestamp))] = true
		}
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (d *faultyDownstream) setMode(m faultMode) { d.mode.Store(int32(m)) }

func (d *faultyDownstream) stored() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.samples)
}

// dfPush is one agent request: 20 unmatched series (forwarded raw, so each acknowledged
// sample must reach the downstream exactly as sent), one sample each at ms.
func dfPush(i int, ms int64) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	for s := range 20 {
		out = append(out, prompb.TimeSeries{
			Labels:  labelSet("df_queue_depth", "request", fmt.Sprint(i), "series", fmt.Sprint(s)),
			Samples: []prompb.Sample{{Value: float64(i*100 + s), Timestamp: ms}},
		})
	}
	return out
}

const dfMaxQueueBytes = 16 << 10

// startDFCardinal runs cardinal forwarding everything raw to url through a small queue.
func startDFCardinal(t testing.TB, url string) *cardinalServer {
	t.Helper()
	return startCardinal(t, fmt.Sprintf(`
aggregator:
  unmatched: forward
downstream:
  remote_write:
    - url: %s
      name: faulty
      timeout: 1s
      queue:
        max_bytes: %d
        max_samples_per_send: 50
        shards: 2
        min_backoff: 20ms
        max_backoff: 200ms
rules:
  - metric_name: df_unused_total
    type: counter
    drop_labels: [pod]
`, url, dfMaxQueueBytes))
}

// dfCounters are cardinal's account of one downstream.
type dfCounters struct {
	sent, failed, retried, dropped, queueBytes, queueFull, goroutines float64
}

func readDFCounters(t testing.TB, card *cardinalServer) dfCounters {
	ms := scrapeCardinal(t, card.URL)
	v := func(name string, pairs ...string) float64 { x, _ := metricValue(ms, name, pairs...); return x }
	return dfCounters{
		sent:       v("cardinal_downstream_samples_sent_total", "downstream", "faulty"),
		failed:     v("cardinal_downstream_samples_failed_total", "downstream", "faulty"),
		retried:    v("cardinal_downstream_samples_retried_total", "downstream", "faulty"),
		dropped:    v("cardinal_downstream_samples_dropped_total", "downstream", "faulty"),
		queueBytes: v("cardinal_downstream_queue_bytes", "downstream", "faulty"),
		queueFull:  v("cardinal_downstream_queue_full", "downstream", "faulty"),
		goroutines: v("go_goroutines"),
	}
}

// TestDownstreamFaults runs the real binary against downstreams that fail in each way a
// network and a receiver can, as real HTTP servers in the test. It pins the behaviour per
// fault: 400 drops the batch (counted, not retried) and never backs up the queue; 500,
// resets and hangs are retried, fill the queue and only then make the receiver answer 503;
// a slow downstream delivers everything. While the downstream hangs, a burst of concurrent
// agents grows neither the goroutines nor the queue beyond its bound; once it heals, every
// acknowledged sample arrives exactly once.
func TestDownstreamFaults(t *testing.T) {
	t.Run("400_drops_batches_without_retrying_or_503", func(t *testing.T) {
		d := startFaultyDownstream(t, fault400)
		card := startDFCardinal(t, d.URL)
		ms := time.Now().UnixMilli()
		for i := range 30 {
			if code, body, err := postRW(card.WriteURL, dfPush(i, ms)); err != nil || code != http.StatusNoContent {
				t.Fatalf("push %d: %d %q %v, want 204: a downstream refusing data for good must not back up the receiver", i, code, body, err)
			}
			// An agent's pace: the refused batch leaves the queue before the next request.
			eventually(t, 30*time.Second, "the refused batch leaving the queue", func() (bool, error) {
				c := readDFCounters(t, card)
				return c.queueBytes == 0, fmt.Errorf("%+v", c)
			})
		}
		var c dfCounters
		eventually(t, 30*time.Second, "every sample refused by the downstream and counted", func() (bool, error) {
			c = readDFCounters(t, card)
			return c.failed == 600, fmt.Errorf("%+v", c)
		})
		if c.retried != 0 || c.sent != 0 || c.dropped != 0 {
			t.Errorf("after 400s: %+v, want no retries, no sends, no drops", c)
		}
		// Each push was split over at most the 2 shards and each batch sent once: a retry
		// would make more requests than that.
		if n := d.requests.Load(); n < 30 || n > 60 {
			t.Errorf("downstream got %d requests for 30 pushes over 2 shards, each batch sent once: want 30..60", n)
		}
	})

	t.Run("slow_downstream_delivers_everything", func(t *testing.T) {
		d := startFaultyDownstream(t, faultSlow)
		card := startDFCardinal(t, d.URL)
		ms := time.Now().UnixMilli()
		accepted := pushUntilAccepted(t, card, 10, ms)
		eventually(t, 60*time.Second, "every acknowledged sample at the slow downstream", func() (bool, error) {
			return d.stored() == accepted, fmt.Errorf("stored %d of %d", d.stored(), accepted)
		})
		if c := readDFCounters(t, card); c.retried != 0 || c.failed != 0 || c.dropped != 0 {
			t.Errorf("a slow downstream within the timeout: %+v, want no retries, failures or drops", c)
		}
	})

	for _, tc := range []struct {
		name string
		mode faultMode
	}{
		{"500_is_retried_and_fills_the_queue_then_503", fault500},
		{"connection_reset_is_retried_and_fills_the_queue_then_503", faultReset},
		{"hanging_downstream_is_timed_out_retried_and_fills_the_queue_then_503", faultHang},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startFaultyDownstream(t, tc.mode)
			card := startDFCardinal(t, d.URL)
			base := readDFCounters(t, card)
			ms := time.Now().UnixMilli()

			// Push until refused: every answer is 204 until the queue is full, then 503.
			accepted, refusedAt := 0, -1
			for i := 0; i < 200 && refusedAt < 0; i++ {
				code, body, err := postRW(card.WriteURL, dfPush(i, ms))
				if err != nil {
					t.Fatalf("push %d: %v", i, err)
				}
				switch code {
				case http.StatusNoContent:
					accepted += 20
				case http.StatusServiceUnavailable:
					refusedAt = i
					if c := readDFCounters(t, card); c.queueFull != 1 {
						t.Errorf("503 (%s) while cardinal_downstream_queue_full = %v: 503 only when a queue is full", body, c.queueFull)
					}
				default:
					t.Fatalf("push %d: %d %q, want 204 or 503", i, code, body)
				}
			}
			if refusedAt < 0 {
				t.Fatalf("200 pushes of 20 series accepted into a %d byte queue with a failing downstream", dfMaxQueueBytes)
			}

			// A burst of concurrent agents, all refused: no growth in goroutines or queue.
			var wg sync.WaitGroup
			var other atomic.Int64
			for w := range 8 {
				wg.Go(func() {
					for i := range 25 {
						code, _, err := postRW(card.WriteURL, dfPush(1000+w*25+i, ms))
						if err != nil || code != http.StatusServiceUnavailable {
							other.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if n := other.Load(); n != 0 {
				t.Errorf("%d of 200 pushes to a full queue were not answered 503", n)
			}
			c := readDFCounters(t, card)
			if c.goroutines > base.goroutines+30 {
				t.Errorf("goroutines grew from %v to %v while the downstream failed", base.goroutines, c.goroutines)
			}
			if limit := float64(dfMaxQueueBytes + 16<<10); c.queueBytes > limit {
				t.Errorf("queue holds %v bytes, want at most its %d byte limit plus one request", c.queueBytes, dfMaxQueueBytes)
			}
			eventually(t, 30*time.Second, "cardinal retrying the failed sends", func() (bool, error) {
				c := readDFCounters(t, card)
				return c.retried > 0, fmt.Errorf("%+v", c)
			})
			if c := readDFCounters(t, card); c.failed != 0 || c.dropped != 0 {
				t.Errorf("while the downstream fails: %+v, want no failures or drops, only retries", c)
			}

			// The downstream heals: the agents' retries are accepted and every acknowledged
			// sample arrives, once.
			d.setMode(faultNone)
			accepted += pushUntilAccepted(t, card, 5, ms+1)
			eventually(t, 60*time.Second, "every acknowledged sample downstream after it healed", func() (bool, error) {
				return d.stored() == accepted, fmt.Errorf("stored %d of %d", d.stored(), accepted)
			})
			eventually(t, 30*time.Second, "the queue drained", func() (bool, error) {
				c := readDFCounters(t, card)
				return c.queueBytes == 0 && c.queueFull == 0, fmt.Errorf("%+v", c)
			})
			if c := readDFCounters(t, card); c.sent != float64(accepted) {
				t.Errorf("samples sent %v, want the %d acknowledged", c.sent, accepted)
			}
		})
	}
}

// pushUntilAccepted sends n requests, each retried on 503 with a bounded backoff as an agent
// does, and returns the samples acknowledged.
func pushUntilAccepted(t testing.TB, card *cardinalServer, n int, ms int64) int {
	t.Helper()
	accepted := 0
	for i := range n {
		deadline := time.Now().Add(30 * time.Second)
		wait := 20 * time.Millisecond
		for {
			code, body, err := postRW(card.WriteURL, dfPush(5000+i, ms))
			if err != nil {
				t.Fatalf("push %d: %v", i, err)
			}
			if code == http.StatusNoContent {
				accepted += 20
				break
			}
			if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("push %d: %d %q, want 204 (or 503 for less than 30s)", i, code, body)
			}
			time.Sleep(wait) // the agent's backoff
			wait = min(2*wait, 500*time.Millisecond)
		}
	}
	return accepted
}

// TestDownstreamFaults_memory_limit_turns_into_503_before_the_process_grows_unbounded gives
// cardinal a hung downstream and a queue limit far above its memory budget: the queue would
// grow until the process is OOM-killed. server.memory_limit must turn that into 503s (the
// memory guard's, not the queue's), keep the process's memory near the budget and, once the
// downstream heals and the queue drains, accept data again and deliver every acknowledged
// sample.
func TestDownstreamFaults_memory_limit_turns_into_503_before_the_process_grows_unbounded(t *testing.T) {
	const memoryLimit = 64 << 20
	d := startFaultyDownstream(t, faultHang)
	card := startCardinal(t, fmt.Sprintf(`
server:
  memory_limit: %d
aggregator:
  unmatched: forward
downstream:
  remote_write:
    - url: %s
      name: faulty
      timeout: 2s
      queue:
        max_bytes: 4GiB
        shards: 2
        min_backoff: 20ms
        max_backoff: 200ms
rules:
  - metric_name: df_unused_total
    type: counter
    drop_labels: [pod]
`, memoryLimit, d.URL))
	padding := strings.Repeat("x", 1000)
	push := func(i int) []prompb.TimeSeries {
		var out []prompb.TimeSeries
		for s := range 500 {
			out = append(out, prompb.TimeSeries{
				Labels:  labelSet("df_wide", "request", fmt.Sprint(i), "series", fmt.Sprint(s), "padding", padding),
				Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
			})
		}
		return out
	}
	accepted, refused := 0, false
	for i := 0; i < 600 && !refused; i++ {
		code, body, err := postRW(card.WriteURL, push(i))
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		switch {
		case code == http.StatusNoContent:
			accepted += 500
		case code == http.StatusServiceUnavailable && strings.Contains(body, "memory limit"):
			refused = true
			t.Logf("refused for memory after %d accepted samples: %s", accepted, body)
		default:
			t.Fatalf("push %d: %d %q, want 204 or a 503 for the memory limit", i, code, body)
		}
	}
	if !refused {
		t.Fatalf("600 pushes of 500 wide series into a hung downstream were all accepted under a %d byte memory limit", memoryLimit)
	}
	ms := scrapeCardinal(t, card.URL)
	if v, _ := metricValue(ms, "cardinal_receiver_rejected_requests_total", "reason", "memory_limit"); v < 1 {
		t.Errorf("rejected_requests_total{reason=memory_limit} = %v, want ≥ 1", v)
	}
	if v, _ := metricValue(ms, "cardinal_downstream_queue_full", "downstream", "faulty"); v != 0 {
		t.Errorf("queue_full = %v: the 503 should come from the memory limit, long before the 4GiB queue", v)
	}
	if v, _ := metricValue(ms, "cardinal_memory_limit_bytes"); v != memoryLimit {
		t.Errorf("cardinal_memory_limit_bytes = %v, want %d", v, memoryLimit)
	}
	if rss, _ := metricValue(ms, "process_resident_memory_bytes"); rss > 4*memoryLimit {
		t.Errorf("resident memory %v bytes with a %d byte memory limit", rss, memoryLimit)
	}
	if code, _, _ := httpGet(t, card.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready while over the memory limit: %d, want 200 (refusing data is not being unready)", code)
	}

	// The downstream heals: the queue drains, memory is freed and data is accepted again.
	d.setMode(faultNone)
	deadline := time.Now().Add(60 * time.Second)
	for i := 1000; ; i++ {
		code, body, err := postRW(card.WriteURL, push(i))
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusNoContent {
			accepted += 500
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the downstream healed: %d %q, want 204 within 60s", code, body)
		}
		time.Sleep(200 * time.Millisecond) // the agent's backoff
	}
	eventually(t, 60*time.Second, "every acknowledged sample downstream", func() (bool, error) {
		return d.stored() == accepted, fmt.Errorf("stored %d of %d", d.stored(), accepted)
	})
}
