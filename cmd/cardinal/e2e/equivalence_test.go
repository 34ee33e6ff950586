package e2e

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// podSlots is the number of pods of each job at any time.
const podSlots = 10

// replacedAt says when the pod in a slot is replaced by a new one (a rollout, an eviction):
// the last four slots of each job churn once during the hour, at staggered times.
func replacedAt(job string, slot int) time.Duration {
	if slot < podSlots-4 {
		return 24 * time.Hour
	}
	at := time.Duration(5+12*(slot-podSlots+4)) * time.Minute // 5, 17, 29, 41 minutes in
	if job == "web" {
		at += 7 * time.Minute
	}
	return at
}

var buckets = []string{"0.1", "0.5", "1", "+Inf"}

// pod is one incarnation of a pod slot of a job.
type pod struct {
	name, instance string
	counters       map[string]float64 // code -> value
	bucketCounts   []float64
	latSum         float64
}

// newHistory is an hour of synthetic scrapes of a fleet of pods: counters with rate changes,
// a reset and pod churn; gauges scraped every 30 s; a classic histogram. Scrapes are
// scrapeEvery apart and scrapeOffset past each boundary. The series of slot 0 of each job are
// held back (syntheticHistory.held), for the test to send late.
func newHistory(end time.Time, steps int) *syntheticHistory {
	h := newSyntheticHistory(scrapesBefore(end, scrapeEvery, steps), scrapeEvery)
	jobs := []string{"api", "web"}
	codes := []string{"200", "500"}
	pods := map[string]*pod{} // job/slot -> current pod
	gen := map[string]int{}
	for i := 0; i < steps; i++ {
		h.scrape()
		minute := i / 4
		for ji, job := range jobs {
			for slot := 0; slot < podSlots; slot++ {
				h.hold(slot == 0)
				key := fmt.Sprintf("%s/%d", job, slot)
				g := 0
				if time.Duration(i)*scrapeEvery >= replacedAt(job, slot) {
					g = 1
				}
				p := pods[key]
				if p == nil || gen[key] != g {
					if p != nil {
						// The old pod disappears: its scrape series end with a stale marker.
						addPodScrape(h, job, p, codes, true)
					}
					p = &pod{
						name:         fmt.Sprintf("%s-%d-%d", job, slot, g),
						instance:     fmt.Sprintf("10.%d.%d.%d:8080", ji, slot, g%250),
						counters:     map[string]float64{"200": float64(slot), "500": 0},
						bucketCounts: make([]float64, len(buckets)),
					}
					pods[key], gen[key] = p, g
				}
				// Counters grow at a rate that changes every 10 minutes; api slot 2
				// restarts its process (counter reset) at minute 30.
				for ci, code := range codes {
					rate := float64(2+slot%4+ci*3) * (1 + float64((minute/10+slot)%3)/2)
					if ci == 1 {
						rate /= 10
					}
					p.counters[code] += rate * scrapeEvery.Seconds()
				}
				if job == "api" && slot == 2 && i == 120 {
					p.counters["200"], p.counters["500"] = 3, 0
				}
				// Latency observations: the distribution shifts with the slot and time.
				obs := []float64{float64(2 + slot), float64(3 + minute%4), float64(1 + slot%2), 1}
				cum := 0.0
				for b := range buckets {
					cum += obs[b]
					p.bucketCounts[b] += cum
				}
				p.latSum += 0.05*obs[0] + 0.3*obs[1] + 0.8*obs[2] + 2*obs[3]
				addPodScrape(h, job, p, codes, false)
				// Gauges are scraped every 30 s, half the pods on each phase.
				if i%2 == slot%2 {
					h.sample(labelSet("mem_bytes", "job", job, "pod", p.name, "instance", p.instance),
						float64(1000*(slot+1)+37*((i/2+slot)%5)))
				}
			}
		}
	}
	return h
}

