package remotewrite

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons in cardinal_downstream_samples_dropped_total.
const (
	dropReasonShutdown = "shutdown" // queued or in flight when Shutdown gave up, or sent after it
	dropReasonEncode   = "encode"   // could not be marshalled
)

// clientMetrics are one Client's self-metrics: children, for its downstream label, of vectors
// shared by every Client on the registry.
type clientMetrics struct {
	sent         prometheus.Counter
	failed       prometheus.Counter
	retried      prometheus.Counter
	overLimit    prometheus.Counter
	dropShutdown prometheus.Counter
	dropEncode   prometheus.Counter
	sendDuration prometheus.Observer

	// The queue gauges are set together under gaugeMu from the Client's counters, so that the
	// last writer always publishes the current values.
	gaugeMu     sync.Mutex
	queueBytes  prometheus.Gauge
	queueSeries prometheus.Gauge
	queueFull   prometheus.Gauge
}

func newClientMetrics(reg prometheus.Registerer, downstream string) *clientMetrics {
	labels := []string{"downstream"}
	gauge := func(name, help string) prometheus.Gauge {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)).WithLabelValues(downstream)
	}
	counter := func(name, help string) prometheus.Counter {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)).WithLabelValues(downstream)
	}
	dropped := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cardinal_downstream_samples_dropped_total",
		Help: "Samples given up without a definitive answer from the downstream, by reason.",
	}, []string{"downstream", "reason"}))
	duration := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cardinal_downstream_send_duration_seconds",
		Help:    "Duration of one remote write request to the downstream, whatever its outcome.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, labels))
	return &clientMetrics{
		sent:         counter("cardinal_downstream_samples_sent_total", "Samples the downstream accepted (2xx)."),
		failed:       counter("cardinal_downstream_samples_failed_total", "Samples the downstream refused for good (4xx other than 429); not retried."),
		retried:      counter("cardinal_downstream_samples_retried_total", "Samples in requests that will be sent again after a 5xx, 429 or network error."),
		overLimit:    counter("cardinal_downstream_samples_over_limit_total", "Samples queued while the queue was at or over its byte limit (kept, not dropped)."),
		dropShutdown: dropped.WithLabelValues(downstream, dropReasonShutdown),
		dropEncode:   dropped.WithLabelValues(downstream, dropReasonEncode),
		sendDuration: duration.WithLabelValues(downstream),
		queueBytes:   gauge("cardinal_downstream_queue_bytes", "Approximate memory held by queued and in-flight series."),
		queueSeries:  gauge("cardinal_downstream_queue_series", "Series queued or in flight."),
		queueFull:    gauge("cardinal_downstream_queue_full", "1 while the queue is at or over its byte limit (the receiver then answers 503), else 0."),
	}
}

// publishQueue sets the queue gauges from level.
func (m *clientMetrics) publishQueue(level *queueLevel) {
	m.gaugeMu.Lock()
	defer m.gaugeMu.Unlock()
	m.queueBytes.Set(float64(level.bytes.Load()))
	m.queueSeries.Set(float64(level.series.Load()))
	if level.full() {
		m.queueFull.Set(1)
	} else {
		m.queueFull.Set(0)
	}
}
