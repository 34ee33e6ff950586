package wal

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an append is refused, the values of the reason label of
// cardinal_wal_appends_rejected_total.
const (
	rejectFull   = "full"   // the log is at max_bytes
	rejectFailed = "failed" // a write or fsync failed earlier, or this one did
	rejectClosed = "closed" // after Close
)

// metrics are the log's self-metrics.
type metrics struct {
	diskBytes          prometheus.Gauge
	segments           prometheus.Gauge
	fsyncDuration      prometheus.Histogram
	appends            prometheus.Counter
	appendedBytes      prometheus.Counter
	rejected           *prometheus.CounterVec
	repairedTails      prometheus.Counter
	repairedBytes      prometheus.Counter
	checkpointBytes    prometheus.Gauge
	checkpointDuration prometheus.Histogram
	checkpointTime     prometheus.Gauge
	corruptCheckpoints prometheus.Counter
	// maxBytes and checkpointInterval publish the configuration the gauges above are
	// judged against (wal.max_bytes, wal.checkpoint_interval), for alerts and dashboards.
	maxBytes           prometheus.Gauge
	checkpointInterval prometheus.Gauge
}

// newMetrics builds the metrics for a log configured by cfg and registers them on reg,
// unless reg is nil.
func newMetrics(cfg Config, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		maxBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_max_bytes",
			Help: "wal.max_bytes: the size of the segment files at which appends are refused.",
		}),
		checkpointInterval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_checkpoint_interval_seconds",
			Help: "wal.checkpoint_interval: how often the aggregation state is checkpointed.",
		}),
		diskBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_disk_bytes",
			Help: "Size of the log's segment files; appends fail (503) when it would exceed wal.max_bytes.",
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_segments",
			Help: "Segment files of the log.",
		}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cardinal_wal_fsync_duration_seconds",
			Help:    "Time of one fsync of the log; with fsync: always, one fsync commits every append waiting for it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_appends_total",
			Help: "Entries written to the log.",
		}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_appended_bytes_total",
			Help: "Bytes written to the log's segment files by appends, framing included.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_wal_appends_rejected_total",
			Help: "Appends refused, by reason: full (at wal.max_bytes), failed (a write or fsync error; the log refuses appends until restarted), closed.",
		}, []string{"reason"}),
		repairedTails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_repaired_tails_total",
			Help: "Torn or corrupt tails cut off the last segment on open, as a crash during a write leaves them.",
		}),
		repairedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_repaired_bytes_total",
			Help: "Bytes cut off the last segment by tail repairs.",
		}),
		checkpointBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_checkpoint_bytes",
			Help: "Size of the last checkpoint written.",
		}),
		checkpointDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cardinal_wal_checkpoint_duration_seconds",
			Help:    "Time to write a checkpoint, fsyncs included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		checkpointTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_wal_checkpoint_last_timestamp_seconds",
			Help: "Unix time the last checkpoint was written.",
		}),
		corruptCheckpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_wal_corrupt_checkpoints_total",
			Help: "Checkpoints skipped on load because their checksum did not verify; an older one was used.",
		}),
	}
	for _, reason := range []string{rejectFull, rejectFailed, rejectClosed} {
		m.rejected.WithLabelValues(reason)
	}
	m.maxBytes.Set(float64(cfg.MaxBytes))
	m.checkpointInterval.Set(time.Duration(cfg.CheckpointInterval).Seconds())
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.diskBytes, m.segments, m.fsyncDuration, m.appends, m.appendedBytes, m.rejected,
		m.repairedTails, m.repairedBytes, m.checkpointBytes, m.checkpointDuration,
		m.checkpointTime, m.corruptCheckpoints, m.maxBytes, m.checkpointInterval,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("wal: registering metrics: %w", err)
		}
	}
	return m, nil
}
