package aggregator

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// numShards is the number of lock shards; an output key's hash picks its shard.
const numShards = 256

// Options configure an Aggregator.
type Options struct {
	// Output receives the series every flush produces.
	Output Sink
	// Forward receives raw series: unmatched ones (when ForwardUnmatched) and the inputs of
	// keep_input rules. It may be nil.
	Forward          Sink
	ForwardUnmatched bool
	// HandOff receives, after a flush, the state of the outputs SetOwnership says this
	// member no longer owns, for their owners. It may be nil (the state is then dropped).
	HandOff func(*Handoff)
	// FlushTick is how often the flusher looks for windows to close (default 1s).
	FlushTick time.Duration
	// MaxFuture is how far ahead of the wall clock a sample may be (default 10m).
	MaxFuture time.Duration
	// WarnUnmatchedAfter is how long a rule may have no input series before a warning says
	// so (0: never).
	WarnUnmatchedAfter time.Duration
	// Now is the wall clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Aggregator holds the state of every rule and flushes closed windows to its sink.
type Aggregator struct {
	opts  Options
	locks [numShards]paddedMutex

	index atomic.Pointer[ruleIndex]
	// outMeta is the metadata of the outputs, learned from the inputs' (CheckMetadata).
	outMeta outputMetadata
	// swap is held for reading by Ingest while it uses a rule index, and for writing by
	// SetRules to replace the index: once SetRules has it, no request can still write into
	// the state of a rule it is about to flush and drop.
	swap    sync.RWMutex
	batches sync.Pool

	mu    sync.Mutex // serialises flushes and rule changes
	rules []*ruleState

	// own is the Ownership of a cluster member (nil: everything is owned), read by
	// ingestion under shard locks and by flushes.
	own atomic.Pointer[Ownership]
	// strays is set when this member begins an output another member owns (a request
	// routed by a sender's ring other than this member's, or by this member's ring before
	// it changed) or merges one: the next flush tick hands off what it does not own.
	strays atomic.Bool
	// merged are the handoffs merged lately, by id (MergeOnce); under mu, and checkpointed.
	merged mergedHandoffs
	// ha holds the elections of the rules with ha (ha.go).
	ha haTracker

	forwardUnmatched   atomic.Bool
	warnUnmatchedAfter atomic.Int64 // ns
	refusedAt          atomic.Int64 // wall clock (ms) of the last request refused for back-pressure
	forwarded          atomic.Uint64
	unmatchedDropped   atomic.Uint64
	peerUnmatched      atomic.Uint64 // samples a peer forwarded that match no rule here
}

// paddedMutex keeps neighbouring shard locks off one cache line.
type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

// ruleIndex finds the rules a series may feed: by exact metric name, plus the rules whose
// selector has no exact name, which are checked for every series.
type ruleIndex struct {
	byName nameIndex    // rules that select series by metric name
	scan   []*ruleState // rules that must look at every series
	// version names the rule set (rulesVersion): members with the same version select and
	// place every series alike.
	version uint64
}

// rulesVersion hashes the fingerprints of a rule set, in sorted order: never 0.
func rulesVersion(rs []*ruleState) uint64 {
	prints := make([]uint64, len(rs))
	for i, r := range rs {
		prints[i] = r.rule.Fingerprint
	}
	slices.Sort(prints)
	var d xxhash.Digest
	d.Reset()
	var buf [8]byte
	for _, p := range prints {
		binary.LittleEndian.PutUint64(buf[:], p)
		_, _ = d.Write(buf[:])
	}
	return d.Sum64() | 1
}

// New returns an Aggregator with no rules; SetRules gives it some.
func New(opts Options) *Aggregator {
	if opts.FlushTick <= 0 {
		opts.FlushTick = time.Second
	}
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Aggregator{opts: opts}
	a.forwardUnmatched.Store(opts.ForwardUnmatched)
	a.warnUnmatchedAfter.Store(int64(opts.WarnUnmatchedAfter))
	a.batches.New = func() any { return &batch{} }
	a.index.Store(&ruleIndex{})
	return a
}

// SetRules replaces the rule set. A rule whose definition (fingerprint) is unchanged keeps
// its state, so its running totals continue; a removed or changed rule's open windows are
// flushed first and its state dropped; a new rule starts empty.
func (a *Aggregator) SetRules(rs []*rules.Rule) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := make(map[uint64][]*ruleState, len(a.rules))
	for _, st := range a.rules {
		old[st.rule.Fingerprint] = append(old[st.rule.Fingerprint], st)
	}
	next := make([]*ruleState, 0, len(rs))
	for _, r := range rs {
		if sts := old[r.Fingerprint]; len(sts) > 0 {
			next = append(next, sts[0])
			old[r.Fingerprint] = sts[1:]
			continue
		}
		st, err := newRuleState(r)
		if err != nil {
			return err
		}
		st.own, st.elections, st.strays = &a.own, &a.ha, &a.strays
		next = append(next, st)
	}
	idx := &ruleIndex{}
	byName := map[string][]*ruleState{}
	for _, st := range next {
		names := st.metricNames()
		if len(names) == 0 {
			idx.scan = append(idx.scan, st)
			continue
		}
		for _, n := range names {
			byName[n] = append(byName[n], st)
		}
	}
	idx.byName = newNameIndex(byName)
	idx.version = rulesVersion(next)
	a.swap.Lock()
	a.index.Store(idx)
	a.swap.Unlock()
	a.rules = next
	a.outMeta.prune(next)
	for _, sts := range old {
		for _, st := range sts {
			a.send(a.flushRule(st, true, false, nil))
			a.send(a.retire(st))
			a.opts.Logger.Info("rule stopped; open windows flushed", "rule", st.rule.Name, "source", st.rule.Source)
		}
	}
	return nil
}

