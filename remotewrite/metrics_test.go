package remotewrite

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

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

func TestRegisterSharesCollectorsAcrossInstances(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A second receiver on the same registry shares the counters instead of panicking.
	newReceiverMetrics(reg).samples.Add(1)
	newReceiverMetrics(reg).samples.Add(1)
	if got := metricValue(t, reg, "cardinal_receiver_samples_total", nil); got != 2 {
		t.Errorf("receiver samples = %v, want 2", got)
	}
}
