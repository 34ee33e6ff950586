package aggregator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// placementRules are rules of every shape a placement key must handle: one metric with added
// labels and a new name, several metrics with several outputs, a histogram's components, and a
// by-mode gauge.
func placementRules() []*rules.Rule {
	one := counterRule("http_requests_total")
	one.OutputName = "api_requests_total"
	one.AddLabels = []prompb.Label{{Name: "region", Value: "eu"}}
	one.Fingerprint++

	many := counterRule("rpc_calls_total", "rate", "total")
	many.Name, many.MetricNames, many.BaseName = "rpc", []string{"rpc_calls_total", "rpc_errors_total"}, ""
	many.Fingerprint += 2

	hist := counterRule("lat")
	hist.Type, hist.MetricNames, hist.BaseName = rules.Histogram, []string{"lat_bucket", "lat_count", "lat_sum"}, "lat"
	hist.Fingerprint += 3

	by := gaugeRule("mem", "max", "avg")
	by.ByMode, by.By, by.Without = true, []string{"job"}, nil
	by.Fingerprint += 4
	return []*rules.Rule{one, many, hist, by}
}

func TestPlacementKeyOfAnInputIsThatOfItsOutput(t *testing.T) {
	a, _, _, _ := newTestAggregator(t, 0, placementRules()...)
	inputs := []prompb.TimeSeries{
		series("http_requests_total{job=api,pod=a,code=200}"),
		series("http_requests_total{job=api,pod=b,code=500,region=us}"),
		series("rpc_calls_total{job=api,pod=a}"), series("rpc_errors_total{job=api,pod=a}"),
		series("lat_bucket{job=api,pod=a,le=1}"), series("lat_bucket{job=api,pod=b,le=+Inf}"),
		series("lat_sum{job=api,pod=a}"), series("lat_count{job=api,pod=c}"),
		series("mem{job=api,pod=a,node=x}"),
	}
	for _, r := range a.rules {
		// Both ways of computing an input's key are covered: a rule with added labels or of
		// a classic histogram goes label by label through every check (placesPlain).
		if want := r.rule.Name == "rpc" || r.rule.Name == "mem"; r.placePlain != want {
			t.Errorf("rule %s: placePlain %v, want %v", r.rule.Name, r.placePlain, want)
		}
		keys := map[uint64]string{}
		for _, in := range inputs {
			name := metricName(in.Labels)
			if !slices.Contains(r.metricNames(), name) || !r.rule.MatchLabels(in.Labels) {
				continue
			}
			key, _, _ := r.placeKeyOfInput(nil, in.Labels, name)
			for kind, out := range r.buildOutputLabels(in.Labels) {
				if got := r.placeKeyOfOutput(out); got != key {
					t.Errorf("rule %s: input %s: key %x, its output %s (kind %d) %x", r.rule.Name, labelString(in.Labels), key, labelString(out), kind, got)
				}
			}
			keys[key] = keys[key] + " " + labelString(in.Labels)
		}
		t.Logf("rule %s: %d keys: %v", r.rule.Name, len(keys), keys)
		// The inputs above make these many distinct output series (histogram components
		// together, le aside; rpc's two metrics apart).
		want := map[string]int{"http_requests_total": 2, "rpc": 2, "lat": 1, "mem": 1}[r.rule.Name]
		if len(keys) != want {
			t.Errorf("rule %s: %d placement keys, want %d", r.rule.Name, len(keys), want)
		}
	}
}

// twoMembers routes by the placement key's parity: member i owns the even keys when i is 0.
type twoMembers int

func (m twoMembers) Owner(key uint64) int {
	if int(key%2) == int(m) {
		return Local
	}
	return 1 - int(m)
}

// countingRouter is a Router that counts the keys it is asked about.
type countingRouter struct {
	Router
	n *int
}

func (c countingRouter) Owner(key uint64) int {
	*c.n++
	return c.Router.Owner(key)
}

