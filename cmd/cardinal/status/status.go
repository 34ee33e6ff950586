// Package status serves cardinal's status page: the version and configuration file, the
// warnings about rules that do nothing useful, every rule with its input and output series
// and the cardinality reduction between them, the Prometheus HA elections, the write-ahead log, the cluster's ring, and
// every downstream with whether its queue is full and the health of the jobs its database
// runs for it. It reads them through the small interfaces below; building them from the
// running proxy is left to cmd/cardinal.
package status

import (
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/reload"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/router"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
)

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ratio": func(in, out int64) string {
		if out == 0 {
			return "–"
		}
		return formatRatio(float64(in) / float64(out))
	},
	"mib": func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
}).Parse(statusHTML))

// Rules is what the page needs of the aggregator: a snapshot of every rule's counters.
type Rules interface {
	Stats() []aggregator.RuleStats
}

// HA is what the page needs of the aggregator's HA elections: the elected replica of every
// Prometheus HA group seen.
type HA interface {
	HAGroups() []aggregator.HAGroup
}

// Queue is what the page needs of a downstream's sink: whether its bounded queue is full,
// in which case the receiver answers 503.
type Queue interface {
	Full() bool
}

// Downstream is one downstream as the page lists it.
type Downstream struct {
	// Name and Kind are as in logs and metrics: the configured name, and remote_write,
	// file or timescale.
	Name, Kind string
	Queue      Queue
	// Jobs, when set, gives the background jobs the downstream's database runs for it.
	Jobs Jobs
}

// Jobs is what the page needs of a downstream whose database runs jobs for it (the
// TimescaleDB policies of the SQL sink): their state at its last poll.
type Jobs interface {
	Jobs() []timescale.JobStatus
}

// Reloads is what the page needs of the configuration reloader: the last attempt, if any.
type Reloads interface {
	Last() (reload.Outcome, bool)
}

// WAL is what the page needs of the write-ahead log: its first and last entries and the
// last checkpoint attempt (nil before the first); ok is false when there is no WAL.
type WAL interface {
	WALStatus() (first, last uint64, lastCheckpoint *router.CheckpointResult, ok bool)
}

// Cluster is what the page needs of a cluster member: the ring it routes by.
type Cluster interface {
	ClusterStatus() ClusterStatus
}

// ClusterStatus is this member's view of its cluster.
type ClusterStatus struct {
	// Self is this member's name; Version the ring's (members that agree show the same).
	Self, Version string
	// Members are the ring's, sorted by name; Candidates the peers seen ready that have
	// not joined it yet.
	Members, Candidates []ClusterMember
	// HandoffWait says whether the outputs this member gained in the ring's last change
	// (or its start) still wait for their previous owners' state; HandoffWaiting lists the
	// peers that had not handed it over at the last round, with why, while they do.
	HandoffWait    string
	HandoffWaiting []string
}

// ClusterMember is one member of the ring.
type ClusterMember struct {
	Name, Addr string
	// State is how this member sees it: ready, not answering (and when it leaves), routing
	// by another ring, or for a candidate when it joins. Trouble is true for a state an
	// operator should look at.
	State   string
	Trouble bool
	// Shards is how many of the 262144 logical shards it owns.
	Shards int
	// QueueFull is true while the forward queue to it is full (the receiver answers 503).
	QueueFull bool
	// QueueBytes is what the forward queues to it hold, of QueueLimit (0 for this member).
	QueueBytes, QueueLimit int64
}

// Options are what the page shows.
type Options struct {
	Version    string
	ConfigFile string
	Rules      Rules
	// Reloads, when set, gives the outcome of the last configuration reload.
	Reloads Reloads
	// HA, when set, gives the HA elections.
	HA HA
	// WAL, when set, gives the state of the write-ahead log.
	WAL WAL
	// Cluster, when set, gives the ring of a cluster member.
	Cluster Cluster
	// Downstreams are listed in this order.
	Downstreams []Downstream
	// Logger receives the errors of writing the page; nil discards them.
	Logger *slog.Logger
}

// Handler renders the status page, with the rules' and queues' state at each request.
type Handler struct {
	opts Options
}

// NewHandler returns the status page of o.
func NewHandler(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: o}
}

// page is what the template shows.
type page struct {
	Version    string
	ConfigFile string
	Reload     *reloadRow
	WAL        *walRow
	Cluster    *ClusterStatus
	Rules      []aggregator.RuleStats
	// HARules are the rules with ha; HAGroups the elections.
	HARules  []aggregator.RuleStats
	HAGroups []aggregator.HAGroup
	// Warnings are the rules' no-op warnings that hold now, each naming its rule.
	Warnings    []string
	Downstreams []downstreamRow
}

// reloadRow is the last reload attempt: when, and why it failed.
type reloadRow struct {
	Time    time.Time
	Failed  bool
	Err     string
	Changed bool
}

// walRow is the write-ahead log's state.
type walRow struct {
	First, Last    uint64
	Checkpointed   bool
	CheckpointTime time.Time
	CheckpointAt   uint64
	CheckpointErr  string
}

type downstreamRow struct {
	Name, Kind string
	Full       bool
	Jobs       []timescale.JobStatus
}

// ServeHTTP renders the status page: rules with their cardinality saving, downstreams.
func (h *Handler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	p := page{Version: h.opts.Version, ConfigFile: h.opts.ConfigFile, Rules: h.opts.Rules.Stats()}
	for _, r := range p.Rules {
		p.Warnings = append(p.Warnings, r.Warnings...)
		if r.HA != nil {
			p.HARules = append(p.HARules, r)
		}
	}
	if h.opts.HA != nil {
		p.HAGroups = h.opts.HA.HAGroups()
	}
	if h.opts.Reloads != nil {
		if o, ok := h.opts.Reloads.Last(); ok {
			p.Reload = &reloadRow{Time: o.Time, Failed: o.Err != nil, Changed: o.Changed}
			if o.Err != nil {
				p.Reload.Err = o.Err.Error()
			}
		}
	}
	if h.opts.WAL != nil {
		if first, last, cp, ok := h.opts.WAL.WALStatus(); ok {
			p.WAL = &walRow{First: first, Last: last}
			if cp != nil {
				p.WAL.Checkpointed, p.WAL.CheckpointTime, p.WAL.CheckpointAt = true, cp.Time, cp.Index
				if cp.Err != nil {
					p.WAL.CheckpointErr = cp.Err.Error()
				}
			}
		}
	}
	if h.opts.Cluster != nil {
		cs := h.opts.Cluster.ClusterStatus()
		p.Cluster = &cs
	}
	for _, d := range h.opts.Downstreams {
		row := downstreamRow{Name: d.Name, Kind: d.Kind, Full: d.Queue.Full()}
		if d.Jobs != nil {
			row.Jobs = d.Jobs.Jobs()
		}
		p.Downstreams = append(p.Downstreams, row)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTemplate.Execute(w, p); err != nil {
		h.opts.Logger.Error("status page", "err", err)
	}
}

func formatRatio(r float64) string { return fmt.Sprintf("%.1f×", r) }
