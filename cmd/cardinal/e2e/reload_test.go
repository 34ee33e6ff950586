package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// Reload tests: docs/design.md §1 (hot reload by SIGHUP, POST /-/reload or the file changing) and
// the reload contract of the aggregator: a rule whose definition did not change keeps its
// state, a removed rule flushes its open windows and stops, a changed rule flushes the old
// definition's windows and starts fresh, an invalid configuration changes nothing.

// rlStep is the scrape interval of the reload history and the window of its rules.
const rlStep = 15 * time.Second

// rlFlushDelay is the rules' flush_delay. The pusher never pauses this long, so windows close
// only as the pushed history moves on, never by the wall clock, until the pushes end.
const rlFlushDelay = 5 * time.Second

// newReloadHistory is synthetic scrape history for the reload test, one request per 15 s
// step from start, oldest first. Three counters, each from 2 jobs × 6 pods on two nodes
// (instance):
//   - rl_a_total (rule a, never touched): increases that vary with the step, a pod that
//     starts late, a counter reset, and a pod replaced by a new one (stale marker) half way;
//   - rl_b_total (rule b, changed) and rl_c_total (rule c, removed): every series grows by
//     a constant amount per step, so one lost baseline costs exactly one step's increase.
//
// Values are integers, so every expected sum is exact in float64.
func newReloadHistory(start time.Time, steps int) *syntheticHistory {
	h := newSyntheticHistory(start, rlStep)
	resetStep, churnStep := steps/3+7, steps/2
	values := map[string]float64{}
	for i := range steps {
		h.scrape()
		for _, metric := range []string{"rl_a_total", "rl_b_total", "rl_c_total"} {
			for ji, job := range []string{"api", "web"} {
				for p := range 6 {
					instance := fmt.Sprintf("node-%d", p%2)
					gen := 0
					if metric == "rl_a_total" {
						if job == "web" && p == 4 && i < rlLatePodStep {
							continue
						}
						if job == "api" && p == 5 && i >= churnStep {
							gen = 1
						}
					}
					pod := fmt.Sprintf("%s-%d-%d", job, p, gen)
					if metric == "rl_a_total" && job == "api" && p == 5 && i == churnStep {
						// The replaced pod's series ends with a stale marker.
						h.counter(labelSet(metric, "job", job, "pod", fmt.Sprintf("%s-%d-0", job, p), "instance", instance), staleMarker)
					}
					key := metric + "/" + pod
					v, ok := values[key]
					if !ok {
						v = float64(100 * (p + 1))
					}
					switch {
					case metric == "rl_a_total" && job == "api" && p == 2 && i == resetStep:
						v = 4 // the process restarted
					case metric == "rl_a_total":
						v += float64(1 + p + 2*ji + i%3)
					default:
						v += float64(2 + p + 3*ji)
					}
					values[key] = v
					h.counter(labelSet(metric, "job", job, "pod", pod, "instance", instance), v)
				}
			}
		}
	}
	return h
}

// rlLatePodStep is the step at which web pod 4 of rl_a_total starts (a series whose first
// sample, a baseline, comes long after the rule started).
const rlLatePodStep = 25

// rlPusher pushes the history to cardinal in order from a goroutine, as an agent catching
// up would: each request is retried on 5xx (or no answer) with a bounded backoff, and the
// next one follows a pace later. Near the end it slows down until the test says it has no
// more reloads to make, so the load lasts as long as the reloads do.
type rlPusher struct {
	url      string
	requests [][]prompb.TimeSeries
	pace     time.Duration

	acked   atomic.Int64 // requests acknowledged (2xx): the next step to send
	retried atomic.Int64 // answers that were retried
	maxGap  atomic.Int64 // longest time between two acknowledgements, ns
	finish  atomic.Bool  // no more reloads: push the rest at full pace
	done    chan struct{}
	err     error // why the pusher gave up; read after done is closed
}

func startPusher(t *testing.T, url string, requests [][]prompb.TimeSeries, pace time.Duration) *rlPusher {
	p := &rlPusher{url: url, requests: requests, pace: pace, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go p.run(ctx)
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

func (p *rlPusher) run(ctx context.Context) {
	defer close(p.done)
	lastAck := time.Now()
	for i, req := range p.requests {
		deadline := time.Now().Add(30 * time.Second)
		backoff := 20 * time.Millisecond
		for {
			if ctx.Err() != nil {
				p.err = ctx.Err()
				return
			}
			code, body, err := postRW(p.url, req)
			if err == nil && code/100 == 2 {
				break
			}
			if err == nil && code/100 != 5 {
				p.err = fmt.Errorf("request %d: cardinal answered %d (%s): an agent would drop this data", i, code, body)
				return
			}
			p.retried.Add(1)
			if time.Now().After(deadline) {
				p.err = fmt.Errorf("request %d: not accepted after 30s of retries (last: %d %s %v)", i, code, body, err)
				return
			}
			time.Sleep(backoff) // the agent's backoff
			backoff = min(2*backoff, time.Second)
		}
		now := time.Now()
		if gap := int64(now.Sub(lastAck)); gap > p.maxGap.Load() {
			p.maxGap.Store(gap)
		}
		lastAck = now
		p.acked.Store(int64(i + 1))
		pace := p.pace
		if len(p.requests)-i <= 60 && !p.finish.Load() {
			pace = 250 * time.Millisecond // reloads still to come: keep the load going longer
		}
		time.Sleep(pace)
	}
}

// waitFor waits until at least n requests are acknowledged, failing if the pusher stops.
func (p *rlPusher) waitFor(t *testing.T, n int) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("the pusher to reach request %d", n), func() (bool, error) {
		select {
		case <-p.done:
			if p.acked.Load() < int64(n) {
				t.Fatalf("the pusher stopped at request %d of %d before reaching %d: %v", p.acked.Load(), len(p.requests), n, p.err)
			}
		default:
		}
		return p.acked.Load() >= int64(n), fmt.Errorf("at %d", p.acked.Load())
	})
}

