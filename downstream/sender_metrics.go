package downstream

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons in cardinal_downstream_samples_dropped_total.
const (
	dropReasonShutdown = "shutdown" // queued or in flight when Shutdown gave up, or sent after it
	dropReasonEncode   = "encode"   // could not be marshalled
)

// senderMetrics are one sender's self-metrics: children, for its downstream label, of vectors
// shared by every sender on the registry.
type senderMetrics struct {
	sent      prometheus.Counter
	failed    prometheus.Counter
	retried   prometheus.Counter
	overLimit prometheus.Counter
	// alreadyDelivered counts samples left out because the receiver acknowledged them
	// before (sent again after a restart).
	alreadyDelivered prometheus.Counter
	dropShutdown     prometheus.Counter
	dropEncode       prometheus.Counter
	sendDuration     prometheus.Observer

	// The queue gauges are set together under gaugeMu from the queue's counters, so that the
	// last writer always publishes the current values.
	gaugeMu     sync.Mutex
	queueBytes  prometheus.Gauge
	queueSeries prometheus.Gauge
	queueFull   prometheus.Gauge
}

func newSenderMetrics(reg prometheus.Registerer, downstream string) *senderMetrics {
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
	return &senderMetrics{
		sent:    counter("cardinal_downstream_samples_sent_total", "Samples the downstream accepted (2xx)."),
		failed:  counter("cardinal_downstream_samples_failed_total", "Samples the downstream refused for good (4xx other than 429); not retried."),
		retried: counter("cardinal_downstream_samples_retried_total", "Samples in requests that will be sent again after a 5xx, 429 or network error."),
		alreadyDelivered: counter("cardinal_downstream_samples_already_delivered_total",
			"Samples not sent because the downstream had acknowledged them before a restart (queued again from a checkpoint or the write-ahead log)."),
		overLimit:    counter("cardinal_downstream_samples_over_limit_total", "Samples queued while the queue was at or over its byte limit (kept, not dropped)."),
		dropShutdown: dropped.WithLabelValues(downstream, dropReasonShutdown),
		dropEncode:   dropped.WithLabelValues(downstream, dropReasonEncode),
		sendDuration: duration.WithLabelValues(downstream),
		queueBytes:   gauge("cardinal_downstream_queue_bytes", "Approximate memory held by queued and in-flight series."),
		queueSeries:  gauge("cardinal_downstream_queue_series", "Series queued or in flight."),
		queueFull:    gauge("cardinal_downstream_queue_full", "1 while the queue is at or over its byte limit (the receiver then answers 503), else 0."),
	}
}

// publishQueue sets the queue gauges from q.
func (m *senderMetrics) publishQueue(q *Queue) {
	m.gaugeMu.Lock()
	defer m.gaugeMu.Unlock()
	m.queueBytes.Set(float64(q.Bytes()))
	m.queueSeries.Set(float64(q.Series()))
	if q.Full() {
		m.queueFull.Set(1)
	} else {
		m.queueFull.Set(0)
	}
}

// register registers c with reg and returns it, or returns the identical collector already
// registered there (several senders share one set of vectors, told apart by their downstream
// label). A nil reg leaves c unregistered. Any other registration error is a programming
// error (clashing metric definitions) and panics, as MustRegister does.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
