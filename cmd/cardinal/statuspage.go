package main

import "github.com/cardinal-proxy/cardinal/cmd/cardinal/status"

// statusPage builds the status page of s from its aggregator and downstreams.
func (s *server) statusPage() *status.Handler {
	downstreams := make([]status.Downstream, 0, len(s.sinks))
	for _, d := range s.sinks {
		downstreams = append(downstreams, status.Downstream{Name: d.Name, Kind: d.Kind, Queue: d})
	}
	var cluster status.Cluster
	if s.cluster != nil {
		cluster = s.cluster
	}
	return status.NewHandler(status.Options{
		Version:     version,
		ConfigFile:  s.flags.configFile,
		Rules:       s.agg,
		Reloads:     s.reloader,
		WAL:         s.router,
		Cluster:     cluster,
		Downstreams: downstreams,
		Logger:      s.logger,
	})
}