// configMapDir is a directory laid out as Kubernetes mounts a ConfigMap: every key is a
// symlink NAME -> ..data/NAME, ..data is a symlink to a timestamped directory holding the
// content, and an update writes a new timestamped directory, renames a new ..data symlink
// over the old one (one atomic step), adds and removes the key symlinks, and deletes the old
// directory, as kubelet's AtomicWriter does. The paths a program opens never change; what
// they resolve to does.
type configMapDir struct {
	t    testing.TB
	dir  string
	gen  int
	keys []string
	cur  string // the timestamped directory ..data points to
}

func newConfigMapDir(t testing.TB, dir string, files map[string]string) *configMapDir {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &configMapDir{t: t, dir: dir}
	c.update(files)
	return c
}

// update replaces the whole content: files maps key (file name) to content.
func (c *configMapDir) update(files map[string]string) {
	c.t.Helper()
	c.gen++
	ts := fmt.Sprintf("..%s.%09d", time.Now().UTC().Format("2006_01_02_15_04_05"), c.gen)
	must := func(err error) {
		c.t.Helper()
		if err != nil {
			c.t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	var keys []string
	for name, content := range files {
		must(os.WriteFile(filepath.Join(c.dir, ts, name), []byte(content), 0o644))
		keys = append(keys, name)
	}
	slices.Sort(keys)
	must(os.Symlink(ts, filepath.Join(c.dir, "..data_tmp")))
	must(os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")))
	for _, name := range keys {
		if !slices.Contains(c.keys, name) {
			must(os.Symlink(filepath.Join("..data", name), filepath.Join(c.dir, name)))
		}
	}
	for _, name := range c.keys {
		if !slices.Contains(keys, name) {
			must(os.Remove(filepath.Join(c.dir, name)))
		}
	}
	if c.cur != "" {
		must(os.RemoveAll(filepath.Join(c.dir, c.cur)))
	}
	c.keys, c.cur = keys, ts
}

// reloadStatus is cardinal's reload self-metrics.
func reloadStatus(t testing.TB, c *cardinalServer) (ok, stamp float64) {
	t.Helper()
	ms := scrapeCardinal(t, c.URL)
	ok, _ = metricValue(ms, "cardinal_config_last_reload_successful")
	stamp, _ = metricValue(ms, "cardinal_config_last_reload_success_timestamp_seconds")
	return ok, stamp
}

// statusRules returns the rules table of the status page, by rule name.
func statusRules(t testing.TB, c *cardinalServer) map[string]statusRuleRow {
	t.Helper()
	code, _, page := httpGet(t, c.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	rules, _ := parseStatusPage(t, page)
	return rules
}

// rawSamples returns every sample stored for selector in the rng before at, per series.
func rawSamples(t testing.TB, promURL, selector string, rng time.Duration, at time.Time) map[string][]point {
	t.Helper()
	return querySamples(t, promURL, fmt.Sprintf("%s[%ds]", selector, int(rng.Seconds())), at)
}

// noteLingering logs whether an output series that stopped at a reload still answers an
// instant query a minute after its last sample, i.e. ended without a stale marker and so
// lingers for Prometheus's lookback period (sum() over it and its successor double counts
// meanwhile). The issue does not ask for stale markers here, so this is an observation.
func noteLingering(t testing.TB, promURL, what, key string, lastT int64) {
	t.Helper()
	if v := query(t, promURL, key, time.UnixMilli(lastT).Add(time.Minute)); len(v) > 0 {
		t.Logf("note: %s %s still answers an instant query a minute after its last sample: no stale marker when it stopped", what, key)
	}
}

// rlStage records where in the pushed history a reload happened: every request before lo
// was acknowledged before the new files were on disk, every request from hi+1 on was sent
// after the reload had been applied (request hi may have been in flight).
type rlStage struct{ lo, hi int }

func (s rlStage) String() string { return fmt.Sprintf("requests %d..%d", s.lo, s.hi) }

const (
	rlRuleA = `  - name: a
    metric_name: rl_a_total
    type: counter
    drop_labels: [pod, instance]
`
	rlRuleBv1 = `rules:
  - name: b
    metric_name: rl_b_total
    type: counter
    drop_labels: [pod]
`
	rlRuleBv2 = `rules:
  - name: b
    metric_name: rl_b_total
    type: counter
    drop_labels: [pod, instance]
`
	// rlRuleBInvalid has its error on line 4.
	rlRuleBInvalid = `rules:
  - name: b
    metric_name: rl_b_total
    type: nonsense
    drop_labels: [pod, instance]
`
	rlRuleC = `rules:
  - name: c
    metric_name: rl_c_total
    type: counter
    drop_labels: [pod, instance]
`
	// rlRuleAD rewrites a's file: a comment, a moved (but identical) rule a, and a new rule
	// d on the same input metric.
	rlRuleAD = `# team A: d added while a keeps running
rules:
` + rlRuleA + `  - name: d
    metric_name: rl_a_total
    type: counter
    drop_labels: [pod]
    output_name: rl_d_total
`
)

// TestReload_under_load_keeps_untouched_totals pushes 100 minutes of synthetic counter
// history through cardinal into a real Prometheus from a background goroutine, without
// pause, while the test reloads the rule files (a Kubernetes-ConfigMap-style directory)
// five times: SIGHUP after changing rule b's drop_labels; POST /-/reload after deleting
// rule c's file; a file rewrite adding rule d, seen by the 1 s content check; an invalid edit
// of b's file (refused: cardinal_config_last_reload_successful 0, file:line logged, nothing
// changes); and the fix. Then, in Prometheus:
//   - a, never touched, has a sample at every window end equal to the sum of every increase
//     pushed up to it, no reset, and a final total of every increase pushed; cardinal counted
//     every a sample pushed and dropped none (its state was never replaced);
//   - b's old output ({job, instance}) stops at the reload and its new one ({job}) starts
//     after it; the two together lose exactly one increase per input series (the baseline
//     of the fresh state), nothing more: the old definition's windows were flushed;
//   - c's output stops at its removal, with the total of what was pushed until then;
//   - d appears and totals a's increases from its first request on.
//
// The file check runs throughout, so the SIGHUP and POST stages could in principle be applied
// by it instead; their logged latency (milliseconds, against up to a second for the check)
// shows which did, and TestReload_sighup_alone_reloads pins SIGHUP with the check off.
func TestReload_under_load_keeps_untouched_totals(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	dir := t.TempDir()
	configPath := filepath.Join(dir, "cardinal.yaml")
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: %s
  unmatched: drop
downstream:
  remote_write:
    - url: %s
      name: downstream
rule_files: [rules/*.yaml]
`, rlStep, rlFlushDelay, prom.WriteURL)), 0o644); err != nil {
		t.Fatal(err)
	}
	rulesDir := filepath.Join(dir, "rules")
	files := map[string]string{"a.yaml": "rules:\n" + rlRuleA, "b.yaml": rlRuleBv1, "c.yaml": rlRuleC}
	cm := newConfigMapDir(t, rulesDir, files)
	card := startCardinalWithConfig(t, configPath,
		"--web.enable-lifecycle", "--config.check-interval=1s", "--aggregator.flush-tick=100ms")
	if rules := statusRules(t, card); len(rules) != 3 {
		t.Fatalf("rules at start: %v, want a, b, c", rules)
	}

	const steps = 400
	// The history ends well before now: the pushes take a while, and no sample may be in
	// the future.
	start := time.Now().Truncate(rlStep).Add(-steps*rlStep - 2*time.Minute).Add(7 * time.Second)
	h := newReloadHistory(start, steps)
	began := time.Now()
	pusher := startPusher(t, card.WriteURL, h.requests, 30*time.Millisecond)

	// stage changes the rule files, triggers a reload with trigger, and waits until applied
	// says it has been; it returns where in the history that happened.
	stage := func(what string, at int, change map[string]string, trigger func(), applied func() (bool, error)) rlStage {
		t.Helper()
		pusher.waitFor(t, at)
		lo := int(pusher.acked.Load())
		t0 := time.Now()
		maps.Copy(files, change)
		for name, content := range change {
			if content == "" {
				delete(files, name)
			}
		}
		cm.update(files)
		if trigger != nil {
			trigger()
		}
		eventually(t, 15*time.Second, what, applied)
		s := rlStage{lo: lo, hi: int(pusher.acked.Load())}
		t.Logf("%s: applied %s after the change, during %s", what, time.Since(t0).Round(time.Millisecond), s)
		return s
	}
	reloadedSince := func(before float64) func() (bool, error) {
		return func() (bool, error) {
			ok, stamp := reloadStatus(t, card)
			return ok == 1 && stamp > before, fmt.Errorf("reload successful %v, last success at %v (before: %v)", ok, stamp, before)
		}
	}

	// 1. SIGHUP: b now drops instance too.
	_, before := reloadStatus(t, card)
	stageB := stage("SIGHUP reload changing b", 30, map[string]string{"b.yaml": rlRuleBv2}, func() {
		if err := card.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}, reloadedSince(before))

	// 2. POST /-/reload: c's file is gone (a key removed from the ConfigMap).
	_, before = reloadStatus(t, card)
	stageC := stage("POST /-/reload removing c", 80, map[string]string{"c.yaml": ""}, func() {
		if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusOK {
			t.Fatalf("POST /-/reload: %d %q, want 200", code, body)
		}
	}, reloadedSince(before))
	if rules := statusRules(t, card); len(rules) != 2 || rules["c"] != (statusRuleRow{}) {
		t.Errorf("rules after removing c: %v, want a and b", rules)
	}

	// 3. The file check: a's file rewritten with d added, nothing else done.
	_, before = reloadStatus(t, card)
	stageD := stage("file-change reload adding d", 130, map[string]string{"a.yaml": rlRuleAD}, nil, reloadedSince(before))
	if rules := statusRules(t, card); len(rules) != 3 || rules["d"].Type != "counter" {
		t.Errorf("rules after adding d: %v, want a, b, d", rules)
	}

	// 4. An invalid edit of b's file: refused, logged with file and line, nothing changes.
	stage("file-change reload of an invalid b", 200, map[string]string{"b.yaml": rlRuleBInvalid}, nil, func() (bool, error) {
		ok, _ := reloadStatus(t, card)
		return ok == 0, fmt.Errorf("cardinal_config_last_reload_successful = %v, want 0", ok)
	})
	if where := filepath.Join(rulesDir, "b.yaml") + ":4:"; !strings.Contains(card.Log(), where) {
		t.Errorf("the failed reload's log does not name %q (the invalid line)", where)
	}
	if code, _, _ := httpGet(t, card.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("GET /-/ready after a failed reload: %d, want 200", code)
	}
	if rules := statusRules(t, card); len(rules) != 3 || rules["a"].In == 0 || rules["b"].In == 0 || rules["d"].In == 0 {
		t.Errorf("rules after a failed reload: %v, want a, b and d still running with their inputs", rules)
	}
	n := int(pusher.acked.Load())
	pusher.waitFor(t, n+5) // requests are still accepted

	// 5. The fix.
	stage("file-change reload fixing b", 270, map[string]string{"b.yaml": rlRuleBv2}, nil, func() (bool, error) {
		ok, _ := reloadStatus(t, card)
		return ok == 1, fmt.Errorf("cardinal_config_last_reload_successful = %v, want 1", ok)
	})
	pusher.finish.Store(true)

	select {
	case <-pusher.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the pusher has not finished 60s after the last reload (at request %d of %d)", pusher.acked.Load(), steps)
	}
	if pusher.err != nil {
		t.Fatalf("pusher: %v", pusher.err)
	}
	t.Logf("pushed %d requests in %s (%d retried answers, longest gap between acknowledgements %s)",
		steps, time.Since(began).Round(time.Millisecond), pusher.retried.Load(), time.Duration(pusher.maxGap.Load()).Round(time.Millisecond))
	if gap := time.Duration(pusher.maxGap.Load()); gap >= rlFlushDelay {
		t.Errorf("the pusher paused %s, longer than flush_delay %s: windows may have closed by the wall clock, and the per-window checks below do not hold for that (is the machine overloaded?)", gap, rlFlushDelay)
	}

	// The last windows close by the wall clock once the rules hear nothing for flush_delay.
	lastWindowEnd := ceilTime(h.at(steps-1), rlStep)
	// (timestamp() gives sample times only when applied to a selector directly.)
	eventually(t, 30*time.Second, "the window of the last request to reach Prometheus for a, b and d", func() (bool, error) {
		for _, sel := range []string{`rl_a_total`, `rl_b_total{instance=""}`, `rl_d_total`} {
			v := query(t, prom.URL, `min(timestamp(`+sel+`))`, time.Now())
			if v["{}"] < float64(lastWindowEnd.Unix()) {
				return false, fmt.Errorf("%s: newest sample of the least recent series at %v, want ≥ %d", sel, v, lastWindowEnd.Unix())
			}
		}
		return true, nil
	})
	at := time.Now()
	rng := at.Sub(h.at(0)) + time.Hour

	// a: untouched, so exact at every window end and never reset.
	firstEmitted := ceilTime(h.at(0), rlStep).Add(rlStep) // the first window is partial
	gotA := rawSamples(t, prom.URL, "rl_a_total", rng, at)
	if len(gotA) != 2 {
		t.Fatalf("rl_a_total: %d series %v, want 2 (one per job)", len(gotA), keys(gotA))
	}
	for _, job := range []string{"api", "web"} {
		key := seriesKey(map[string]string{"__name__": "rl_a_total", "job": job})
		points := gotA[key]
		byT := map[int64]float64{}
		for _, p := range points {
			byT[p.T] = p.V
			if p.T < firstEmitted.UnixMilli() {
				t.Errorf("a %s: a sample at %s, before the first complete window", key, time.UnixMilli(p.T).UTC().Format(time.TimeOnly))
			}
		}
		bad := 0
		for w := firstEmitted; !w.After(lastWindowEnd); w = w.Add(rlStep) {
			want := h.totalAt(w.UnixMilli(), ofMetric("rl_a_total", "job", job))
			got, ok := byT[w.UnixMilli()]
			if !ok || got != want {
				if bad < 5 {
					t.Errorf("a %s at %s: %v (present %v), want %v (the increases pushed up to then)", key, w.UTC().Format(time.TimeOnly), got, ok, want)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("a %s: %d of %d window ends wrong (reloads at b %s, c %s, d %s)", key, bad, int(lastWindowEnd.Sub(firstEmitted)/rlStep)+1, stageB, stageC, stageD)
		}
		final := h.sum(ofMetric("rl_a_total", "job", job))
		if n := len(points); n == 0 || points[n-1].V != final {
			t.Errorf("a %s: final samples %v, want a total of %v, every increase pushed", key, points[max(0, n-3):], final)
		}
	}
	for key, n := range query(t, prom.URL, fmt.Sprintf(`resets(rl_a_total[%ds])`, int(rng.Seconds())), at) {
		if n != 0 {
			t.Errorf("a %s resets %v times downstream, want 0", key, n)
		}
	}
	ms := scrapeCardinal(t, card.URL)
	if v, n := metricValue(ms, "cardinal_aggregator_samples_total", "rule", "a"); n != 1 || v != float64(h.countCounters(ofMetric("rl_a_total"))) {
		t.Errorf("cardinal_aggregator_samples_total{rule=a} = %v (%d series), want %d, every a sample pushed: the rule's state was replaced or samples were lost", v, n, h.countCounters(ofMetric("rl_a_total")))
	}
	if v, n := metricValue(ms, "cardinal_aggregator_samples_dropped_total", "rule", "a"); n == 0 || v != 0 {
		t.Errorf("cardinal_aggregator_samples_dropped_total{rule=a} = %v (%d series), want 0", v, n)
	}
	if _, n := metricValue(ms, "cardinal_aggregator_input_series", "rule", "c"); n != 0 {
		t.Errorf("the removed rule c still has self-metrics")
	}

	// b: the old output ({job, instance}) ends at the reload, the new one ({job}) starts
	// after it, and together they lose only the new state's baselines.
	gotB := rawSamples(t, prom.URL, "rl_b_total", rng, at)
	if len(gotB) != 6 {
		t.Errorf("rl_b_total: %d series %v, want 6: 4 of the old definition (job, instance), 2 of the new (job)", len(gotB), keys(gotB))
	}
	stepEnd := func(i int) int64 { return ceilTime(h.at(i), rlStep).UnixMilli() }
	for _, job := range []string{"api", "web"} {
		combined := 0.0
		var oldLast, newFirst int64 = 0, math.MaxInt64
		for _, inst := range []string{"node-0", "node-1"} {
			key := seriesKey(map[string]string{"__name__": "rl_b_total", "job": job, "instance": inst})
			points := gotB[key]
			if len(points) == 0 {
				t.Errorf("b's old output %s: no samples", key)
				continue
			}
			last := points[len(points)-1]
			oldLast = max(oldLast, last.T)
			combined += last.V
			noteLingering(t, prom.URL, "b's old output", key, last.T)
			if last.T < stepEnd(stageB.lo-1) || last.T > stepEnd(stageB.hi) {
				t.Errorf("b's old output %s: last sample at %s, want the window of the reload (%s..%s, %s)", key,
					time.UnixMilli(last.T).UTC().Format(time.TimeOnly), time.UnixMilli(stepEnd(stageB.lo-1)).UTC().Format(time.TimeOnly),
					time.UnixMilli(stepEnd(stageB.hi)).UTC().Format(time.TimeOnly), stageB)
			}
		}
		key := seriesKey(map[string]string{"__name__": "rl_b_total", "job": job})
		points := gotB[key]
		if len(points) == 0 {
			t.Errorf("b's new output %s: no samples", key)
			continue
		}
		newFirst = points[0].T
		combined += points[len(points)-1].V
		if newFirst <= oldLast || newFirst > stepEnd(stageB.hi+1)+rlStep.Milliseconds() {
			t.Errorf("b's new output %s starts at %s, want after the old output's last sample (%s) and within a window of the reload (%s)", key,
				time.UnixMilli(newFirst).UTC().Format(time.TimeOnly), time.UnixMilli(oldLast).UTC().Format(time.TimeOnly), stageB)
		}
		all := h.sum(ofMetric("rl_b_total", "job", job))
		// Every b series grows by a constant per step: the baseline the fresh state takes
		// of each costs one step's increase, whichever step it was.
		oneStep := h.sum(func(s counterSample) bool { return ofMetric("rl_b_total", "job", job)(s) && s.step == 1 })
		if want := all - oneStep; combined != want {
			t.Errorf("b job %s: old and new final totals add up to %v, want %v (every increase pushed, %v, less one step's, %v, for the new state's baselines): %v lost",
				job, combined, want, all, oneStep, want-combined)
		}
	}

	// c: stops at its removal, with everything pushed until then.
	gotC := rawSamples(t, prom.URL, "rl_c_total", rng, at)
	if len(gotC) != 2 {
		t.Errorf("rl_c_total: %d series %v, want 2", len(gotC), keys(gotC))
	}
	for _, job := range []string{"api", "web"} {
		key := seriesKey(map[string]string{"__name__": "rl_c_total", "job": job})
		points := gotC[key]
		if len(points) == 0 {
			t.Errorf("c %s: no samples", key)
			continue
		}
		last := points[len(points)-1]
		if last.T < stepEnd(stageC.lo-1) || last.T > stepEnd(stageC.hi) {
			t.Errorf("c %s: last sample at %s, want it in the window of the removal (%s..%s, %s)", key,
				time.UnixMilli(last.T).UTC().Format(time.TimeOnly), time.UnixMilli(stepEnd(stageC.lo-1)).UTC().Format(time.TimeOnly),
				time.UnixMilli(stepEnd(stageC.hi)).UTC().Format(time.TimeOnly), stageC)
		}
		var candidates []float64
		for s := stageC.lo - 1; s <= stageC.hi; s++ {
			candidates = append(candidates, h.sum(func(x counterSample) bool { return ofMetric("rl_c_total", "job", job)(x) && x.step <= s }))
		}
		if !slices.Contains(candidates, last.V) {
			t.Errorf("c %s: final total %v, want the increases pushed until the removal, one of %v (%s)", key, last.V, candidates, stageC)
		}
		noteLingering(t, prom.URL, "removed c", key, last.T)
	}

	// d: appears, and totals a's increases after its first request.
	gotD := rawSamples(t, prom.URL, "rl_d_total", rng, at)
	if len(gotD) != 4 {
		t.Errorf("rl_d_total: %d series %v, want 4 (job, instance)", len(gotD), keys(gotD))
	}
	for key, points := range gotD {
		var job, inst string
		for _, j := range []string{"api", "web"} {
			for _, i := range []string{"node-0", "node-1"} {
				if key == seriesKey(map[string]string{"__name__": "rl_d_total", "job": j, "instance": i}) {
					job, inst = j, i
				}
			}
		}
		if job == "" {
			t.Errorf("unexpected d series %s", key)
			continue
		}
		if first := points[0].T; first <= stepEnd(stageD.lo-1) || first > stepEnd(stageD.hi+1)+rlStep.Milliseconds() {
			t.Errorf("d %s: first sample at %s, want within a window after its reload (%s)", key, time.UnixMilli(first).UTC().Format(time.TimeOnly), stageD)
		}
		var candidates []float64
		for s := stageD.lo; s <= stageD.hi+1; s++ {
			candidates = append(candidates, h.sum(func(x counterSample) bool {
				return ofMetric("rl_a_total", "job", job, "instance", inst)(x) && x.step > s
			}))
		}
		if last := points[len(points)-1].V; !slices.Contains(candidates, last) {
			t.Errorf("d %s: final total %v, want a's increases after d's first request, one of %v (%s)", key, last, candidates, stageD)
		}
	}
}

// TestReload_config_symlink_swap_is_seen mounts the main config file the way Kubernetes
// mounts a ConfigMap (cardinal.yaml -> ..data/cardinal.yaml, ..data -> a timestamped
// directory, updated by renaming a new ..data symlink over the old one). The path cardinal
// was given never changes, only what it resolves to, so only a check by content sees the
// update: within a few --config.check-interval periods a rule added this way is running and
// the unchanged rule kept its input series; an invalid swap is refused (reload metric 0, the
// file and line logged) and the next good one is applied.
func TestReload_config_symlink_swap_is_seen(t *testing.T) {
	dir := t.TempDir()
	const base = `aggregator:
  flush_interval: 15s
downstream:
  file:
    path: %s
rules:
  - name: kept
    metric_name: sw_requests_total
    type: counter
    drop_labels: [pod]
`
	out := filepath.Join(t.TempDir(), "out.prom")
	conf := filepath.Join(dir, "conf")
	cm := newConfigMapDir(t, conf, map[string]string{"cardinal.yaml": fmt.Sprintf(base, out)})
	configPath := filepath.Join(conf, "cardinal.yaml")
	const checkInterval = time.Second
	card := startCardinalWithConfig(t, configPath, "--config.check-interval="+checkInterval.String())

	ms := time.Now().UnixMilli()
	var series []prompb.TimeSeries
	for p := range 3 {
		series = append(series, prompb.TimeSeries{
			Labels:  labelSet("sw_requests_total", "job", "api", "pod", fmt.Sprint(p)),
			Samples: []prompb.Sample{{Timestamp: ms, Value: 1}},
		})
	}
	if code := pushRW(t, card.WriteURL, series); code/100 != 2 {
		t.Fatalf("push: status %d", code)
	}
	if rules := statusRules(t, card); len(rules) != 1 || rules["kept"].In != 3 {
		t.Fatalf("rules at start: %v, want kept with 3 inputs", rules)
	}
	_, before := reloadStatus(t, card)

	added := fmt.Sprintf(base, out) + `  - name: added
    metric_name: sw_mem_bytes
    type: gauge
    drop_labels: [pod]
`
	oldTarget, _ := os.Readlink(filepath.Join(conf, "..data"))
	cm.update(map[string]string{"cardinal.yaml": added})
	if _, err := os.Stat(filepath.Join(conf, oldTarget)); !os.IsNotExist(err) {
		t.Fatalf("the swap left the old directory %s behind (%v): the test does not model a ConfigMap update", oldTarget, err)
	}
	t0 := time.Now()
	eventually(t, 5*checkInterval, "the swapped config to be applied", func() (bool, error) {
		rules := statusRules(t, card)
		return len(rules) == 2 && rules["added"].Type == "gauge", fmt.Errorf("rules %v", rules)
	})
	t.Logf("swap applied after %s", time.Since(t0).Round(time.Millisecond))
	if rules := statusRules(t, card); rules["kept"].In != 3 {
		t.Errorf("after the reload, kept = %+v, want its 3 input series kept", rules["kept"])
	}
	if ok, stamp := reloadStatus(t, card); ok != 1 || stamp <= before {
		t.Errorf("after the swap: reload successful %v, last success %v (before %v); want 1 and a newer time", ok, stamp, before)
	}

	// An invalid swap: line 9 of the new file has an unknown type.
	invalid := strings.Replace(added, "type: counter", "type: countre", 1)
	cm.update(map[string]string{"cardinal.yaml": invalid})
	eventually(t, 5*checkInterval, "the invalid swap to be refused", func() (bool, error) {
		ok, _ := reloadStatus(t, card)
		return ok == 0, fmt.Errorf("cardinal_config_last_reload_successful = %v", ok)
	})
	if where := configPath + ":9:"; !strings.Contains(card.Log(), where) {
		t.Errorf("the failed reload's log does not name %q", where)
	}
	if rules := statusRules(t, card); len(rules) != 2 || rules["kept"].In != 3 {
		t.Errorf("after a refused reload the rules changed: %v", rules)
	}
	// The good config again (the same as the running one).
	cm.update(map[string]string{"cardinal.yaml": added})
	eventually(t, 5*checkInterval, "the fixed swap to be accepted", func() (bool, error) {
		ok, _ := reloadStatus(t, card)
		return ok == 1, fmt.Errorf("cardinal_config_last_reload_successful = %v", ok)
	})
}

// TestReload_new_rule_file_matching_glob_is_seen adds a key to, and removes one from, a
// ConfigMap-style rules directory that rule_files globs (rules/*.yaml). The issue asks for a
// reload when "a config or rule file changes on disk"; a rule file that appears is such a
// change (Prometheus's own config auto-reload expands the rule_files globs again on every
// check), and in Kubernetes it is how a team adds its rules. Each case starts its own cardinal
// so that no earlier reload is pending when the change is made.
func TestReload_new_rule_file_matching_glob_is_seen(t *testing.T) {
	ruleFile := func(name string) string {
		return fmt.Sprintf("rules:\n  - name: %s\n    metric_name: gl_%s_total\n    type: counter\n    drop_labels: [pod]\n", name, name)
	}
	const checkInterval = time.Second
	run := func(t *testing.T, before, after map[string]string, want []string) {
		dir := t.TempDir()
		configPath := filepath.Join(dir, "cardinal.yaml")
		if err := os.WriteFile(configPath, []byte(fmt.Sprintf(`aggregator:
  flush_interval: 15s
downstream:
  file:
    path: %s
rule_files: [rules/*.yaml]
`, filepath.Join(dir, "out.prom"))), 0o644); err != nil {
			t.Fatal(err)
		}
		cm := newConfigMapDir(t, filepath.Join(dir, "rules"), before)
		card := startCardinalWithConfig(t, configPath, "--config.check-interval="+checkInterval.String())
		if rules := statusRules(t, card); len(rules) != len(before) {
			t.Fatalf("rules at start: %v, want %d", rules, len(before))
		}
		cm.update(after)
		eventually(t, 5*checkInterval, fmt.Sprintf("the rules to become %v after the rules directory changed", want), func() (bool, error) {
			rules := statusRules(t, card)
			got := slices.Sorted(maps.Keys(rules))
			return slices.Equal(got, want), fmt.Errorf("rules %v", got)
		})
	}
	t.Run("file_added", func(t *testing.T) {
		run(t, map[string]string{"a.yaml": ruleFile("a")},
			map[string]string{"a.yaml": ruleFile("a"), "c.yaml": ruleFile("c")}, []string{"a", "c"})
	})
	t.Run("file_removed", func(t *testing.T) {
		run(t, map[string]string{"a.yaml": ruleFile("a"), "b.yaml": ruleFile("b")},
			map[string]string{"a.yaml": ruleFile("a")}, []string{"a"})
	})
}

// TestReload_sighup_alone_reloads runs with the file check off (--config.check-interval=0),
// so that only the signal can be what applies the change: after SIGHUP the changed rule file
// is running and the unchanged rule kept its input series.
func TestReload_sighup_alone_reloads(t *testing.T) {
	dir := t.TempDir()
	configPath := filepath.Join(dir, "cardinal.yaml")
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf(`aggregator:
  flush_interval: 15s
downstream:
  file:
    path: %s
rule_files: [rules.yaml]
`, filepath.Join(dir, "out.prom"))), 0o644); err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.yaml")
	ruleA := "rules:\n  - name: a\n    metric_name: hup_a_total\n    type: counter\n    drop_labels: [pod]\n"
	ruleB := "  - name: b\n    metric_name: hup_b_total\n    type: counter\n    drop_labels: [pod]\n"
	if err := os.WriteFile(rulesPath, []byte(ruleA), 0o644); err != nil {
		t.Fatal(err)
	}
	card := startCardinalWithConfig(t, configPath, "--config.check-interval=0")
	ms := time.Now().UnixMilli()
	if code := pushRW(t, card.WriteURL, []prompb.TimeSeries{
		{Labels: labelSet("hup_a_total", "pod", "0"), Samples: []prompb.Sample{{Timestamp: ms, Value: 1}}},
		{Labels: labelSet("hup_a_total", "pod", "1"), Samples: []prompb.Sample{{Timestamp: ms, Value: 1}}},
	}); code/100 != 2 {
		t.Fatalf("push: status %d", code)
	}
	if err := os.WriteFile(rulesPath, []byte(ruleA+ruleB), 0o644); err != nil {
		t.Fatal(err)
	}
	if rules := statusRules(t, card); len(rules) != 1 {
		t.Fatalf("with the file check off, the rules changed before any signal: %v", rules)
	}
	if err := card.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "SIGHUP to apply the new rule file", func() (bool, error) {
		rules := statusRules(t, card)
		return len(rules) == 2 && rules["b"].Type == "counter", fmt.Errorf("rules %v", rules)
	})
	if rules := statusRules(t, card); rules["a"].In != 2 {
		t.Errorf("after SIGHUP, a = %+v, want its 2 input series kept", rules["a"])
	}
	if !card.proc.running() {
		t.Errorf("cardinal exited on SIGHUP")
	}
}

// TestReload_changed_rule_loses_only_its_baselines reloads a changed rule many times while
// large requests arrive two at a time, without pause. Every reload replaces rule b by a new
// definition (a new output_name each time), so each input series of b loses exactly one
// increase per reload: the baseline its fresh state takes. Anything more means a sample
// accepted during a reload went to the old definition after its windows were flushed, and
// was lost. Rule a, untouched, must end at every increase pushed.
func TestReload_changed_rule_loses_only_its_baselines(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.prom")
	configPath := filepath.Join(dir, "cardinal.yaml")
	config := func(gen int) string {
		return fmt.Sprintf(`aggregator:
  flush_interval: 15s
  flush_delay: 5s
  unmatched: drop
downstream:
  file:
    path: %s
rules:
  - name: a
    metric_name: cr_a_total
    type: counter
    drop_labels: [pod]
  - name: b
    metric_name: cr_b_total
    type: counter
    drop_labels: [pod]
    output_name: cr_b_gen%d_total
`, out, gen)
	}
	if err := os.WriteFile(configPath, []byte(config(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	card := startCardinalWithConfig(t, configPath, "--web.enable-lifecycle", "--config.check-interval=0", "--aggregator.flush-tick=100ms")

	const (
		steps   = 600
		pods    = 500 // per metric and half: each request holds 1000 series
		reloads = 100
	)
	incOf := func(metric string, half, pod int) float64 {
		if metric == "cr_a_total" {
			return float64(1 + (pod+half)%5)
		}
		return float64(1 + (pod+half)%7)
	}
	start := time.Now().Truncate(rlStep).Add(-steps*rlStep - time.Minute).Add(7 * time.Second)
	request := func(step, half int) []prompb.TimeSeries {
		ms := start.Add(time.Duration(step) * rlStep).UnixMilli()
		series := make([]prompb.TimeSeries, 0, 2*pods)
		for _, metric := range []string{"cr_a_total", "cr_b_total"} {
			for p := range pods {
				v := 1000 + float64(p) + float64(step)*incOf(metric, half, p)
				series = append(series, prompb.TimeSeries{
					Labels:  labelSet(metric, "job", fmt.Sprintf("job-%d", p%2), "pod", fmt.Sprintf("pod-%d-%d", half, p)),
					Samples: []prompb.Sample{{Timestamp: ms, Value: v}},
				})
			}
		}
		return series
	}
	var acked atomic.Int64
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for step := range steps {
			errs := make(chan error, 2)
			for half := range 2 {
				go func() {
					req := request(step, half)
					deadline := time.Now().Add(30 * time.Second)
					for {
						code, body, err := postRW(card.WriteURL, req)
						switch {
						case err == nil && code/100 == 2:
							errs <- nil
							return
						case err == nil && code/100 != 5:
							errs <- fmt.Errorf("step %d: %d %s", step, code, body)
							return
						case time.Now().After(deadline) || ctx.Err() != nil:
							errs <- fmt.Errorf("step %d: not accepted: %d %s %v", step, code, body, err)
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					done <- err
					return
				}
			}
			acked.Store(int64(step + 1))
		}
		done <- nil
	}()

	// waitAcked polls tightly (eventually's 50 ms is many requests here).
	waitAcked := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); acked.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("step %d not acknowledged after 30s (at %d)", n, acked.Load())
			}
		}
	}
	last := int64(2)
	for gen := 1; gen <= reloads; gen++ {
		// Every generation sees at least two whole requests of every series.
		if last+3 > steps-3 {
			t.Fatalf("the pushes ran out after %d reloads (at step %d of %d): the machine reloads too slowly for this test", gen-1, last, steps)
		}
		waitAcked(last + 3)
		if err := os.WriteFile(configPath, []byte(config(gen)), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusOK {
			t.Fatalf("reload %d: %d %s", gen, code, body)
		}
		last = acked.Load()
	}
	if last+3 > steps {
		t.Fatalf("the last reload came too late to be tested (at step %d of %d)", last, steps)
	}
	t.Logf("%d reloads, the last at step %d of %d", reloads, last, steps)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("pushes not done after 60s (at step %d)", acked.Load())
	}

	// Final totals: the last value written for each output series.
	wantA, wantB, oneStepB := 0.0, 0.0, 0.0
	for half := range 2 {
		for p := range pods {
			wantA += float64(steps-1) * incOf("cr_a_total", half, p)
			wantB += float64(steps-1) * incOf("cr_b_total", half, p)
			oneStepB += incOf("cr_b_total", half, p)
		}
	}
	wantB -= reloads * oneStepB
	lastWindowEnd := ceilTime(start.Add((steps-1)*rlStep), rlStep).UnixMilli()
	var gotA, gotB float64
	var stepsBack []string // a's output going back in time or value
	eventually(t, 30*time.Second, "the last window of a and of b's last definition in the file downstream", func() (bool, error) {
		type sample struct {
			t int64
			v float64
		}
		lastOf := map[string]sample{}
		stepsBack = nil
		data, err := os.ReadFile(out)
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			sp := strings.LastIndexByte(line, ' ')
			m, err := parseMetricLine(line[:sp])
			if err != nil {
				return false, fmt.Errorf("%q: %v", line, err)
			}
			var ts int64
			if _, err := fmt.Sscan(line[sp+1:], &ts); err != nil {
				return false, fmt.Errorf("%q: timestamp: %v", line, err)
			}
			key := seriesKey(map[string]string{"__name__": m.Name, "job": m.Labels["job"]})
			if prev, ok := lastOf[key]; ok && m.Name == "cr_a_total" && (ts < prev.t || m.Value < prev.v) {
				stepsBack = append(stepsBack, fmt.Sprintf("%s from %v at %d to %v at %d", key, prev.v, prev.t, m.Value, ts))
			}
			lastOf[key] = sample{ts, m.Value}
		}
		gotA, gotB = 0, 0
		newest := int64(math.MaxInt64)
		for key, s := range lastOf {
			switch {
			case strings.Contains(key, `"cr_a_total"`):
				gotA += s.v
				newest = min(newest, s.t)
			case strings.Contains(key, fmt.Sprintf(`"cr_b_gen%d_total"`, reloads)):
				gotB += s.v
				newest = min(newest, s.t)
			default:
				gotB += s.v
			}
		}
		return newest != math.MaxInt64 && newest >= lastWindowEnd, fmt.Errorf("newest sample of the least recent output at %d, want ≥ %d", newest, lastWindowEnd)
	})
	if len(stepsBack) > 0 {
		t.Errorf("a's output reset or went back %d times, e.g. %s", len(stepsBack), stepsBack[0])
	}
	if gotA != wantA {
		t.Errorf("a's final totals add up to %v, want %v, every increase pushed", gotA, wantA)
	}
	if gotB != wantB {
		t.Errorf("b's final totals over its %d definitions add up to %v, want %v (every increase pushed less one per series and reload, %v each): %v more lost, %.2f requests' worth",
			reloads+1, gotB, wantB, oneStepB, wantB-gotB, (wantB-gotB)/(oneStepB/2))
	}
}
