package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// bpWindow is the window length of the back-pressure test's rule.
const bpWindow = 15 * time.Second

// newBPHistory is synthetic scrape history for the back-pressure tests, steps scrapes step
// apart from start: a counter aggregated by cardinal (with a reset, a pod that starts late
// and a pod that goes away with a stale marker) and a gauge no rule selects, which cardinal
// forwards raw. Values are integers so that every expected sum is exact in float64.
func newBPHistory(start time.Time, step time.Duration, steps int) *syntheticHistory {
	h := newSyntheticHistory(start, step)
	counters := map[string]float64{}
	for i := range steps {
		h.scrape()
		for ji, job := range []string{"api", "web"} {
			for p := range 7 {
				pod := fmt.Sprintf("%s-%d", job, p)
				// Pod 6 of web starts a third of the way in; pod 5 of api goes away at
				// two thirds with a stale marker; pod 2 of api restarts (counter reset).
				if job == "web" && p == 6 && i < steps/3 {
					continue
				}
				if job == "api" && p == 5 && i > 2*steps/3 {
					continue
				}
				ls := labelSet("bp_requests_total", "job", job, "pod", pod)
				v, ok := counters[pod]
				if !ok {
					v = float64(100 * (p + 1))
				}
				switch {
				case job == "api" && p == 5 && i == 2*steps/3:
					h.counter(ls, staleMarker)
					continue
				case job == "api" && p == 2 && i == steps/2:
					v = 4
				default:
					v += float64(1 + p + 2*ji + i%3)
				}
				counters[pod] = v
				h.counter(ls, v)
			}
			// The raw gauge: one series per pod slot, always present.
			for p := range 6 {
				h.sample(labelSet("bp_queue_depth", "job", job, "pod", fmt.Sprintf("%s-%d", job, p)), float64((i*7+p*3+ji)%50))
			}
		}
	}
	return h
}

// bpTotalAt is the aggregated counter's expected value for job at window end w.
func bpTotalAt(h *syntheticHistory, job string, w int64) float64 {
	return h.totalAt(w, ofMetric("bp_requests_total", "job", job))
}

