package main

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/cardinal-proxy/cardinal/aggregator"
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
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
}).Parse(statusHTML))

// statusPage is what the status page shows.
type statusPage struct {
	Version     string
	Started     time.Time
	ConfigFile  string
	Rules       []aggregator.RuleStats
	Downstreams []downstreamStatus
}

type downstreamStatus struct {
	Name, Kind string
	Full       bool
}

// handleStatus renders the status page: rules with their cardinality saving, downstreams.
func (s *server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	p := statusPage{Version: version, ConfigFile: s.flags.configFile, Rules: s.agg.Stats()}
	for _, d := range s.sinks {
		p.Downstreams = append(p.Downstreams, downstreamStatus{Name: d.name, Kind: d.kind, Full: d.Full()})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTemplate.Execute(w, p); err != nil {
		s.logger.Error("status page", "err", err)
	}
}

func formatRatio(r float64) string { return fmt.Sprintf("%.1f×", r) }
