package timescale

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/downstream"
)

// Reasons for rows that are not written, the values of the reason label of
// cardinal_timescale_rows_dropped_total.
const (
	dropStaleMarker    = "stale_marker"    // Prometheus stale markers are not stored as rows
	dropHistogram      = "histogram"       // native histogram samples are not stored
	dropOutOfRange     = "out_of_range"    // timestamp outside years 0001..9999
	dropFuture         = "future"          // more than PartitionAhead + 1d ahead of the clock
	dropRetention      = "retention"       // older than Retention when it arrived
	dropShutdown       = "shutdown"        // Send after Shutdown, or not written by its deadline
	dropPermanentError = "permanent_error" // the database refused the batch for good
)

// metrics are the sink's self-metrics, all labelled with downstream=<Config.Name>.
type metrics struct {
	rowsWritten       prometheus.Counter
	rowsDuplicate     prometheus.Counter
	rowsDropped       *prometheus.CounterVec
	seriesCreated     prometheus.Counter
	writeErrors       *prometheus.CounterVec
	batchDuration     prometheus.Histogram
	mode              *prometheus.GaugeVec
	partitionsCreated prometheus.Counter
	partitionsDropped prometheus.Counter

	// The TimescaleDB jobs on samples, labelled job (compression, retention) and job_id.
	jobLastRun       *prometheus.GaugeVec
	jobLastSuccess   *prometheus.GaugeVec
	jobLastRunFailed *prometheus.GaugeVec
	jobFailures      *prometheus.GaugeVec
	jobPollErrors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, name string, q *downstream.Queue) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"downstream": name}, reg)
	m := &metrics{
		rowsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_timescale_rows_written_total",
			Help: "Sample rows inserted into the samples table.",
		}),
		rowsDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_timescale_rows_duplicate_total",
			Help: "Sample rows not inserted because the same series and time were already stored (retries, replays).",
		}),
		rowsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_timescale_rows_dropped_total",
			Help: "Samples not written, by reason.",
		}, []string{"reason"}),
		seriesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_timescale_series_created_total",
			Help: "Rows inserted into the series table.",
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_timescale_write_errors_total",
			Help: "Failed attempts to set up the schema, maintain partitions or write a batch; kind=retryable ones are retried with backoff, kind=permanent batches are dropped.",
		}, []string{"kind"}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cardinal_timescale_batch_duration_seconds",
			Help:    "Time to write one batch successfully, including partition creation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_timescale_mode",
			Help: "Storage mode chosen at start-up: 1 for the mode in use (timescaledb or postgresql).",
		}, []string{"mode"}),
		partitionsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_timescale_partitions_created_total",
			Help: "Daily partitions of the samples table created (plain PostgreSQL mode).",
		}),
		partitionsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_timescale_partitions_dropped_total",
			Help: "Daily partitions dropped by retention (plain PostgreSQL mode).",
		}),
		jobLastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_timescale_job_last_run_timestamp_seconds",
			Help: "When the last run of a TimescaleDB job on the samples table started (0: never), as read at the last poll.",
		}, []string{"job", "job_id"}),
		jobLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_timescale_job_last_success_timestamp_seconds",
			Help: "When the last successful run of a TimescaleDB job on the samples table ended (0: never).",
		}, []string{"job", "job_id"}),
		jobLastRunFailed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_timescale_job_last_run_failed",
			Help: "1 when the last run of a TimescaleDB job on the samples table ended in an error.",
		}, []string{"job", "job_id"}),
		jobFailures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_timescale_job_failures",
			Help: "Failed runs TimescaleDB has recorded for a job on the samples table (total_failures of timescaledb_information.job_stats).",
		}, []string{"job", "job_id"}),
		jobPollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_timescale_job_poll_errors_total",
			Help: "Failed attempts to read the TimescaleDB jobs' statistics.",
		}),
	}
	for _, reason := range []string{dropStaleMarker, dropHistogram, dropOutOfRange, dropFuture, dropRetention, dropShutdown, dropPermanentError} {
		m.rowsDropped.WithLabelValues(reason)
	}
	m.writeErrors.WithLabelValues("retryable")
	m.writeErrors.WithLabelValues("permanent")
	queueBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cardinal_timescale_queue_bytes",
		Help: "Estimated memory of the series waiting to be written (queued and in flight).",
	}, func() float64 { return float64(q.Bytes()) })
	collectors := []prometheus.Collector{
		m.rowsWritten, m.rowsDuplicate, m.rowsDropped, m.seriesCreated, m.writeErrors,
		m.batchDuration, m.mode, m.partitionsCreated, m.partitionsDropped, queueBytes,
		m.jobLastRun, m.jobLastSuccess, m.jobLastRunFailed, m.jobFailures, m.jobPollErrors,
	}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			for _, registered := range collectors[:i] {
				reg.Unregister(registered)
			}
			return nil, fmt.Errorf("registering metrics (downstream names must be unique): %w", err)
		}
	}
	return m, nil
}

// setMode exports the storage mode in use.
func (m *metrics) setMode(mode Mode) {
	m.mode.Reset()
	m.mode.WithLabelValues(string(mode)).Set(1)
}

// setJob exports the state of a TimescaleDB job.
func (m *metrics) setJob(j JobStatus) {
	l := jobLabels(j)
	m.jobLastRun.WithLabelValues(l...).Set(unixSeconds(j.LastRun))
	m.jobLastSuccess.WithLabelValues(l...).Set(unixSeconds(j.LastSuccess))
	failed := 0.0
	if j.LastRunFailed {
		failed = 1
	}
	m.jobLastRunFailed.WithLabelValues(l...).Set(failed)
	m.jobFailures.WithLabelValues(l...).Set(float64(j.Failures))
}

// deleteJob stops exporting a job that no longer exists.
func (m *metrics) deleteJob(j JobStatus) {
	l := jobLabels(j)
	for _, v := range []*prometheus.GaugeVec{m.jobLastRun, m.jobLastSuccess, m.jobLastRunFailed, m.jobFailures} {
		v.DeleteLabelValues(l...)
	}
}