// SetForwardUnmatched changes what happens to series no rule selects (on reload).
func (a *Aggregator) SetForwardUnmatched(forward bool) { a.forwardUnmatched.Store(forward) }

// SetWarnUnmatchedAfter changes how long a rule may have no input series before a warning
// (on reload; 0: never).
func (a *Aggregator) SetWarnUnmatchedAfter(d time.Duration) { a.warnUnmatchedAfter.Store(int64(d)) }

// NoteRefused records that the receiver refused a request because cardinal could not take
// it (a full downstream queue): the data still exists upstream and will come back. Until
// flush_delay after the last refusal, windows close only as the samples' own timestamps move
// on, never by the wall clock, so an outage longer than flush_delay closes no window early
// and expires no input series.
func (a *Aggregator) NoteRefused() { a.refusedAt.Store(a.opts.Now().UnixMilli()) }

// Run closes windows every FlushTick until ctx is done.
func (a *Aggregator) Run(ctx context.Context) {
	defer a.startLimitLog(ctx)() // logs rules whose limits drop series, at most once a minute each
	t := time.NewTicker(a.opts.FlushTick)
	defer t.Stop()
	var forgotAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.Flush(false)
			now := a.opts.Now()
			a.checkNoOps(now)
			if now.Sub(forgotAt) >= time.Minute {
				a.ha.forget(now.Add(-haForget).UnixMilli())
				forgotAt = now
			}
		}
	}
}

// Flush closes every window that is due and sends the output series to the sink. force, for
// a shutdown without a WAL, closes every window with data: the newest, closed before its
// end, is stamped with the newest sample's timestamp (never in the future, and never the
// window end that a restarted cardinal continuing the window would write again).
func (a *Aggregator) Flush(force bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var h *Handoff
	if own := a.ownership(); own != nil {
		h = &Handoff{}
		if a.strays.Swap(false) {
			a.exportUnowned(own, h)
		}
	}
	for _, st := range a.rules {
		a.send(a.flushRule(st, force, force, h))
	}
	a.handOff(h)
}

// HandOffNow hands off at once the state of every output this member does not own, without
// waiting for the next window to close: a cluster calls it when the ring changes.
func (a *Aggregator) HandOffNow() {
	own := a.ownership()
	if own == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	h := &Handoff{}
	a.exportUnowned(own, h)
	a.handOff(h)
}

// exportUnowned takes the outputs own says this member does not own out of every rule into
// h, one shard lock at a time. Called with mu held.
func (a *Aggregator) exportUnowned(own Ownership, h *Handoff) {
	take := unowned{own}
	for _, r := range a.rules {
		for s := range numShards {
			a.locks[s].Lock()
			if rs := &r.shards[s]; rs.ready {
				r.exportUnowned(rs, take, h)
			}
			a.locks[s].Unlock()
		}
	}
}

// handOff gives a non-empty handoff to Options.HandOff.
func (a *Aggregator) handOff(h *Handoff) {
	if h != nil && h.Len() > 0 && a.opts.HandOff != nil {
		a.opts.HandOff(h)
	}
}