// TestTwoMembersEqualOne feeds the same history to one aggregator and to two that split it at
// random and forward to each other by placement: together they must emit exactly what the one
// does, and no output series may be emitted by both. With the sender's rules version
// (trusted), the owner places again only the series that several rules select, and the
// result is the same.
func TestTwoMembersEqualOne(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) { testTwoMembersEqualOne(t, trusted) })
	}
}

func testTwoMembersEqualOne(t *testing.T, trusted bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	// A second rule on http_requests_total: its series are pairs of two rules, which may
	// be owned by different members.
	byCode := counterRule("http_requests_total")
	byCode.Name, byCode.OutputName, byCode.ByMode, byCode.By, byCode.Without = "by_code", "requests_by_code_total", true, []string{"code"}, nil
	byCode.Fingerprint += 5
	rs := append(placementRules(), byCode)
	single, singleOut, _, singleClk := newTestAggregator(t, 0, rs...)
	var members [2]*Aggregator
	var outs [2]*collectSink
	var clks [2]*testClock
	for i := range members {
		members[i], outs[i], _, clks[i] = newTestAggregator(t, 0, rs...)
	}
	names := []string{"http_requests_total", "rpc_calls_total", "rpc_errors_total", "lat_bucket", "lat_sum", "lat_count", "mem"}
	var forwardedSeries, forwardedPairs, placedAgain int
	for step := range 30 {
		ts := float64(step*5 + 1)
		var req [2][]prompb.TimeSeries
		var all []prompb.TimeSeries
		for _, name := range names {
			// 16 pods: each member's request has more series than route takes at a time.
			for pod := range 16 {
				for job := range 3 {
					spec := fmt.Sprintf("%s{job=j%d,pod=p%d,code=%d", name, job, pod, 200+100*(pod%2))
					if name == "lat_bucket" {
						spec += ",le=1"
					}
					s := series(spec+"}", ts, float64(step*(pod+1)+job))
					all = append(all, s)
					m := rng.IntN(2)
					req[m] = append(req[m], s)
				}
			}
		}
		single.Ingest(all)
		for m := range members {
			var fwd []prompb.TimeSeries
			rules := members[m].IngestRoute(req[m], Route{Router: twoMembers(m), Forward: func(owner int, s *prompb.TimeSeries, _ int) {
				if owner != 1-m {
					t.Fatalf("member %d forwards to %d", m, owner)
				}
				fwd = append(fwd, cloneSeries(s))
			}})
			forwardedSeries += len(fwd)
			idx := members[m].index.Load()
			for i := range fwd {
				for _, r := range append(idx.byName.lookup(metricName(fwd[i].Labels)), idx.scan...) {
					if r.rule.MatchLabels(fwd[i].Labels) {
						forwardedPairs++
					}
				}
			}
			rt := Route{Router: countingRouter{twoMembers(1 - m), &placedAgain}, Forwarded: true}
			if trusted {
				rt.SenderRules = rules
			}
			members[1-m].IngestRoute(fwd, rt)
		}
		wall := int64(ts) + 3
		flushAt(single, singleClk, wall)
		for m := range members {
			flushAt(members[m], clks[m], wall)
		}
	}
	if forwardedSeries == 0 {
		t.Fatal("nothing was forwarded")
	}
	// Untrusted, every pair of a forwarded series is placed again; trusted, only those of
	// series that several rules select (some, and fewer).
	t.Logf("%d series forwarded, %d pairs, %d placed again", forwardedSeries, forwardedPairs, placedAgain)
	switch {
	case !trusted && placedAgain != forwardedPairs:
		t.Errorf("placed %d pairs again, want all %d", placedAgain, forwardedPairs)
	case trusted && (placedAgain == 0 || placedAgain >= forwardedPairs):
		t.Errorf("placed %d of %d pairs again, want those of series of several rules only", placedAgain, forwardedPairs)
	}
	got := append(outs[0].points(), outs[1].points()...)
	slices.Sort(got)
	want := singleOut.points()
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("two members emitted %d points, one emitted %d\n got %q\nwant %q", len(got), len(want), got, want)
	}
	writers := map[string]int{}
	for m := range outs {
		seen := map[string]bool{}
		for _, ts := range outs[m].series {
			seen[labelString(ts.Labels)] = true
		}
		for s := range seen {
			writers[s]++
		}
	}
	for s, n := range writers {
		if n != 1 {
			t.Errorf("output %s written by %d members", s, n)
		}
	}
	for m := range members {
		var notOwned uint64
		for _, s := range members[m].Stats() {
			notOwned += s.NotOwned
		}
		// A series that feeds two rules owned by different members reaches both and is
		// counted where it is not owned.
		t.Logf("member %d: %d samples not owned", m, notOwned)
	}
}

