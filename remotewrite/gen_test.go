package remotewrite

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/prometheus/prometheus/prompb"
)

// staleNaN is Prometheus's stale marker.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// requestGenerator makes random but deterministic write requests covering every field.
type requestGenerator struct {
	rng *rand.Rand
}

func newRequestGenerator(seed uint64) *requestGenerator {
	return &requestGenerator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *requestGenerator) request() prompb.WriteRequest {
	var req prompb.WriteRequest
	for range g.rng.IntN(20) {
		req.Timeseries = append(req.Timeseries, g.series())
	}
	for range g.rng.IntN(3) {
		req.Metadata = append(req.Metadata, prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_MetricType(g.rng.IntN(8)),
			MetricFamilyName: g.str(),
			Help:             g.str(),
			Unit:             g.str(),
		})
	}
	return req
}

func (g *requestGenerator) series() prompb.TimeSeries {
	var ts prompb.TimeSeries
	ts.Labels = g.labels(g.rng.IntN(10))
	for range g.rng.IntN(5) {
		ts.Samples = append(ts.Samples, prompb.Sample{Value: g.float(), Timestamp: g.timestamp()})
	}
	if g.rng.IntN(4) == 0 {
		for range 1 + g.rng.IntN(2) {
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: g.labels(g.rng.IntN(3)), Value: g.float(), Timestamp: g.timestamp()})
		}
	}
	if g.rng.IntN(3) == 0 {
		for range 1 + g.rng.IntN(3) {
			ts.Histograms = append(ts.Histograms, g.histogram())
		}
	}
	return ts
}

func (g *requestGenerator) labels(n int) []prompb.Label {
	var ls []prompb.Label
	for i := range n {
		ls = append(ls, prompb.Label{Name: fmt.Sprintf("l%d_%s", i, g.str()), Value: g.str()})
	}
	return ls
}

func (g *requestGenerator) histogram() prompb.Histogram {
	h := prompb.Histogram{
		Sum:           g.float(),
		Schema:        int32(g.rng.IntN(13)) - 4,
		ZeroThreshold: g.rng.Float64(),
		ResetHint:     prompb.Histogram_ResetHint(g.rng.IntN(4)),
		Timestamp:     g.timestamp(),
	}
	float := g.rng.IntN(2) == 0
	if float {
		h.Count = &prompb.Histogram_CountFloat{CountFloat: g.float()}
		h.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: g.rng.Float64() * 10}
	} else {
		h.Count = &prompb.Histogram_CountInt{CountInt: g.rng.Uint64()}
		h.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: uint64(g.rng.IntN(100))}
	}
	if g.rng.IntN(5) == 0 {
		h.Count, h.ZeroCount = nil, nil
	}
	h.NegativeSpans = g.spans()
	h.PositiveSpans = g.spans()
	for range g.rng.IntN(6) {
		if float {
			h.NegativeCounts = append(h.NegativeCounts, g.float())
			h.PositiveCounts = append(h.PositiveCounts, g.float())
		} else {
			h.NegativeDeltas = append(h.NegativeDeltas, g.rng.Int64()>>g.rng.IntN(64)*int64(1-2*g.rng.IntN(2)))
			h.PositiveDeltas = append(h.PositiveDeltas, int64(g.rng.IntN(20))-10)
		}
	}
	if g.rng.IntN(6) == 0 {
		h.Schema = -53
		for range 1 + g.rng.IntN(4) {
			h.CustomValues = append(h.CustomValues, g.float())
		}
	}
	return h
}

func (g *requestGenerator) spans() []prompb.BucketSpan {
	var spans []prompb.BucketSpan
	for range g.rng.IntN(3) {
		spans = append(spans, prompb.BucketSpan{Offset: int32(g.rng.IntN(20)) - 10, Length: uint32(g.rng.IntN(5))})
	}
	return spans
}

func (g *requestGenerator) str() string {
	alphabet := []string{"a", "b", "_", "é", "\x00", "\xff", "pod", "0", ":", "日本", " "}
	var s string
	for range g.rng.IntN(6) {
		s += alphabet[g.rng.IntN(len(alphabet))]
	}
	return s
}

func (g *requestGenerator) float() float64 {
	switch g.rng.IntN(10) {
	case 0:
		return math.NaN()
	case 1:
		return staleNaN
	case 2:
		return math.Inf(1 - 2*g.rng.IntN(2))
	case 3:
		return math.Copysign(0, -1)
	default:
		return (g.rng.Float64() - 0.5) * math.Pow(10, float64(g.rng.IntN(30)))
	}
}

func (g *requestGenerator) timestamp() int64 {
	if g.rng.IntN(10) == 0 {
		return -g.rng.Int64()
	}
	return 1_700_000_000_000 + g.rng.Int64N(1e9)
}
