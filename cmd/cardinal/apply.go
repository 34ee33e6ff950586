package main

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config"
)

// Apply puts a reloaded configuration in force (reload.Applier): the rules, whose unchanged
// ones keep their state, the policy for unmatched series and warn_unmatched_after. The
// other sections are read once at start-up: a reload that changes them from what the
// process started with says so in its log and in cardinal_config_restart_required.
func (s *server) Apply(_, next *config.Config) error {
	if err := s.agg.SetRules(next.Rules); err != nil {
		return err
	}
	s.agg.SetForwardUnmatched(next.Aggregator.ForwardUnmatched())
	s.agg.SetWarnUnmatchedAfter(time.Duration(next.Aggregator.WarnUnmatchedAfter))
	pending := restartPending(s.started, next)
	if len(pending) > 0 {
		s.logger.Warn("configuration: these sections changed since start-up and take effect at the next restart; the process still runs with the settings it started with",
			"sections", strings.Join(pending, ","))
		s.restartRequired.Set(1)
	} else {
		s.restartRequired.Set(0)
	}
	return nil
}

// startupSections are the sections of c that are read once at start-up, by name.
func startupSections(c *config.Config) map[string]any {
	return map[string]any{
		"server": c.Server, "downstream": c.Downstream, "wal": c.WAL, "cluster": c.Cluster, "explore": c.Explore,
	}
}

// restartPending names, in order, the start-up sections whose settings in next differ from
// those the process started with.
func restartPending(started, next *config.Config) []string {
	was, now := startupSections(started), startupSections(next)
	var changed []string
	for _, name := range slices.Sorted(maps.Keys(now)) {
		if !reflect.DeepEqual(was[name], now[name]) {
			changed = append(changed, name)
		}
	}
	return changed
}

// newRestartRequired is cardinal_config_restart_required, registered on reg.
func newRestartRequired(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cardinal_config_restart_required",
		Help: "1 when the configuration last reloaded changes a section read once at start-up (server, downstream, wal, cluster, explore) from what this process started with: those changes take effect at the next restart.",
	})
	reg.MustRegister(g)
	return g
}