// placeLabel hashes name, 0xff, value whatever their length: the placement key must not
// change with how it is computed, or members of two versions would disagree on owners.
func TestPlaceLabelIsOneHashOfNameAndValue(t *testing.T) {
	for _, n := range []int{0, 1, 100, 190, 191, 192, 500} {
		value := strings.Repeat("v", n)
		want := xxhash.Sum64String("job\xff" + value)
		if got := placeLabel("job", value); got != want {
			t.Errorf("value of %d bytes: %x, want %x", n, got, want)
		}
	}
}

func BenchmarkPlaceLabel(b *testing.B) {
	for b.Loop() {
		placeLabel("namespace", "kube-system-monitoring")
	}
}

// TestPlacementHashIsTheOutputHashWhereItCanBe: for a rule whose placement hashes exactly the
// labels it keeps, a member that aggregates a pair it placed reuses the placement's hash as
// the output hash (route, addHashed); it must be seriesHashes' out, and inputHash must then
// give its in, or the pair would be aggregated as another series than on a member alone.
func TestPlacementHashIsTheOutputHashWhereItCanBe(t *testing.T) {
	added := gaugeRule("mem", "max")
	added.Name = "mem_by_job"
	added.ByMode, added.By, added.Without = true, []string{"job"}, nil
	added.AddLabels = []prompb.Label{{Name: "region", Value: "eu"}}
	added.Fingerprint += 9
	a, _, _, _ := newTestAggregator(t, 0, append(placementRules(), added)...)
	want := map[string]bool{"http_requests_total": false, "rpc": false, "lat": false, "mem": true, "mem_by_job": true}
	inputs := []prompb.TimeSeries{
		series("http_requests_total{job=api,pod=b,code=500,region=us}"),
		series("rpc_calls_total{job=api,pod=a}"), series("lat_bucket{job=api,pod=b,le=+Inf}"),
		series("mem{job=api,pod=a,node=x}"), series("mem{job=api,pod=a,node=x,region=us}"), series("mem{pod=a}"),
	}
	for _, r := range a.rules {
		if r.placeKept != want[r.rule.Name] {
			t.Errorf("rule %s: placeKept %v, want %v", r.rule.Name, r.placeKept, want[r.rule.Name])
		}
		if !r.placeKept {
			continue
		}
		for _, in := range inputs {
			name := metricName(in.Labels)
			if !slices.Contains(r.metricNames(), name) {
				continue
			}
			_, kept, _ := r.placeKeyOfInput(nil, in.Labels, name)
			wantIn, wantOut, _, _ := r.seriesHashes(nil, nil, in.Labels)
			gotIn, _ := r.inputHash(nil, in.Labels, kept)
			if kept != wantOut || gotIn != wantIn {
				t.Errorf("rule %s, %s: placement hash %x and input hash %x; seriesHashes gives %x, %x", r.rule.Name, labelString(in.Labels), kept, gotIn, wantOut, wantIn)
			}
		}
	}
}
