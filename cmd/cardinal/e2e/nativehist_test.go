package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
)

// nativeHistFlag makes Prometheus 2.42 store native histograms it receives by remote write.
const nativeHistFlag = "--enable-feature=native-histograms"

// nativePod is one pod's cumulative native histogram: observation counts by bucket index at
// the pod's schema.
type nativePod struct {
	job, name string
	schema    int32
	rng       *rand.Rand
	buckets   map[int32]uint64
	zero      uint64
	count     uint64
	sum       float64
}

// observe adds one observation v > 0.
func (p *nativePod) observe(v float64) {
	// Bucket i of schema s holds (2^((i-1)/2^s), 2^(i/2^s)].
	idx := int32(math.Ceil(math.Log2(v) * math.Exp2(float64(p.schema))))
	p.buckets[idx]++
	p.count++
	p.sum += v
}

// histogram renders the pod's state as the integer native histogram a client would send.
func (p *nativePod) histogram() *histogram.Histogram {
	h := &histogram.Histogram{Schema: p.schema, ZeroThreshold: math.Ldexp(1, -128), ZeroCount: p.zero, Count: p.count, Sum: p.sum}
	idxs := make([]int32, 0, len(p.buckets))
	for i := range p.buckets {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	var prevCount int64
	for n, i := range idxs {
		switch {
		case n == 0:
			h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: i, Length: 1})
		case i == idxs[n-1]+1:
			h.PositiveSpans[len(h.PositiveSpans)-1].Length++
		default:
			h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: i - idxs[n-1] - 1, Length: 1})
		}
		c := int64(p.buckets[i])
		h.PositiveBuckets = append(h.PositiveBuckets, c-prevCount) // deltas
		prevCount = c
	}
	return h
}

const (
	nativeMetric = "rpc_duration_seconds"
	resetStep    = 100 // api-1 restarts at this scrape
)

// newNativeHistory is synthetic scrapes of a latency native histogram from six pods of two
// jobs with different schemas (so the aggregate of each job is in the coarsest of its pods'),
// at rates and latency distributions that change every few minutes; one pod restarts (a
// counter reset) halfway. Scrapes are scrapeEvery apart and scrapeOffset past each boundary.
func newNativeHistory(end time.Time, steps int) *syntheticHistory {
	h := newSyntheticHistory(scrapesBefore(end, scrapeEvery, steps), scrapeEvery)
	schemas := map[string][]int32{"api": {3, 1, 2}, "web": {0, 2, 4}}
	var pods []*nativePod
	for _, job := range []string{"api", "web"} {
		for slot, s := range schemas[job] {
			pods = append(pods, &nativePod{
				job: job, name: fmt.Sprintf("%s-%d", job, slot), schema: s,
				rng:     rand.New(rand.NewPCG(uint64(len(pods)), 42)),
				buckets: map[int32]uint64{},
			})
		}
	}
	for i := range steps {
		h.scrape()
		minute := i / 4
		for slot, p := range pods {
			if p.name == "api-1" && i == resetStep {
				p.buckets, p.zero, p.count, p.sum = map[int32]uint64{}, 0, 0, 0
			}
			// Request rate and latency shift every few minutes, differently per pod.
			n := 20 + 7*slot + 15*((minute/6+slot)%3)
			mu := math.Log(0.02*float64(1+slot%3)) + 0.6*math.Sin(float64(minute)/5+float64(slot))
			for range n {
				v := math.Exp(mu + 0.9*p.rng.NormFloat64())
				if slot == 0 && p.rng.IntN(50) == 0 {
					p.zero++ // an observation of 0
					p.count++
					continue
				}
				p.observe(v)
			}
			h.histogram(labelSet(nativeMetric, "job", p.job, "pod", p.name), p.histogram())
		}
	}
	return h
}

