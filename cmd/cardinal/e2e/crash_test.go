package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// The crash test (issue 17) holds cardinal to the promise of docs/design.md §4: with
// wal.fsync: always, kill -9 at any moment loses no acknowledged sample, makes no visible
// counter reset, and never emits an output series twice for one timestamp with different
// values.
//
// Environment:
//   - CARDINAL_CRASH_ROUNDS: rounds of kill -9 (default 5, for `make test`; `make crashtest`
//     runs 25).
//   - CARDINAL_CRASH_SEED: the seed of the rounds' random timing (default: the clock; it is
//     logged, so a failing run can be replayed).
const (
	crashInterval   = 5 * time.Second // aggregator.flush_interval: one output window
	crashStep       = time.Second     // synthetic time between two requests of the sender
	crashHistoryLen = 50 * time.Minute
	crashJobs       = 3
	crashPodSlots   = 4
	crashResetEvery = 97  // steps between two counter resets of one input
	crashChurnEvery = 151 // steps between two pod replacements
)

// TestCrash_kill9_loses_nothing_and_resets_nothing runs an agent-like sender (every request
// retried until cardinal acknowledges it) against cardinal with a WAL, kills cardinal with
// SIGKILL at random moments, sometimes while its downstream (a real Prometheus behind an
// in-test proxy) is down, restarts it on the same WAL, and checks at the end that every
// output series in Prometheus is, window by window, exactly the running sum of the
// acknowledged input increases: no loss, no double count, no reset, no window missing, no
// timestamp written twice with different values, and no 4xx from Prometheus.
func TestCrash_kill9_loses_nothing_and_resets_nothing(t *testing.T) {
	// Like every end-to-end test, it is skipped under -short (make test-short runs unit tests
	// only); here before the rounds and seed are read, not at the first binary it needs.
	if testing.Short() {
		t.Skip("crash test: -short: not starting Prometheus and cardinal")
	}
	rounds := envInt(t, "CARDINAL_CRASH_ROUNDS", 5)
	seed := int64(envInt(t, "CARDINAL_CRASH_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("crash test: %d rounds, seed %d (replay with CARDINAL_CRASH_SEED=%d CARDINAL_CRASH_ROUNDS=%d)", rounds, seed, seed, rounds)
	rng := rand.New(rand.NewSource(seed))

	prom := startPrometheus(t, prometheusOptions{})
	proxy := startCrashProxy(t, prom.WriteURL)
	walDir := filepath.Join(t.TempDir(), "wal")
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: 2s
downstream:
  remote_write:
    - url: %s
      name: prom
      timeout: 2s
      queue:
        max_bytes: 256KiB
        max_samples_per_send: 100
        min_backoff: 20ms
        max_backoff: 200ms
wal:
  dir: %s
  fsync: always
  checkpoint_interval: 1s
rules:
  - metric_name: crash_requests_total
    type: counter
    drop_labels: [pod]
  - metric_name: crash_inflight
    type: gauge
    drop_labels: [pod]
`, crashInterval, proxy.URL, walDir), "--aggregator.flush-tick=200ms")

	// The sender paces its steps so that the history lasts about as long as the rounds; it
	// never sends a step later than the wall clock, so once caught up it goes on live.
	hist := newCrashHistory(time.Now().Add(-crashHistoryLen).Truncate(crashStep))
	pace := max(2*time.Millisecond, time.Duration(rounds)*2*time.Second/time.Duration(crashHistoryLen/crashStep))
	snd := startCrashSender(card.WriteURL, hist, pace)

	start := time.Now()
	downRounds := 0
	for round := range rounds {
		// Every third round on average, and always the second, the downstream is down when
		// cardinal is killed, from a moment before the kill until a while after the restart.
		down := round == 1 || rng.Intn(3) == 0
		runFor := time.Duration(200+rng.Intn(1800)) * time.Millisecond
		var downBefore time.Duration
		if down {
			downRounds++
			downBefore = time.Duration(rng.Intn(int(min(runFor, time.Second)/time.Millisecond))) * time.Millisecond
		}
		time.Sleep(runFor - downBefore)
		mode := proxyUp
		if down {
			mode = proxyDown503
			if rng.Intn(2) == 0 {
				mode = proxyDownReset
			}
			proxy.setMode(mode)
			time.Sleep(downBefore)
		}
		acked := snd.acked.Load()
		if err := card.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		if _, err := card.Wait(10 * time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		dead := time.Duration(rng.Intn(300)) * time.Millisecond
		time.Sleep(dead) // the sender meets refused connections meanwhile
		card.Start()
		t.Logf("round %d: killed after %s (%d requests acknowledged), downstream %s, dead %s",
			round, runFor, acked, mode, dead)
		if down {
			time.Sleep(time.Duration(500+rng.Intn(1500)) * time.Millisecond)
			proxy.setMode(proxyUp)
		}
		if err := snd.err(); err != nil {
			t.Fatalf("round %d: sender: %v", round, err)
		}
	}
	t.Logf("%d rounds (%d with the downstream down at the kill) in %s", rounds, downRounds, time.Since(start).Round(time.Millisecond))

	// The sender stops after its current request is acknowledged: every request it made was.
	snd.stop()
	if err := snd.err(); err != nil {
		t.Fatalf("sender: %v", err)
	}
	reqs := snd.sent()
	if len(reqs) < 100 {
		t.Fatalf("the sender got only %d requests acknowledged", len(reqs))
	}
	last := reqs[len(reqs)-1].ts
	t.Logf("sender: %d requests acknowledged, %d retries, history %s .. %s",
		len(reqs), snd.retries.Load(), time.UnixMilli(reqs[0].ts).UTC().Format(time.TimeOnly), time.UnixMilli(last).UTC().Format(time.TimeOnly))

	checkOutputsAtPrometheus(t, prom, []*crashProxy{proxy}, reqs)
	proxy.check(t)
	if code := card.Stop(); code != 0 {
		t.Errorf("cardinal exited with %d after SIGTERM, want 0", code)
	}
}

// checkOutputsAtPrometheus waits until every output reached (through proxies) the window
// of the last acknowledged sample (with no more data, the wall clock closes it: it is the
// last one that holds data), then checks each output series at Prometheus against
// crashExpected and that no counter output was reset.
func checkOutputsAtPrometheus(t *testing.T, prom *prometheusServer, proxies []*crashProxy, reqs []crashRequest) (wrong map[string][]int64) {
	t.Helper()
	want := crashExpected(reqs)
	lastK := windowEnd(reqs[len(reqs)-1].ts)
	eventually(t, 60*time.Second, "every output's window of the last sample at Prometheus", func() (bool, error) {
		n := 0
		for _, p := range proxies {
			n += p.outputsAtOrAfter(lastK)
		}
		return n == len(want), fmt.Errorf("%d of %d outputs reached %s", n, len(want), fmtMs(lastK))
	})
	got := queryMatrix(t, prom.URL, `{__name__=~"crash_requests_total|crash_inflight"}[2h]`, time.Now())
	if len(got) != len(want) {
		t.Fatalf("Prometheus holds %d output series, want %d: %v", len(got), len(want), keys(got))
	}
	wrong = map[string][]int64{}
	for key, cum := range want {
		points, ok := got[key]
		if !ok {
			t.Errorf("output %s missing at Prometheus (have %v)", key, keys(got))
			continue
		}
		if ks := checkCrashOutput(t, key, points, cum, lastK, strings.Contains(key, "crash_inflight")); len(ks) > 0 {
			wrong[key] = ks
		}
	}
	for key, v := range query(t, prom.URL, `resets(crash_requests_total[2h])`, time.Now()) {
		if v != 0 {
			t.Errorf("resets(%s[2h]) = %v, want 0", key, v)
		}
	}
	return wrong
}

// checkCrashOutput checks one output series against want (crashExpected's, by window end):
// a point at every window end from its first to past lastK, and at each a value exactly as
// expected; for a counter (which started before its first emitted window) the increase
// since the first point, for a gauge the value itself. It returns the window ends whose
// values are wrong.
func checkCrashOutput(t *testing.T, key string, points []point, cum map[int64]float64, lastK int64, gauge bool) (wrong []int64) {
	t.Helper()
	first := points[0]
	if first.T%crashInterval.Milliseconds() != 0 {
		t.Errorf("%s: first point at %d, not a window end", key, first.T)
		return
	}
	base, ok := cum[first.T]
	if gauge {
		first.V, base = 0, 0
	}
	if !ok {
		t.Errorf("%s: first point at %s, outside the history", key, fmtMs(first.T))
		return
	}
	errs := 0
	for i, p := range points {
		if wantT := first.T + int64(i)*crashInterval.Milliseconds(); p.T != wantT {
			t.Errorf("%s: point %d at %s, want %s: a window end is missing or extra", key, i, fmtMs(p.T), fmtMs(wantT))
			return
		}
		w, ok := cum[min(p.T, lastK)]
		if !ok {
			t.Errorf("%s: no expected total at %s", key, fmtMs(p.T))
			return
		}
		if got, want := p.V-first.V, w-base; got != want {
			errs++
			wrong = append(wrong, p.T)
			if errs <= 5 {
				t.Errorf("%s at %s: %v (relative to the first point %s, for a counter), want %v (%+v)",
					key, fmtMs(p.T), got, fmtMs(first.T), want, got-want)
			}
		}
	}
	if lastT := points[len(points)-1].T; lastT < lastK {
		t.Errorf("%s: last point at %s, before the window of the last sample %s", key, fmtMs(lastT), fmtMs(lastK))
	}
	if errs > 5 {
		t.Errorf("%s: %d points wrong in all", key, errs)
	}
	return wrong
}

// envInt reads a positive integer from the environment, or def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05.000") }

// windowEnd is the end of the output window holding a sample at ms (windows are closed on
// the right).
func windowEnd(ms int64) int64 {
	i := crashInterval.Milliseconds()
	return (ms + i - 1) / i * i
}

// crashHistory generates the sender's requests: crashJobs jobs of crashPodSlots pods, each
// with two counters (code 200 and 500) growing by small integers (so that every sum is
// exact in float64), one input reset every crashResetEvery steps, and one pod replaced by a
// new one (the old one's series end with stale markers, the new one's start at a value its
// first sample takes as a baseline) every crashChurnEvery steps.
type crashHistory struct {
	start time.Time
	step  int
	gen   [crashJobs][crashPodSlots]int
	vals  map[string]float64 // by pod series name
}

func newCrashHistory(start time.Time) *crashHistory {
	return &crashHistory{start: start, vals: map[string]float64{}}
}

var crashCodes = []string{"200", "500"}

func crashPod(job, slot, gen int) string { return fmt.Sprintf("pod-%d-%d-%d", job, slot, gen) }

// next returns the next request and its timestamp (ms).
func (h *crashHistory) next() ([]prompb.TimeSeries, int64) {
	i := h.step
	h.step++
	ms := h.start.Add(time.Duration(i) * crashStep).UnixMilli()
	var out []prompb.TimeSeries
	churnJob, churnSlot := -1, -1
	if i > 0 && i%crashChurnEvery == 0 {
		n := i / crashChurnEvery
		churnJob, churnSlot = n%crashJobs, (n/crashJobs)%crashPodSlots
	}
	resetAt := -1
	if i > 0 && i%crashResetEvery == 0 {
		resetAt = (i / crashResetEvery) % (crashJobs * crashPodSlots * len(crashCodes))
	}
	n := 0
	for job := range crashJobs {
		for slot := range crashPodSlots {
			if job == churnJob && slot == churnSlot {
				for _, code := range crashCodes {
					out = append(out, prompb.TimeSeries{
						Labels:  crashLabels(job, code, crashPod(job, slot, h.gen[job][slot])),
						Samples: []prompb.Sample{{Value: staleMarker, Timestamp: ms}},
					})
				}
				h.gen[job][slot]++
			}
			pod := crashPod(job, slot, h.gen[job][slot])
			for ci, code := range crashCodes {
				key := pod + "/" + code
				v, seen := h.vals[key]
				switch {
				case !seen:
					v = float64(100*slot + 7*ci + h.gen[job][slot]) // a new pod's counter
				case n == resetAt:
					v = float64(1 + i%3) // the process restarted
				default:
					v += float64(1 + (i+slot+3*ci+job)%5)
				}
				h.vals[key] = v
				out = append(out, prompb.TimeSeries{
					Labels:  crashLabels(job, code, pod),
					Samples: []prompb.Sample{{Value: v, Timestamp: ms}},
				})
				n++
			}
			if job == churnJob && slot == churnSlot {
				out = append(out, prompb.TimeSeries{
					Labels:  crashGaugeLabels(job, crashPod(job, slot, h.gen[job][slot]-1)),
					Samples: []prompb.Sample{{Value: staleMarker, Timestamp: ms}},
				})
			}
			out = append(out, prompb.TimeSeries{
				Labels:  crashGaugeLabels(job, pod),
				Samples: []prompb.Sample{{Value: float64((i*7+slot*3+job)%50 + slot), Timestamp: ms}},
			})
		}
	}
	return out, ms
}

func crashGaugeLabels(job int, pod string) []prompb.Label {
	return labelSet("crash_inflight", "job", fmt.Sprintf("job-%d", job), "pod", pod)
}

func crashLabels(job int, code, pod string) []prompb.Label {
	return labelSet("crash_requests_total", "job", fmt.Sprintf("job-%d", job), "code", code, "pod", pod)
}

// crashExpected computes, independently of cardinal, what every output series must read at
// each window end (by output, then window end):
//   - a counter output (crash_requests_total) the running total of its inputs' increases:
//     per input, the first sample is a baseline, a value below the previous one is a reset
//     that counts the new value, a stale marker ends the input;
//   - a gauge output (crash_inflight) the sum of the latest values of its live inputs.
func crashExpected(reqs []crashRequest) map[string]map[int64]float64 {
	last := map[string]float64{}              // input -> latest value, while live
	inc := map[string]map[int64]float64{}     // counter output -> window end -> increase in it
	gauges := map[string]map[string]float64{} // gauge output -> input -> latest value
	want := map[string]map[int64]float64{}
	var ends []int64
	// gaugesAt records the gauge sums at window end k, once its last request is in.
	gaugesAt := func(k int64) {
		for out, ins := range gauges {
			if len(ins) == 0 {
				continue
			}
			sum := 0.0
			for _, v := range ins {
				sum += v
			}
			want[out][k] = sum
		}
	}
	for _, r := range reqs {
		k := windowEnd(r.ts)
		if n := len(ends); n > 0 && ends[n-1] != k {
			gaugesAt(ends[n-1])
		}
		if n := len(ends); n == 0 || ends[n-1] != k {
			ends = append(ends, k)
		}
		for _, s := range r.series {
			in := labelKey(s.Labels)
			outLabels := withoutPod(s.Labels)
			out := labelKey(outLabels)
			if want[out] == nil {
				want[out] = map[int64]float64{}
			}
			gauge := outLabels[0].Value == "crash_inflight"
			if gauge && gauges[out] == nil {
				gauges[out] = map[string]float64{}
			}
			if !gauge && inc[out] == nil {
				inc[out] = map[int64]float64{}
			}
			for _, smp := range s.Samples {
				prev, seen := last[in]
				switch {
				case value.IsStaleNaN(smp.Value):
					delete(last, in)
					if gauge {
						delete(gauges[out], in)
					}
					continue
				case gauge:
					gauges[out][in] = smp.Value
				case seen && smp.Value >= prev:
					inc[out][windowEnd(smp.Timestamp)] += smp.Value - prev
				case seen:
					inc[out][windowEnd(smp.Timestamp)] += smp.Value
				}
				last[in] = smp.Value
			}
		}
	}
	gaugesAt(ends[len(ends)-1])
	for out, byK := range inc {
		total := 0.0
		for _, k := range ends {
			total += byK[k]
			want[out][k] = total
		}
	}
	return want
}

// withoutPod is the output labels of an input series: its labels without pod.
func withoutPod(ls []prompb.Label) []prompb.Label {
	var out []prompb.Label
	for _, l := range ls {
		if l.Name != "pod" {
			out = append(out, l)
		}
	}
	return out
}

// crashRequest is one request the sender got acknowledged.
type crashRequest struct {
	series []prompb.TimeSeries
	ts     int64
	// acked is, for a cluster's agents, when each member's part was acknowledged (by
	// node; zero for a node the step had no series for).
	acked []time.Time
}

// crashSender sends the history in order, one request at a time, retrying each (the same
// body) until cardinal answers 2xx, through refused connections while cardinal is dead and
// 503s while it refuses: what a Prometheus agent does.
type crashSender struct {
	acked   atomic.Int64
	retries atomic.Int64
	quit    chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	requests []crashRequest
	failure  error
}

func startCrashSender(writeURL string, h *crashHistory, pace time.Duration) *crashSender {
	s := &crashSender{quit: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			series, ms := h.next()
			for time.Now().UnixMilli() < ms+crashStep.Milliseconds() { // live: not ahead of the clock
				select {
				case <-s.quit:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			if !s.postUntilAcked(client, writeURL, series, ms) {
				return
			}
			s.mu.Lock()
			s.requests = append(s.requests, crashRequest{series: series, ts: ms})
			s.mu.Unlock()
			s.acked.Add(1)
		}
	}()
	return s
}

// postUntilAcked sends series (the step at ms) to writeURL until cardinal acknowledges them,
// retrying refused connections and 503s as an agent does; it reports false (and records why)
// if cardinal refused them for good.
func (s *crashSender) postUntilAcked(client *http.Client, writeURL string, series []prompb.TimeSeries, ms int64) bool {
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		s.fail(err)
		return false
	}
	body := snappy.Encode(nil, raw)
	for attempt := 0; ; attempt++ {
		code, err := postBody(client, writeURL, body)
		if err == nil && code/100 == 2 {
			return true
		}
		if err == nil && code != http.StatusServiceUnavailable {
			// cardinal refuses a valid request for good: nothing an agent can do.
			s.fail(fmt.Errorf("request at %s to %s: status %d, want 2xx or 503", fmtMs(ms), writeURL, code))
			return false
		}
		s.retries.Add(1)
		// The agent keeps the data until it is acknowledged, even when told to stop.
		time.Sleep(time.Duration(min(10*(attempt+1), 100)) * time.Millisecond)
	}
}

func (s *crashSender) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = err
}

func (s *crashSender) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

// stop returns once the request being sent, if any, has been acknowledged.
func (s *crashSender) stop() {
	close(s.quit)
	<-s.done
}

// sent returns the acknowledged requests, in order.
func (s *crashSender) sent() []crashRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// postBody posts a snappy Remote Write 1.0 body and returns the status code.
func postBody(client *http.Client, writeURL string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, writeURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "cardinal-e2e-crash")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// proxyMode is how the crash proxy treats cardinal's requests.
type proxyMode int32

const (
	proxyUp        proxyMode = iota // forwarded to Prometheus
	proxyDown503                    // 503 without forwarding
	proxyDownReset                  // the connection is reset without an answer
)

func (m proxyMode) String() string {
	return [...]string{"up", "down (503)", "down (connection reset)"}[m]
}

// crashProxy stands between cardinal and Prometheus: it forwards remote writes, records
// every status Prometheus answered and every sample it accepted (by series and timestamp,
// noting a timestamp written again with another value), and can be switched down.
type crashProxy struct {
	URL    string
	target string
	mode   atomic.Int32
	client *http.Client

	mu        sync.Mutex
	statuses  map[int]int
	bad       []string                    // 4xx answers of Prometheus, with their bodies
	stored    map[string]map[int64]uint64 // series -> timestamp -> value bits
	conflicts []string
	newest    map[string]int64 // series -> newest timestamp stored
	// histCounts are the native histograms stored: series -> timestamp -> observation count.
	histCounts map[string]map[int64]float64
}

func startCrashProxy(t testing.TB, target string) *crashProxy {
	t.Helper()
	p := &crashProxy{
		target: target, client: &http.Client{Timeout: 10 * time.Second},
		statuses: map[int]int{}, stored: map[string]map[int64]uint64{}, newest: map[string]int64{},
		histCounts: map[string]map[int64]float64{},
	}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	p.URL = srv.URL + "/api/v1/write"
	return p
}

func (p *crashProxy) setMode(m proxyMode) { p.mode.Store(int32(m)) }

func (p *crashProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	switch proxyMode(p.mode.Load()) {
	case proxyDown503:
		http.Error(w, "the crash test's downstream is down", http.StatusServiceUnavailable)
		return
	case proxyDownReset:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
		}
		return
	}
	var wr prompb.WriteRequest
	raw, err := snappy.Decode(nil, body)
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		p.mu.Lock()
		p.bad = append(p.bad, fmt.Sprintf("undecodable body from cardinal: %v", err))
		p.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Encoding", "Content-Type", "User-Agent", "X-Prometheus-Remote-Write-Version"} {
		req.Header.Set(h, r.Header.Get(h))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	p.mu.Lock()
	p.statuses[resp.StatusCode]++
	if resp.StatusCode/100 == 4 {
		p.bad = append(p.bad, fmt.Sprintf("%d: %s (request of %d series, first %s)", resp.StatusCode,
			strings.TrimSpace(string(answer)), len(wr.Timeseries), describeSeries(wr.Timeseries)))
	}
	for _, ts := range wr.Timeseries {
		key := labelKey(ts.Labels)
		byT := p.stored[key]
		if byT == nil {
			byT = map[int64]uint64{}
			p.stored[key] = byT
		}
		for _, s := range ts.Samples {
			bits := math.Float64bits(s.Value)
			if old, ok := byT[s.Timestamp]; ok && old != bits {
				p.conflicts = append(p.conflicts, fmt.Sprintf("%s at %s: %v, then %v",
					key, fmtMs(s.Timestamp), math.Float64frombits(old), s.Value))
			}
			if resp.StatusCode/100 == 2 {
				byT[s.Timestamp] = bits
				p.newest[key] = max(p.newest[key], s.Timestamp)
			}
		}
		for _, h := range ts.Histograms {
			if resp.StatusCode/100 != 2 || value.IsStaleNaN(h.Sum) {
				continue
			}
			if p.histCounts[key] == nil {
				p.histCounts[key] = map[int64]float64{}
			}
			p.histCounts[key][h.Timestamp] = h.ToFloatHistogram().Count
		}
	}
	p.mu.Unlock()
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

func describeSeries(series []prompb.TimeSeries) string {
	if len(series) == 0 {
		return "none"
	}
	s := series[0]
	var ts []string
	for _, smp := range s.Samples {
		ts = append(ts, fmt.Sprintf("%v@%s", smp.Value, fmtMs(smp.Timestamp)))
	}
	return labelKey(s.Labels) + " " + strings.Join(ts, ",")
}

// outputsAtOrAfter counts the series Prometheus stored a sample of at or after ms.
func (p *crashProxy) outputsAtOrAfter(ms int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.newest {
		if t >= ms {
			n++
		}
	}
	return n
}

// check fails the test for any 4xx of Prometheus and any timestamp written twice with
// different values, and logs the statuses.
func (p *crashProxy) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("Prometheus answered (status: requests): %v", p.statuses)
	for i, b := range p.bad {
		if i == 10 {
			t.Errorf("... %d more 4xx answers", len(p.bad)-i)
			break
		}
		t.Errorf("Prometheus answered %s", b)
	}
	for i, c := range p.conflicts {
		if i == 10 {
			t.Errorf("... %d more conflicting samples", len(p.conflicts)-i)
			break
		}
		t.Errorf("an output sample was written twice with different values: %s", c)
	}
}

// queryMatrix runs an instant query whose result is a range vector, keyed by seriesKey.
func queryMatrix(t testing.TB, promURL, expr string, ts time.Time) map[string][]point {
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
		points := make([]point, len(r.Values))
		for i, v := range r.Values {
			points[i] = parseAPIPoint(t, v)
		}
		out[seriesKey(r.Metric)] = points
	}
	return out
}