func (a *Aggregator) send(series []prompb.TimeSeries) {
	if len(series) > 0 && a.opts.Output != nil {
		a.opts.Output.Send(series)
	}
}

// RuleStats is a snapshot of one rule's state for the status page and metrics.
type RuleStats struct {
	Name, Source, Type string
	InputSeries        int64
	OutputSeries       int64
	Samples            uint64
	Dropped            map[string]uint64
	CounterResets      uint64
	SeriesFlushed      uint64
	LastFlush          time.Time
	LastFlushDuration  time.Duration
	// LastFlushMaxLockHold is the longest the last flush held one shard lock: the most it
	// can have delayed a request.
	LastFlushMaxLockHold time.Duration
	// NotOwned counts samples of requests forwarded by peers that feed an output another
	// member owns by the sender's ring (it sent them there too), so they were not counted.
	NotOwned uint64
	// HADeduplicated counts samples of HA replicas that were not elected; HAUnnamed those
	// of series without the replica label, counted as without ha. Both are 0 without ha.
	HADeduplicated, HAUnnamed uint64
	// TypeMismatches counts metadata that declares a metric the rule selects of the other
	// kind than the rule's type (counter-like or gauge-like).
	TypeMismatches uint64
	// LateCounted counts counter samples for a window already closed, whose increase was
	// credited to the oldest open window instead.
	LateCounted uint64
	// ExemplarsDropped counts exemplars of selected series not passed on to an output.
	ExemplarsDropped uint64
	// HA is the rule's election settings, nil without.
	HA *rules.HA
	// Interval is the rule's window length: a flush closes one window per interval.
	Interval time.Duration
	// MaxInputSeries and MaxOutputSeries are the rule's cardinality limits (0: unlimited).
	MaxInputSeries, MaxOutputSeries int
	// Warnings say, while it holds, that the rule does nothing useful: labels it drops or
	// keeps that its inputs never carry, no reduction, or no input for a long time.
	Warnings []string
}

// Stats returns a snapshot of every rule's counters.
func (a *Aggregator) Stats() []RuleStats {
	a.mu.Lock()
	rs := append([]*ruleState(nil), a.rules...)
	a.mu.Unlock()
	out := make([]RuleStats, 0, len(rs))
	for _, r := range rs {
		st := RuleStats{
			Name: r.rule.Name, Source: r.rule.Source, Type: string(r.rule.Type),
			InputSeries: r.inputs.Load(), OutputSeries: r.outputN.Load(),
			Dropped:              map[string]uint64{},
			LastFlushDuration:    time.Duration(r.lastFlushDur.Load()),
			LastFlushMaxLockHold: time.Duration(r.lastFlushHold.Load()),
			NotOwned:             r.notOwned.Load(),
			HADeduplicated:       r.haDeduplicated.Load(),
			HAUnnamed:            r.haUnnamed.Load(),
			TypeMismatches:       r.typeMismatches.Load(),
			ExemplarsDropped:     r.exemplarsDropped.Load(),
			HA:                   r.rule.HA,
			Interval:             r.rule.Interval,
			MaxInputSeries:       r.rule.MaxInputSeries,
			MaxOutputSeries:      r.rule.MaxOutputSeries,
			Warnings:             r.warnings(),
		}
		if ms := r.lastFlush.Load(); ms > 0 {
			st.LastFlush = time.UnixMilli(ms)
		}
		var sum shardStats
		for s := range numShards {
			a.locks[s].Lock()
			ss := &r.shards[s].stats
			sum.ingested += ss.ingested
			sum.resets += ss.resets
			sum.late += ss.late
			sum.seriesFlushed += ss.seriesFlushed
			for i := range sum.dropped {
				sum.dropped[i] += ss.dropped[i]
			}
			a.locks[s].Unlock()
		}
		st.Samples, st.CounterResets, st.SeriesFlushed = sum.ingested, sum.resets, sum.seriesFlushed
		st.LateCounted = sum.late
		for i, n := range sum.dropped {
			st.Dropped[dropReasonNames[i]] = n
		}
		out = append(out, st)
	}
	return out
}

// RulesSelecting returns the names of the rules that select series of the metric name by
// their metric_name (a rule that matches names by a pattern is not listed).
func (a *Aggregator) RulesSelecting(metric string) []string {
	var names []string
	for _, r := range a.index.Load().byName.lookup(metric) {
		names = append(names, r.rule.Name)
	}
	return names
}

// String names the aggregator's rule count, for logs.
func (a *Aggregator) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("aggregator(%d rules)", len(a.rules))
}
