package downstream

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// labels builds a label set from name, value pairs.
func labels(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// metricValue returns the value of the counter or gauge (or the sample count of the
// histogram) called name whose labels include want, or 0 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func TestSendersShareCollectorsOnARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newSenderMetrics(reg, "a")
	b := newSenderMetrics(reg, "b")
	a.sent.Add(2)
	b.sent.Add(3)
	if got := metricValue(t, reg, "cardinal_downstream_samples_sent_total", map[string]string{"downstream": "a"}); got != 2 {
		t.Errorf("a sent = %v, want 2", got)
	}
	if got := metricValue(t, reg, "cardinal_downstream_samples_sent_total", map[string]string{"downstream": "b"}); got != 3 {
		t.Errorf("b sent = %v, want 3", got)
	}
}