// TestBackpressure_downstream_outage_gets_503_and_loses_nothing pushes 25 minutes of history
// through cardinal into a real Prometheus, retrying each request on 5xx with a bounded
// backoff as a Prometheus agent does. Part-way through, the downstream Prometheus is stopped:
// cardinal's tiny send queue fills, its receiver must answer 503 (never 429 or another 4xx),
// and once Prometheus is back everything acknowledged must arrive: the aggregated counter at
// every window end equals what the pushed samples add up to, every raw sample of the
// forwarded series is stored, and cardinal retried and dropped nothing.
//
// flush_delay equals the interval (15 s) so that the outage, which lasts as long as
// Prometheus takes to restart, stays shorter than the time after which cardinal closes a
// silent rule's windows by the wall clock (see the long-outage test for that case).
func TestBackpressure_downstream_outage_gets_503_and_loses_nothing(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: %s
  unmatched: forward
downstream:
  remote_write:
    - url: %s
      name: downstream
      queue:
        max_bytes: 32KiB
        max_samples_per_send: 100
        shards: 2
        min_backoff: 50ms
        max_backoff: 500ms
rules:
  - metric_name: bp_requests_total
    type: counter
    drop_labels: [pod]
`, bpWindow, bpWindow, prom.WriteURL), "--aggregator.flush-tick=100ms", "--shutdown.timeout=10s")

	const (
		steps  = 300
		step   = 5 * time.Second
		stopAt = 120 // the downstream is stopped before this request
	)
	// Samples fall on window ends too (every third one), pinning right-closed windows.
	start := time.Now().Truncate(bpWindow).Add(-27 * time.Minute)
	h := newBPHistory(start, step, steps)

	var (
		accepted, acceptedSamples int
		n503, n503WhileDown       int
		down                      bool
		stoppedAt, restartedAt    time.Time
		backAt                    time.Time // first request accepted after the restart
	)
	retried := func() float64 {
		v, _ := metricValue(scrapeCardinal(t, card.URL), "cardinal_downstream_samples_retried_total")
		return v
	}
	for i, req := range h.requests {
		if i == stopAt {
			if r := retried(); r != 0 {
				t.Logf("%v samples already retried before the downstream stopped", r)
			}
			prom.Stop()
			down, stoppedAt = true, time.Now()
			t.Logf("downstream stopped before request %d of %d", i, steps)
		}
		deadline := time.Now().Add(30 * time.Second)
		wait := 50 * time.Millisecond
		for {
			code, body, err := postRW(card.WriteURL, req)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if code/100 == 2 {
				accepted++
				acceptedSamples += h.samples[i]
				if !restartedAt.IsZero() && backAt.IsZero() {
					backAt = time.Now()
				}
				break
			}
			if code != http.StatusServiceUnavailable {
				t.Fatalf("request %d: cardinal answered %d (%s), want 2xx or 503 (never 429 or another 4xx: an agent would drop the data)", i, code, body)
			}
			n503++
			// The downstream stays away until cardinal has refused a request and has had
			// a send to it fail (it retries); then it comes back.
			if down {
				n503WhileDown++
				if retried() > 0 {
					t.Logf("request %d: 503 with the downstream down %s and sends failing; starting it again", i, time.Since(stoppedAt).Round(time.Millisecond))
					prom.Start()
					down, restartedAt = false, time.Now()
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %d: still refused (503) after 30s of retries (downstream down: %v)", i, down)
			}
			time.Sleep(wait) // the agent's backoff
			wait = min(2*wait, time.Second)
		}
	}
	if down {
		prom.Start() // so that cardinal can drain and stop
		t.Fatalf("the downstream stayed down from request %d to the end: cardinal never answered 503 (%d requests accepted with a 32KiB queue) or never retried a send (retried %v)",
			stopAt, steps-stopAt, retried())
	}
	if n503WhileDown == 0 {
		t.Fatal("no 503 while the downstream was down")
	}
	t.Logf("%d requests accepted; %d answers 503, %d of them while the downstream was down; down for %s, refusing for %s after it came back",
		accepted, n503, n503WhileDown, restartedAt.Sub(stoppedAt).Round(time.Millisecond), backAt.Sub(restartedAt).Round(time.Millisecond))

	lastWindowEnd := ceilTime(h.lastScrape(), bpWindow)
	// The last windows close by the wall clock once the rule has heard nothing for
	// flush_delay.
	eventually(t, 60*time.Second, "the window holding the last sample to reach the downstream", func() (bool, error) {
		v := query(t, prom.URL, `min(timestamp(bp_requests_total))`, lastWindowEnd.Add(time.Minute))
		return v["{}"] >= float64(lastWindowEnd.Unix()), fmt.Errorf("newest aggregated sample at %v", v)
	})

	// The aggregated counter at every window end after the first (partial, not emitted)
	// window equals the sum of the increases pushed up to that instant.
	firstEmitted := ceilTime(start, bpWindow).Add(bpWindow)
	got := queryRange(t, prom.URL, `bp_requests_total`, firstEmitted, lastWindowEnd, bpWindow)
	if len(got) != 2 {
		t.Fatalf("aggregated bp_requests_total: %d series %v, want 2 (one per job)", len(got), keys(got))
	}
	for _, job := range []string{"api", "web"} {
		key := seriesKey(map[string]string{"__name__": "bp_requests_total", "job": job})
		points := got[key]
		want := int(lastWindowEnd.Sub(firstEmitted)/bpWindow) + 1
		if len(points) != want {
			t.Errorf("%s: %d window ends, want %d", key, len(points), want)
		}
		bad := 0
		for _, p := range points {
			if w := bpTotalAt(h, job, p.T); p.V != w {
				if bad < 5 {
					t.Errorf("%s at %s: %v, want %v (difference %v)", key, time.UnixMilli(p.T).UTC().Format(time.TimeOnly), p.V, w, p.V-w)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d window ends differ from the pushed samples", key, bad, len(points))
		}
		final := bpTotalAt(h, job, lastWindowEnd.UnixMilli())
		if n := len(points); n > 0 && points[n-1].V != final {
			t.Errorf("%s: final total %v, want %v: acknowledged samples were lost", key, points[n-1].V, final)
		}
	}
	resets := query(t, prom.URL, `resets(bp_requests_total[1h])`, time.Now())
	for key, n := range resets {
		if n != 0 {
			t.Errorf("aggregated %s resets %v times downstream, want 0 (a running total restarted)", key, n)
		}
	}

	// Every raw sample of the forwarded series was stored.
	at := time.Now()
	counts := query(t, prom.URL, `count_over_time(bp_queue_depth[1h])`, at)
	sums := query(t, prom.URL, `sum_over_time(bp_queue_depth[1h])`, at)
	raw := h.forwarded("bp_queue_depth")
	if len(counts) != len(raw) {
		t.Errorf("forwarded bp_queue_depth: %d series downstream, want %d", len(counts), len(raw))
	}
	for key, want := range raw {
		k := stripName(key)
		if counts[k] != float64(want.count) || sums[k] != want.sum {
			t.Errorf("forwarded %s: %v samples summing to %v downstream, want %d summing to %v",
				key, counts[k], sums[k], want.count, want.sum)
		}
	}

	// cardinal's own account: it retried what failed, dropped nothing, and its receiver
	// counted the refusals and acceptances this client saw.
	ms := scrapeCardinal(t, card.URL)
	checks := []struct {
		what string
		ok   func(float64) bool
		want string
		name string
		lbls []string
	}{
		{"samples retried", func(v float64) bool { return v > 0 }, "> 0", "cardinal_downstream_samples_retried_total", []string{"downstream", "downstream"}},
		{"samples dropped", func(v float64) bool { return v == 0 }, "0", "cardinal_downstream_samples_dropped_total", nil},
		{"samples refused by the downstream", func(v float64) bool { return v == 0 }, "0", "cardinal_downstream_samples_failed_total", nil},
		{"aggregator drops", func(v float64) bool { return v == 0 }, "0", "cardinal_aggregator_samples_dropped_total", nil},
		{"503 answers", func(v float64) bool { return v == float64(n503) }, fmt.Sprint(n503), "cardinal_receiver_requests_total", []string{"code", "503"}},
		{"2xx answers", func(v float64) bool { return v == float64(accepted) }, fmt.Sprint(accepted), "cardinal_receiver_requests_total", []string{"code", "204"}},
		{"samples accepted", func(v float64) bool { return v == float64(acceptedSamples) }, fmt.Sprint(acceptedSamples), "cardinal_receiver_samples_total", nil},
	}
	for _, c := range checks {
		v, n := metricValue(ms, c.name, c.lbls...)
		if n == 0 {
			t.Errorf("%s: no %s%v in /metrics", c.what, c.name, c.lbls)
			continue
		}
		if !c.ok(v) {
			t.Errorf("%s: %s%v = %v, want %s", c.what, c.name, c.lbls, v, c.want)
		}
	}
	if code := card.Stop(); code != 0 {
		t.Errorf("cardinal exited with %d after SIGTERM, want 0", code)
	}
}

// TestBackpressure_outage_longer_than_flush_delay_loses_nothing is the same history with an
// outage longer than flush_delay. While its queue is full cardinal answers 503, so the rule
// hears nothing; docs/design.md §4 says the agent keeps the data and nothing acknowledged is lost,
// and §3.2 that a counter sample for a closed window is credited to the oldest open one.
// Whatever cardinal does with its windows meanwhile, the running total downstream must end
// at the sum of every increase pushed, and never reset. (An agent replaying its WAL after a
// network partition sends exactly such minutes-old history.) If cardinal forgets its state
// during the outage, the final totals equal the increases pushed after the outage alone; the
// failure message prints those for comparison.
func TestBackpressure_outage_longer_than_flush_delay_loses_nothing(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 15s
  flush_delay: 2s
  unmatched: drop
downstream:
  remote_write:
    - url: %s
      name: downstream
      queue:
        max_bytes: 4KiB
        max_samples_per_send: 100
        shards: 1
        min_backoff: 50ms
        max_backoff: 200ms
rules:
  - metric_name: bp_requests_total
    type: counter
    drop_labels: [pod]
`, prom.WriteURL), "--aggregator.flush-tick=100ms", "--shutdown.timeout=10s")

	const (
		steps  = 200
		step   = 5 * time.Second
		stopAt = 100
		outage = 5 * time.Second // longer than flush_delay
	)
	start := time.Now().Truncate(bpWindow).Add(-20 * time.Minute)
	h := newBPHistory(start, step, steps)
	stopped, refused, firstRefused := false, 0, -1
	for i, req := range h.requests {
		if i == stopAt {
			prom.Stop()
			stopped = true
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body, err := postRW(card.WriteURL, req)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if code/100 == 2 {
				// Paced so that the 100ms flush tick closes windows as the history moves on.
				time.Sleep(5 * time.Millisecond)
				break
			}
			if code != http.StatusServiceUnavailable {
				t.Fatalf("request %d: cardinal answered %d (%s), want 2xx or 503", i, code, body)
			}
			refused++
			if stopped {
				firstRefused = i
				// Keep the downstream away for longer than flush_delay, the agent retrying.
				for until := time.Now().Add(outage); time.Now().Before(until); {
					if code, body, err := postRW(card.WriteURL, req); err != nil || code != http.StatusServiceUnavailable {
						t.Fatalf("request %d during the outage: %d %s %v; want 503", i, code, body, err)
					}
					refused++
					time.Sleep(250 * time.Millisecond)
				}
				prom.Start()
				stopped = false
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %d: still refused after 30s of retries", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if stopped || refused == 0 {
		if stopped {
			prom.Start()
		}
		t.Fatalf("the 4KiB queue never filled while the downstream was down (503s seen: %d)", refused)
	}

	want := map[string]float64{}
	for _, job := range []string{"api", "web"} {
		want[seriesKey(map[string]string{"job": job})] = bpTotalAt(h, job, math.MaxInt64)
	}
	// What the totals would be if cardinal forgot its state during the outage: only the
	// increases after the refused request, whose samples become new baselines.
	afterOutage := map[string]float64{}
	refusedAt := h.at(firstRefused).UnixMilli()
	for _, job := range []string{"api", "web"} {
		afterOutage[job] = bpTotalAt(h, job, math.MaxInt64) - bpTotalAt(h, job, refusedAt)
	}
	// The last windows close 2 s (flush_delay) after the pushes end.
	var got map[string]float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = map[string]float64{}
		for k, v := range query(t, prom.URL, `last_over_time(bp_requests_total[1h])`, time.Now()) {
			got[stripName(k)] = v
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final totals downstream %v, want %v: acknowledged increases were lost (the totals of the increases after the outage began at request %d alone would be api %v, web %v)",
				got, want, firstRefused, afterOutage["api"], afterOutage["web"])
		}
		time.Sleep(500 * time.Millisecond)
	}
	resets := query(t, prom.URL, `resets(bp_requests_total[1h])`, time.Now())
	for key, n := range resets {
		if n != 0 {
			t.Errorf("aggregated %s resets %v times downstream, want 0", key, n)
		}
	}
}

// ceilTime rounds t up to a multiple of d since the Unix epoch: the end of the right-closed
// window holding t.
func ceilTime(t time.Time, d time.Duration) time.Time {
	if r := t.Truncate(d); !r.Equal(t) {
		return r.Add(d)
	}
	return t
}

// postRW sends series as one Remote Write 1.0 request and returns the status code and the
// start of the response body, or the error when no answer came (e.g. the listener is
// closed). Unlike pushRW it logs nothing and never fails the test, for loops that expect
// refusals.
func postRW(url string, series []prompb.TimeSeries) (code int, body string, err error) {
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "cardinal-e2e")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
