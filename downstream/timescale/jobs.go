package timescale

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The health of the TimescaleDB jobs on the samples hypertable (the compression and
// retention policies, and any job an operator added to it). TimescaleDB runs them in its
// background workers; when they fail, nothing in the write path notices, so the sink polls
// their statistics and errors, exports them as metrics, and logs each new failure once.

// defaultJobPollInterval is how often the jobs' statistics are read.
const defaultJobPollInterval = time.Minute

// JobStatus is what the sink last read of one TimescaleDB job on its samples hypertable.
type JobStatus struct {
	ID   int
	Kind string // compression, retention, or the job's proc_name
	// LastRun is when its last run started, LastSuccess when its last successful run ended;
	// zero when there was none.
	LastRun, LastSuccess time.Time
	// LastRunFailed: the newest finished run ended in an error (TimescaleDB recorded an
	// error after the last success; without job_errors, the last run's status is Failed).
	LastRunFailed bool
	// Failures is the number of failed runs TimescaleDB has recorded for the job.
	Failures int64
	// LastError and LastErrorAt are the newest error TimescaleDB recorded (job_errors), if any.
	LastError   string
	LastErrorAt time.Time
	// NextStart is when TimescaleDB will run it next; zero when it is not scheduled.
	NextStart time.Time
}

// jobStatsSQL reads the statistics of the jobs on samples. Timestamps that are not finite
// (-infinity for a job that never ran) come back as NULL.
const jobStatsSQL = `SELECT j.job_id, j.proc_name::text,
		CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,
		CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
		coalesce(s.last_run_status = 'Failed', false),
		coalesce(s.total_failures, 0),
		CASE WHEN j.scheduled AND isfinite(s.next_start) THEN s.next_start END
	FROM timescaledb_information.jobs j
	LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
	WHERE (j.hypertable_schema, j.hypertable_name) = ` + samplesTableSQL + `
	ORDER BY j.job_id`

// jobErrorsSQL reads the newest recorded error of each of the jobs $1.
const jobErrorsSQL = `SELECT DISTINCT ON (job_id) job_id, coalesce(finish_time, start_time),
		coalesce(sqlerrcode, ''), coalesce(err_message, '')
	FROM timescaledb_information.job_errors
	WHERE job_id = ANY($1)
	ORDER BY job_id, coalesce(finish_time, start_time) DESC NULLS LAST`

// readJobs reads the status of the jobs on samples.
func readJobs(ctx context.Context, db querier, withErrors bool) ([]JobStatus, error) {
	rows, err := db.Query(ctx, jobStatsSQL)
	if err != nil {
		return nil, fmt.Errorf("reading the job statistics: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobStatus, error) {
		var j JobStatus
		var proc string
		var lastRun, lastSuccess, next *time.Time
		err := r.Scan(&j.ID, &proc, &lastRun, &lastSuccess, &j.LastRunFailed, &j.Failures, &next)
		j.Kind = policyKind(proc)
		for _, t := range []struct {
			dst *time.Time
			src *time.Time
		}{{&j.LastRun, lastRun}, {&j.LastSuccess, lastSuccess}, {&j.NextStart, next}} {
			if t.src != nil {
				*t.dst = *t.src
			}
		}
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the job statistics: %w", err)
	}
	if !withErrors || len(jobs) == 0 {
		return jobs, nil
	}
	ids := make([]int32, len(jobs))
	for i, j := range jobs {
		ids[i] = int32(j.ID)
	}
	rows, err = db.Query(ctx, jobErrorsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the job errors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var at *time.Time
		var code, msg string
		if err := rows.Scan(&id, &at, &code, &msg); err != nil {
			return nil, fmt.Errorf("reading the job errors: %w", err)
		}
		i := slices.IndexFunc(jobs, func(j JobStatus) bool { return j.ID == id })
		if i < 0 {
			continue
		}
		if at != nil {
			jobs[i].LastErrorAt = *at
			jobs[i].LastRunFailed = at.After(jobs[i].LastSuccess)
		}
		jobs[i].LastError = msg
		if code != "" {
			jobs[i].LastError = msg + " (SQLSTATE " + code + ")"
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the job errors: %w", err)
	}
	return jobs, nil
}

// Jobs is the status of the TimescaleDB jobs on the samples hypertable at the last poll:
// none in plain PostgreSQL mode or before the first poll.
func (s *Sink) Jobs() []JobStatus {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	return slices.Clone(s.jobs)
}

// watchJobs polls the jobs' health every jobPollInterval while the sink is in TimescaleDB
// mode, until Shutdown. Until the first poll has succeeded it tries every second (at most
// jobPollInterval), so the metrics are there soon after the start.
func (s *Sink) watchJobs() {
	defer close(s.jobsDone)
	every := min(time.Second, s.jobPollInterval)
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-s.drain:
			return
		case <-s.ctx.Done():
			return
		}
		if s.pollJobs() {
			every = s.jobPollInterval
		}
		timer.Reset(every)
	}
}

// pollJobs reads the jobs' health once, in TimescaleDB mode. It reports whether the next
// poll can wait the full interval: false before the schema set-up and after a failed read.
func (s *Sink) pollJobs() bool {
	f := s.features.Load()
	switch {
	case s.Mode() == ModePostgreSQL:
		return true // no jobs; watched in case the mode changes with a new set-up
	case s.Mode() == "" || f == nil:
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	jobs, err := readJobs(ctx, s.pool, f.jobErrors)
	if err != nil {
		if s.ctx.Err() == nil {
			s.metrics.jobPollErrors.Inc()
			s.logger.Warn("reading the TimescaleDB jobs' health failed; trying again at the next poll", "err", err)
		}
		return false
	}
	s.recordJobs(jobs)
	s.jobPolls.Add(1)
	return true
}

// recordJobs exports jobs as metrics, logs the failures not logged yet, and keeps jobs for
// Jobs. A failure is new when the job's failure count grew past the failures logged; at the
// first poll, a job whose last run failed is logged too, and counts as one failure logged
// even while its count is still 0: TimescaleDB records the error (job_errors) before it
// counts it (job_stats), and the count growing to 1 at the next poll is the same failure.
func (s *Sink) recordJobs(jobs []JobStatus) {
	s.jobsMu.Lock()
	previous := s.jobs
	s.jobs = jobs
	s.jobsMu.Unlock()

	if s.loggedFailures == nil {
		s.loggedFailures = map[int]int64{}
	}
	seen := map[int]JobStatus{}
	for _, j := range previous {
		seen[j.ID] = j
	}
	for _, j := range jobs {
		delete(seen, j.ID)
		logged, known := s.loggedFailures[j.ID]
		if !known {
			logged = j.Failures
		}
		if j.Failures > logged || (!known && j.LastRunFailed) {
			s.logger.Error("a TimescaleDB job on the samples table failed: compression or retention may have stopped",
				"job_id", j.ID, "job", j.Kind, "failures", j.Failures, "last_success", j.LastSuccess,
				"error", j.LastError, "error_at", j.LastErrorAt)
			logged = max(j.Failures, 1)
		}
		s.loggedFailures[j.ID] = logged
		s.metrics.setJob(j)
	}
	for _, gone := range seen {
		s.metrics.deleteJob(gone)
		delete(s.loggedFailures, gone.ID)
	}
}

// jobLabels are the label values of j's metrics.
func jobLabels(j JobStatus) []string { return []string{j.Kind, strconv.Itoa(j.ID)} }

// unixSeconds is t as seconds since the epoch, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
