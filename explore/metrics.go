package explore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the explorer's own.
type metrics struct {
	scans       prometheus.Counter
	series      prometheus.Gauge
	metricNames prometheus.Gauge
	memory      prometheus.Gauge
	shed        prometheus.Gauge
	summarise   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		scans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_explore_scans_total", Help: "Cardinality explorer scans completed.",
		}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_explore_series", Help: "Distinct input series the last complete explorer scan saw, in all metrics.",
		}),
		metricNames: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_explore_metrics", Help: "Metric names the last complete explorer scan saw.",
		}),
		memory: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_explore_memory_bytes", Help: "Memory the last complete explorer scan's sketches were charged (at most explore.memory_budget).",
		}),
		shed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_explore_shed_metrics", Help: "Metrics of the last complete explorer scan that kept only their counts, without per-label detail, to stay within explore.memory_budget.",
		}),
		summarise: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_explore_summary_seconds", Help: "How long reading the sketches of the last complete explorer scan took.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.scans, m.series, m.metricNames, m.memory, m.shed, m.summarise)
	}
	return m
}

// scanned records a complete scan.
func (m *metrics) scanned(r *Result, took time.Duration) {
	m.scans.Inc()
	m.series.Set(float64(r.Series))
	m.metricNames.Set(float64(r.MetricsTotal))
	m.memory.Set(float64(r.MemoryBytes))
	m.shed.Set(float64(r.ShedMetrics))
	m.summarise.Set(took.Seconds())
}
