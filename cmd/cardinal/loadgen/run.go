package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// Prometheus drops an input series after five minutes without samples; the report's active
// series estimate uses the same horizon.
const stalenessHorizon = 5 * time.Minute

// futureLimit is how far ahead of the wall clock cardinal still accepts samples.
const futureLimit = 10 * time.Minute

// errNothingAccepted is returned when requests were sent but none was acknowledged.
var errNothingAccepted = errors.New("no request was acknowledged")

// Run is `cardinal loadgen`: it parses args, pre-encodes the requests, sends them to --url
// until --duration, --requests or the end of --history, and writes the report to stdout.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseConfig(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return run(ctx, cfg, stdout, time.Now, "/proc")
}

// run executes a parsed configuration; now and procRoot are injectable for tests.
func run(ctx context.Context, cfg config, stdout io.Writer, now func() time.Time, procRoot string) error {
	if err := checkTarget(cfg.url, cfg.allowRemote); err != nil {
		return err
	}
	buildStart := time.Now()
	interval := cfg.interval
	startMs := now().UnixMilli()
	var maxRounds int64
	p := newPlan(cfg, startMs, defaultInterval)
	switch {
	case interval > 0:
	case cfg.history == 0 && cfg.rate > 0:
		// Live traffic: one round of all series per interval at the target rate keeps
		// sample timestamps in step with the wall clock.
		interval = max(time.Millisecond, time.Duration(float64(p.seriesPerRound())/cfg.rate*float64(time.Second)).Round(time.Millisecond))
	default:
		interval = defaultInterval
	}
	p.intervalMs = interval.Milliseconds()
	if cfg.history > 0 {
		p.startMs = startMs - cfg.history.Milliseconds()
		maxRounds = int64(cfg.history/interval) + 1
	}
	templates, err := buildTemplates(p, cfg.samplesPerReq)
	if err != nil {
		return err
	}
	rep := &Report{
		URL: cfg.url.String(), Metrics: len(p.families), SeriesPerMetric: p.slots,
		TimeSeries: p.seriesPerRound(), Mix: cfg.mix.String(), ChurnPerRound: p.churnPerRnd,
		IntervalSeconds: interval.Seconds(), RequestsPerRound: len(templates),
	}
	compressed, raw := 0, 0
	for _, t := range templates {
		compressed += len(t.body)
		raw += t.rawLen
	}
	rep.CompressedBytes = float64(compressed) / float64(rep.TimeSeries)
	rep.RawBytes = float64(raw) / float64(rep.TimeSeries)
	rep.BuildSeconds = time.Since(buildStart).Seconds()

	var before procUsage
	if cfg.pid > 0 {
		if before, err = readProcUsage(procRoot, cfg.pid); err != nil {
			return err
		}
	}

	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	stop := runCtx
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(runCtx, cfg.duration)
		defer cancel()
	}
	client := newHTTPClient(cfg.concurrency, cfg.timeout, cfg.allowRemote)
	defer client.CloseIdleConnections()
	start := time.Now()
	s := newSender(client, cfg.url.String(), p, templates, newPacer(cfg.rate, start), cfg.requests, maxRounds, abort)
	stats := make([]*workerStats, cfg.concurrency)
	var wg sync.WaitGroup
	for i := range stats {
		wg.Go(func() { stats[i] = s.work(stop, runCtx) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil {
		return fmt.Errorf("loadgen: %w", cause)
	}

	rep.mergeStats(stats)
	rep.DurationSeconds = elapsed.Seconds()
	if elapsed > 0 {
		rep.SamplesPerSecond = float64(rep.Samples) / elapsed.Seconds()
	}
	if rep.Rounds > 0 {
		rep.FirstTimestampMs = p.timestamp(0)
		rep.LastTimestampMs = p.timestamp(rep.Rounds - 1)
		if ahead := time.Duration(rep.LastTimestampMs-now().UnixMilli()) * time.Millisecond; ahead > futureLimit {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"the last timestamps are %s ahead of the clock; receivers drop samples more than %s in the future: lower --rate or --interval, or set --rate so that --interval is derived", ahead.Round(time.Second), futureLimit))
		}
	}
	if cfg.pid > 0 {
		after, err := readProcUsage(procRoot, cfg.pid)
		if err != nil {
			return err
		}
		rep.Receiver = receiverReport(cfg.pid, before, after, rep, p, interval)
	}
	if err := rep.write(stdout, cfg.output); err != nil {
		return err
	}
	if rep.SamplesAttempted > 0 && rep.Samples == 0 {
		return errNothingAccepted
	}
	return nil
}

// receiverReport relates the receiver's CPU and memory to the samples and series sent.
func receiverReport(pid int, before, after procUsage, rep *Report, p *plan, interval time.Duration) *ReceiverReport {
	rc := &ReceiverReport{
		PID:          pid,
		CPUSeconds:   after.cpuSeconds - before.cpuSeconds,
		RSSBytes:     after.rssBytes,
		PeakRSSBytes: after.peakRSSBytes,
	}
	if rep.Samples > 0 {
		rc.CPUSecondsPerMillionSamples = rc.CPUSeconds / (float64(rep.Samples) / 1e6)
	}
	active := int64(rep.TimeSeries)
	if p.churnPerRnd > 0 && rep.Rounds > 1 {
		staleRounds := int64(math.Ceil(float64(stalenessHorizon) / float64(interval)))
		churned := min(rep.Rounds-1, staleRounds) * int64(min(p.churnPerRnd, p.slots)) * int64(p.seriesPerSlot())
		active += churned
	}
	rc.ActiveSeries = active
	rc.RSSBytesPerActiveSeries = float64(rc.RSSBytes) / float64(active)
	return rc
}
