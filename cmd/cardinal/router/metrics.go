package router

import "github.com/prometheus/client_golang/prometheus"

// metrics are the router's self-metrics; the log's own (bytes, segments, fsyncs) are wal's.
type metrics struct {
	appendDuration  prometheus.Histogram
	checkpoints     *prometheus.CounterVec
	replayedRecords prometheus.Counter
	replayedSamples prometheus.Counter
	replayDuration  prometheus.Gauge
	requeuedSeries  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cardinal_wal_request_append_duration_seconds",
			Help:    "Time a request waited for the write-ahead log to take it (and fsync it, with wal.fsync: always) before it was acknowledged.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_wal_checkpoints_total",
			Help: "Checkpoints of the aggregation state written, by result (ok or failed).",
		}, []string{"result"}),
		replayedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_replayed_records_total",
			Help: "WAL records replayed into the aggregator at start-up.",
		}),
		replayedSamples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_replayed_samples_total",
			Help: "Samples of the WAL records replayed at start-up.",
		}),
		replayDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_restore_duration_seconds",
			Help: "How long start-up took to load the newest checkpoint and replay the log after it.",
		}),
		requeuedSeries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_requeued_series_total",
			Help: "Series a checkpoint held in downstream queues, queued again at start-up.",
		}),
	}
	m.checkpoints.WithLabelValues("ok")
	m.checkpoints.WithLabelValues("failed")
	if reg != nil {
		reg.MustRegister(m.appendDuration, m.checkpoints, m.replayedRecords,
			m.replayedSamples, m.replayDuration, m.requeuedSeries)
	}
	return m
}
