package main

import (
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/status"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
)

// The SQL sink's TimescaleDB jobs are on the page.
var _ status.Jobs = (*timescale.Sink)(nil)

// statusPage builds the status page of s from its aggregator and downstreams.
func (s *server) statusPage() *status.Handler {
	downstreams := make([]status.Downstream, 0, len(s.sinks))
	for _, d := range s.sinks {
		row := status.Downstream{Name: d.Name, Kind: d.Kind, Queue: d}
		if jobs, ok := d.Sink.(status.Jobs); ok {
			row.Jobs = jobs
		}
		downstreams = append(downstreams, row)
	}
	var cluster status.Cluster
	if s.cluster != nil {
		cluster = s.cluster
	}
	return status.NewHandler(status.Options{
		Version:     version,
		ConfigFile:  s.flags.configFile,
		Rules:       s.agg,
		HA:          s.agg,
		Reloads:     s.reloader,
		WAL:         s.router,
		Cluster:     cluster,
		Downstreams: downstreams,
		Logger:      s.logger,
	})
}