// TestNativeHistogramEquivalence is docs/design.md §3.5 against real Prometheus: the same native
// histograms go raw to one Prometheus and through cardinal (dropping pod) to another, and
// quantiles and counts of the aggregate's rate must match those of the raw data's summed rate,
// through different schemas among the pods and a counter reset.
//
// The history is 50 minutes rather than 30 because compare wants 40 evaluations per series;
// evaluations are a second past each minute, for the reason given on TestPromQLEquivalence.
func TestNativeHistogramEquivalence(t *testing.T) {
	opts := prometheusOptions{ExtraFlags: []string{nativeHistFlag}}
	raw := startPrometheus(t, opts)
	agg := startPrometheus(t, opts)
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 15s
  flush_delay: 10s
downstream:
  remote_write:
    - url: %s
rules:
  - metric_name: %s
    type: histogram
    drop_labels: [pod]
`, agg.WriteURL, nativeMetric))

	end := time.Now().Add(-30 * time.Second)
	h := newNativeHistory(end, 200)
	for i, req := range h.requests {
		for _, target := range []string{raw.WriteURL, card.WriteURL} {
			if code := pushRW(t, target, req); code/100 != 2 {
				t.Fatalf("push of scrape %d to %s: status %d", i, target, code)
			}
		}
	}
	last := h.lastScrape()
	lastWindowEnd := last.Truncate(scrapeEvery).Add(scrapeEvery)
	eventually(t, 90*time.Second, "the last window to reach the aggregated Prometheus", func() (bool, error) {
		v := query(t, agg.URL, `max(timestamp(`+nativeMetric+`))`, lastWindowEnd.Add(time.Minute))
		return v["{}"] >= float64(lastWindowEnd.Unix()), nil
	})

	from := h.start.Add(6 * time.Minute).Truncate(time.Minute).Add(time.Second)
	to := last.Add(-time.Minute).Truncate(time.Minute).Add(time.Second)
	compare(t, "native histogram p90", raw.URL, agg.URL,
		`histogram_quantile(0.9, sum without (pod) (rate(`+nativeMetric+`[5m])))`,
		`histogram_quantile(0.9, rate(`+nativeMetric+`[5m]))`,
		from, to, 0.005, 0.02)
	compare(t, "native histogram count", raw.URL, agg.URL,
		`histogram_count(sum without (pod) (rate(`+nativeMetric+`[5m])))`,
		`histogram_count(rate(`+nativeMetric+`[5m]))`,
		from, to, 0.005, 0.02)

	// One native histogram series per job, in the coarsest schema of the job's pods: a bucket
	// of schema s spans a factor of 2^(2^-s).
	growth := map[string]float64{`{job="api"}`: math.Sqrt2, `{job="web"}`: 2} // schemas 1 and 0
	resp := getAPI(t, agg.URL+"/api/v1/query", url.Values{"query": {nativeMetric}, "time": {apiTime(to)}})
	var vector []struct {
		Metric    map[string]string  `json:"metric"`
		Histogram [2]json.RawMessage `json:"histogram"`
	}
	decodeResult(t, nativeMetric, resp, &vector)
	if len(vector) != len(growth) {
		t.Errorf("aggregated series: %d, want %d (one per job): %v", len(vector), len(growth), vector)
	}
	for _, r := range vector {
		delete(r.Metric, "__name__")
		key := seriesKey(r.Metric)
		var hist struct {
			Buckets [][4]json.RawMessage `json:"buckets"`
		}
		if err := json.Unmarshal(r.Histogram[1], &hist); err != nil || len(hist.Buckets) == 0 {
			t.Fatalf("%s: histogram %s: %v", key, r.Histogram[1], err)
		}
		var lower, upper string
		_ = json.Unmarshal(hist.Buckets[len(hist.Buckets)-1][1], &lower)
		_ = json.Unmarshal(hist.Buckets[len(hist.Buckets)-1][2], &upper)
		lo, _ := strconv.ParseFloat(lower, 64)
		up, _ := strconv.ParseFloat(upper, 64)
		if want, ok := growth[key]; !ok || math.Abs(up/lo-want) > 1e-9 {
			t.Errorf("%s: bucket (%s, %s] grows by %g, want %g", key, lower, upper, up/lo, want)
		}
	}
	ms := scrapeCardinal(t, card.URL)
	if v, _ := metricValue(ms, "cardinal_aggregator_counter_resets_total"); v != 1 {
		t.Errorf("counter resets seen = %v, want 1 (api-1 restarted)", v)
	}
	if v, _ := metricValue(ms, "cardinal_aggregator_samples_dropped_total", "reason", "unaggregatable"); v != 0 {
		t.Errorf("unaggregatable samples = %v, want 0", v)
	}
	if v, _ := metricValue(ms, "cardinal_aggregator_samples_total"); v != float64(6*h.steps()) {
		t.Errorf("samples aggregated = %v, want %d", v, 6*h.steps())
	}
}