// addPodScrape adds the counter and histogram series of one scrape of pod p (or their stale
// markers when the pod is gone) to the current scrape of h.
func addPodScrape(h *syntheticHistory, job string, p *pod, codes []string, stale bool) {
	val := func(v float64) float64 {
		if stale {
			return staleMarker
		}
		return v
	}
	for _, code := range codes {
		h.counter(labelSet("http_requests_total", "job", job, "code", code, "pod", p.name, "instance", p.instance), val(p.counters[code]))
	}
	for b, le := range buckets {
		h.sample(labelSet("lat_seconds_bucket", "job", job, "le", le, "pod", p.name, "instance", p.instance), val(p.bucketCounts[b]))
	}
	h.sample(labelSet("lat_seconds_count", "job", job, "pod", p.name, "instance", p.instance), val(p.bucketCounts[len(buckets)-1]))
	h.sample(labelSet("lat_seconds_sum", "job", job, "pod", p.name, "instance", p.instance), val(p.latSum))
}

// TestPromQLEquivalence is the contract of docs/design.md §3: the same hour of raw series goes to
// a "raw" Prometheus and through cardinal to an "aggregated" one, and PromQL on the
// aggregated data must answer what the equivalent aggregation on the raw data answers.
//
// Gauges must agree exactly. rate() differs by design in two places: raw rate() extrapolates
// each pod's series half a scrape past its first and last samples, where the aggregate
// counts a new pod's first sample as a baseline (pod churn: about 1% for one range); and
// Prometheus 2.x ranges are closed on the left, so at an evaluation time T that is itself a
// window end, an aggregated series has a sample exactly at T-5m and averages one increment
// more than the raw series (up to 1/20 of a rate step). The comparison evaluates at a
// second past each minute so that it measures aggregation, not that boundary.
func TestPromQLEquivalence(t *testing.T) {
	raw := startPrometheus(t, prometheusOptions{})
	agg := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 15s
  flush_delay: 10s
downstream:
  remote_write:
    - url: %s
rules:
  - metric_name: http_requests_total
    type: counter
    drop_labels: [pod, instance]
  - metric_name: mem_bytes
    type: gauge
    drop_labels: [pod, instance]
  - metric_name: lat_seconds
    type: histogram
    drop_labels: [pod, instance]
`, agg.WriteURL))

	end := time.Now().Add(-30 * time.Second)
	h := newHistory(end, 240)
	const (
		duplicateStep = 100 // this request is sent twice (an agent retry)
		lateStep      = 150 // part of this request arrives after the next one, within flush_delay
	)
	send := func(url string, series []prompb.TimeSeries) {
		if len(series) == 0 {
			return
		}
		if code := pushRW(t, url, series); code/100 != 2 {
			t.Fatalf("push to %s: status %d", url, code)
		}
	}
	for i, req := range h.requests {
		all := append(append([]prompb.TimeSeries(nil), req...), h.held[i]...)
		send(raw.WriteURL, all)
		switch i {
		case lateStep:
			send(card.WriteURL, req) // the held series held back
		case lateStep + 1:
			send(card.WriteURL, req)
			send(card.WriteURL, h.held[lateStep]) // late, but within flush_delay
			send(card.WriteURL, h.held[i])
		default:
			send(card.WriteURL, all)
		}
		if i == duplicateStep {
			send(card.WriteURL, all)
		}
	}
	last := h.lastScrape()

	// Wait until the window holding the last scrape has been flushed downstream.
	lastWindowEnd := last.Truncate(scrapeEvery).Add(scrapeEvery)
	eventually(t, 90*time.Second, "the last window to reach the aggregated Prometheus", func() (bool, error) {
		v := query(t, agg.URL, `max(timestamp(http_requests_total))`, lastWindowEnd.Add(time.Minute))
		return v["{}"] >= float64(lastWindowEnd.Unix()), nil
	})

	// Evaluate one second past each minute: see the comment on the test for why.
	from := h.start.Add(10 * time.Minute).Truncate(time.Minute).Add(time.Second)
	to := last.Add(-time.Minute).Truncate(time.Minute).Add(time.Second)
	compare(t, "counter rate", raw.URL, agg.URL,
		`sum without (pod, instance) (rate(http_requests_total[5m]))`, `rate(http_requests_total[5m])`,
		from, to, 0.005, 0.02)
	compare(t, "gauge sum", raw.URL, agg.URL,
		`sum without (pod, instance) (mem_bytes)`, `mem_bytes`,
		from, to, 1e-9, 1e-9)
	compare(t, "histogram p90", raw.URL, agg.URL,
		`histogram_quantile(0.9, sum without (pod, instance) (rate(lat_seconds_bucket[5m])))`,
		`histogram_quantile(0.9, rate(lat_seconds_bucket[5m]))`,
		from, to, 0.005, 0.02)

	// The aggregated series really are fewer: one per job and code, not one per pod.
	if n := query(t, agg.URL, `count(http_requests_total)`, to)["{}"]; n != 4 {
		t.Errorf("aggregated counter series = %v, want 4 (2 jobs × 2 codes)", n)
	}
}

// compare evaluates the raw and aggregated expressions at every minute from..to and checks
// the relative errors: the median at most maxMedian, the largest at most maxErr.
func compare(t *testing.T, what, rawURL, aggURL, rawExpr, aggExpr string, from, to time.Time, maxMedian, maxErr float64) {
	t.Helper()
	want := queryRange(t, rawURL, rawExpr, from, to, time.Minute)
	got := queryRange(t, aggURL, aggExpr, from, to, time.Minute)
	normalise := func(m map[string][]point) map[string][]point {
		out := map[string][]point{}
		for k, v := range m {
			out[stripName(k)] = v
		}
		return out
	}
	want, got = normalise(want), normalise(got)
	if len(want) == 0 {
		t.Fatalf("%s: the raw query %q returned nothing", what, rawExpr)
	}
	var errs []float64
	worst := ""
	worstErr := 0.0
	for key, ws := range want {
		gs, ok := got[key]
		if !ok {
			t.Errorf("%s: series %s missing from the aggregated result (have %v)", what, key, keys(got))
			continue
		}
		byT := map[int64]float64{}
		for _, p := range gs {
			byT[p.T] = p.V
		}
		for _, w := range ws {
			g, ok := byT[w.T]
			if !ok {
				t.Errorf("%s: %s has no aggregated value at %s", what, key, time.UnixMilli(w.T).UTC().Format(time.TimeOnly))
				continue
			}
			e := relErr(g, w.V)
			errs = append(errs, e)
			if e > worstErr {
				worstErr = e
				worst = fmt.Sprintf("%s at %s: raw %g, aggregated %g", key, time.UnixMilli(w.T).UTC().Format(time.TimeOnly), w.V, g)
			}
		}
	}
	if len(errs) < 40*len(want) {
		t.Fatalf("%s: only %d points compared for %d series", what, len(errs), len(want))
	}
	sort.Float64s(errs)
	median := errs[len(errs)/2]
	t.Logf("%s: %d points over %d series, median error %.4f%%, max %.4f%% (%s)", what, len(errs), len(want), 100*median, 100*worstErr, worst)
	if median > maxMedian || worstErr > maxErr {
		t.Errorf("%s: median error %.4f%% (limit %.2f%%), max %.4f%% (limit %.2f%%); worst: %s",
			what, 100*median, 100*maxMedian, 100*worstErr, 100*maxErr, worst)
	}
}

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-12)
}

// stripName removes __name__ from a series key: PromQL drops it from rate() results but keeps
// it on a plain selector.
func stripName(key string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(key, "{"), "}")
	var parts []string
	for _, p := range strings.Split(inner, ", ") {
		if p != "" && !strings.HasPrefix(p, "__name__=") {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}
