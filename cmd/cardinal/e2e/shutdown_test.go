package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// slowProxy is a reverse proxy in front of a real downstream that holds every request for a
// delay before passing it on, so that cardinal's queue takes a while to drain. It records
// when each request was answered and how.
type slowProxy struct {
	URL   string
	delay time.Duration

	mu       sync.Mutex
	answered []proxiedRequest
}

type proxiedRequest struct {
	received, answered time.Time
	status             int
}

func startSlowProxy(t testing.TB, target string, delay time.Duration) *slowProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{delay: delay}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		// Reading the body first lets the server notice (and cancel r's context) when the
		// client goes away while the request is held.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		p.mu.Lock()
		p.answered = append(p.answered, proxiedRequest{received: received, answered: time.Now(), status: rec.status})
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// since returns the requests received at or after t.
func (p *slowProxy) since(t time.Time) []proxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []proxiedRequest
	for _, r := range p.answered {
		if !r.received.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// readinessProbe polls a /-/ready URL until stopped, recording each answer.
type readinessProbe struct {
	mu   sync.Mutex
	obs  []readyObservation
	stop chan struct{}
	done chan struct{}
}

type readyObservation struct {
	at     time.Time // when the probe was sent
	status int       // 0 when no answer came (connection refused)
	err    error
}

func startReadinessProbe(readyURL string, every time.Duration) *readinessProbe {
	p := &readinessProbe{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			o := readyObservation{at: time.Now()}
			resp, err := client.Get(readyURL)
			if err != nil {
				o.err = err
			} else {
				o.status = resp.StatusCode
				resp.Body.Close()
			}
			p.mu.Lock()
			p.obs = append(p.obs, o)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// Stop ends the polling and returns what was seen.
func (p *readinessProbe) Stop() []readyObservation {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.obs
}

// TestShutdown_sigterm_flushes_open_windows_and_drains_a_slow_downstream pushes live data
// (timestamps up to now, so the newest windows are still open) through cardinal into a real
// Prometheus that answers slowly (a proxy holds every request for a second), then sends
// SIGTERM. cardinal must stop being ready at once, flush the open windows (the newest closed
// early, stamped with its newest sample), wait for the slow downstream to take them, and exit 0
// within --shutdown.timeout; afterwards the downstream holds exactly the totals pushed.
func TestShutdown_sigterm_flushes_open_windows_and_drains_a_slow_downstream(t *testing.T) {
	const (
		interval        = 15 * time.Second
		proxyDelay      = time.Second
		shutdownTimeout = 10 * time.Second
	)
	prom := startPrometheus(t, prometheusOptions{})
	proxy := startSlowProxy(t, prom.URL, proxyDelay)
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: 10s
downstream:
  remote_write:
    - url: %s/api/v1/write
      name: slow
      queue:
        shards: 2
        max_samples_per_send: 3
        min_backoff: 50ms
        max_backoff: 500ms
rules:
  - metric_name: sd_requests_total
    type: counter
    drop_labels: [pod]
  - metric_name: sd_inflight
    type: gauge
    drop_labels: [pod]
`, interval, proxy.URL), "--shutdown.timeout="+shutdownTimeout.String())

	// Eleven scrapes, 5 s apart, the last one now: the first lands in the rule's first
	// (partial, never emitted) window, the last in a window that ends at or after now and
	// stays open until 10 s (flush_delay) after its end.
	now := time.Now()
	jobs := []string{"api", "web"}
	wantTotal := map[string]float64{}
	wantGauge := map[string]float64{}
	counters := map[string]float64{}
	for i := range 11 {
		ms := now.Add(time.Duration(i-10) * 5 * time.Second).UnixMilli()
		var req []prompb.TimeSeries
		for ji, job := range jobs {
			wantGauge[job] = 0
			for p := range 3 {
				pod := fmt.Sprintf("%s-%d", job, p)
				d := float64(1 + p + ji + i%2)
				if i > 0 {
					counters[pod] += d
					wantTotal[job] += d
				} else {
					counters[pod] = float64(50 * p) // the baseline
				}
				g := float64(10*(p+1) + i)
				wantGauge[job] += g
				req = append(req,
					prompb.TimeSeries{Labels: labelSet("sd_requests_total", "job", job, "pod", pod), Samples: []prompb.Sample{{Timestamp: ms, Value: counters[pod]}}},
					prompb.TimeSeries{Labels: labelSet("sd_inflight", "job", job, "pod", pod), Samples: []prompb.Sample{{Timestamp: ms, Value: g}}},
				)
			}
		}
		if code := pushRW(t, card.WriteURL, req); code/100 != 2 {
			t.Fatalf("push %d: status %d, want 2xx", i, code)
		}
	}
	openWindowEnd := ceilTime(now, interval)
	if time.Since(now) > 5*time.Second {
		t.Fatalf("pushing took %s: the newest window may have closed before SIGTERM", time.Since(now))
	}

	probe := startReadinessProbe(card.URL+"/-/ready", 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // a few probes while running
	sigterm := time.Now()
	if err := card.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := card.Wait(shutdownTimeout + 5*time.Second)
	exited := time.Now()
	obs := probe.Stop()
	if err != nil {
		t.Fatalf("cardinal did not exit after SIGTERM: %v", err)
	}
	took := exited.Sub(sigterm)
	t.Logf("SIGTERM to exit: %s (exit code %d)", took.Round(time.Millisecond), code)
	if code != 0 {
		t.Errorf("cardinal exited with %d after SIGTERM, want 0", code)
	}
	if took > shutdownTimeout+time.Second {
		t.Errorf("shutdown took %s, more than --shutdown.timeout=%s", took, shutdownTimeout)
	}

	// Readiness: 200 before, never 200 once SIGTERM has had a moment to land, and not
	// ready while cardinal was still draining.
	var before200, after200, notReadyDuring, refused503 int
	for _, o := range obs {
		switch {
		case o.at.Before(sigterm):
			if o.status == http.StatusOK {
				before200++
			}
		case o.status == http.StatusOK && o.at.After(sigterm.Add(200*time.Millisecond)):
			after200++
		case o.status != http.StatusOK && o.at.Before(exited):
			notReadyDuring++
			if o.status == http.StatusServiceUnavailable {
				refused503++
			}
		}
	}
	t.Logf("/-/ready probes: %d answered 200 before SIGTERM, %d not ready between SIGTERM and exit (%d of them 503, the rest no connection)",
		before200, notReadyDuring, refused503)
	if before200 == 0 {
		t.Errorf("/-/ready never answered 200 before SIGTERM (%d probes)", len(obs))
	}
	if after200 > 0 {
		t.Errorf("/-/ready answered 200 %d times more than 200ms after SIGTERM", after200)
	}
	if notReadyDuring == 0 {
		t.Errorf("/-/ready was never seen not ready between SIGTERM and exit (%d probes)", len(obs))
	}

	// The drain waited for the slow downstream: requests that reached it after SIGTERM were
	// accepted, and cardinal exited only after the last answer.
	late := proxy.since(sigterm)
	t.Logf("%d writes reached the slow downstream after SIGTERM", len(late))
	if len(late) == 0 {
		t.Errorf("no write reached the downstream after SIGTERM: the open windows were not flushed at shutdown")
	}
	for _, r := range late {
		if r.status/100 != 2 {
			t.Errorf("a write sent after SIGTERM was answered %d", r.status)
		}
		if r.answered.After(exited) {
			t.Errorf("cardinal exited at %s, before its write was answered at %s", exited.Format(time.StampMilli), r.answered.Format(time.StampMilli))
		}
	}
	if took < proxyDelay {
		t.Errorf("shutdown took %s, less than one slow write (%s): it did not wait for the queue", took, proxyDelay)
	}

	// Downstream: every aggregated sample but the newest sits on a window end; the newest,
	// the open window closed early, is stamped with its newest input sample: inside the open
	// window, no later than the shutdown (never in the future, never the window's end,
	// which a restarted cardinal continuing the window would write again), with the totals
	// pushed.
	check := func(metric string, want map[string]float64) {
		t.Helper()
		samples := querySamples(t, prom.URL, metric+"[10m]", openWindowEnd.Add(time.Second))
		if len(samples) != len(jobs) {
			t.Fatalf("%s downstream: %d series %v, want %d", metric, len(samples), keys(samples), len(jobs))
		}
		for _, job := range jobs {
			key := seriesKey(map[string]string{"__name__": metric, "job": job})
			ps := samples[key]
			if len(ps) == 0 {
				t.Errorf("%s: no samples downstream", key)
				continue
			}
			for _, p := range ps[:len(ps)-1] {
				if p.T%interval.Milliseconds() != 0 {
					t.Errorf("%s: sample at %s is not on a window end (shutdown was at %s)", key,
						time.UnixMilli(p.T).UTC().Format(time.StampMilli), sigterm.UTC().Format(time.StampMilli))
				}
			}
			newest := ps[len(ps)-1]
			t.Logf("%s downstream: %v", key, ps)
			if newest.T <= openWindowEnd.Add(-interval).UnixMilli() || newest.T >= openWindowEnd.UnixMilli() || newest.T > sigterm.UnixMilli() {
				t.Errorf("%s: newest sample at %s, want inside the open window (%s, %s) and no later than SIGTERM at %s", key,
					time.UnixMilli(newest.T).UTC().Format(time.StampMilli), openWindowEnd.Add(-interval).UTC().Format(time.StampMilli),
					openWindowEnd.UTC().Format(time.StampMilli), sigterm.UTC().Format(time.StampMilli))
			}
			if newest.V != want[job] {
				t.Errorf("%s in the open window = %v, want %v", key, newest.V, want[job])
			}
		}
	}
	check("sd_requests_total", wantTotal)
	check("sd_inflight", wantGauge)
}

// querySamples runs an instant query whose result is a range vector (e.g. `x[10m]`) at ts and
// returns the raw samples keyed by seriesKey.
func querySamples(t testing.TB, promURL, expr string, ts time.Time) map[string][]point {
	t.Helper()
	resp := getAPI(t, promURL+"/api/v1/query", url.Values{"query": {expr}, "time": {apiTime(ts)}})
	if resp.Data.ResultType != "matrix" {
		t.Fatalf("query %q: result type %q, want matrix", expr, resp.Data.ResultType)
	}
	var matrix []struct {
		Metric map[string]string    `json:"metric"`
		Values [][2]json.RawMessage `json:"values"`
	}
	decodeResult(t, expr, resp, &matrix)
	out := map[string][]point{}
	for _, r := range matrix {
		for _, v := range r.Values {
			out[seriesKey(r.Metric)] = append(out[seriesKey(r.Metric)], parseAPIPoint(t, v))
		}
	}
	return out
}

// TestShutdown_gives_up_at_the_deadline_when_the_downstream_is_too_slow: a downstream that
// holds every write for longer than --shutdown.timeout must not hold cardinal up. It exits
// by the deadline, with a non-zero code, saying how many samples it could not deliver.
func TestShutdown_gives_up_at_the_deadline_when_the_downstream_is_too_slow(t *testing.T) {
	const shutdownTimeout = 2 * time.Second
	prom := startPrometheus(t, prometheusOptions{})
	proxy := startSlowProxy(t, prom.URL, time.Minute)
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 15s
downstream:
  remote_write:
    - url: %s/api/v1/write
      name: stuck
rules:
  - metric_name: sd_requests_total
    type: counter
    drop_labels: [pod]
`, proxy.URL), "--shutdown.timeout="+shutdownTimeout.String())

	now := time.Now()
	for i := range 4 {
		ms := now.Add(time.Duration(i-3) * 10 * time.Second).UnixMilli()
		if code := pushRW(t, card.WriteURL, []prompb.TimeSeries{
			{Labels: labelSet("sd_requests_total", "job", "api", "pod", "a"), Samples: []prompb.Sample{{Timestamp: ms, Value: float64(10 * i)}}},
			{Labels: labelSet("sd_unmatched", "job", "api"), Samples: []prompb.Sample{{Timestamp: ms, Value: float64(i)}}},
		}); code/100 != 2 {
			t.Fatalf("push %d: status %d", i, code)
		}
	}
	sigterm := time.Now()
	if err := card.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := card.Wait(shutdownTimeout + 10*time.Second)
	took := time.Since(sigterm)
	if err != nil {
		t.Fatalf("cardinal still running %s after SIGTERM with --shutdown.timeout=%s: %v", took, shutdownTimeout, err)
	}
	t.Logf("SIGTERM to exit: %s, exit code %d", took.Round(time.Millisecond), code)
	if took > shutdownTimeout+1500*time.Millisecond {
		t.Errorf("shutdown took %s, want about --shutdown.timeout=%s", took, shutdownTimeout)
	}
	if code == 0 {
		t.Errorf("cardinal exited 0 although its downstream never took the queued samples")
	}
	if log := card.Log(); !strings.Contains(log, "not delivered") {
		t.Errorf("cardinal's log does not say that samples were not delivered:\n%s", log)
	}
}
