package main

import "github.com/cardinal-proxy/cardinal/cmd/cardinal/status"

// statusPage builds the status page of s from its aggregator and downstreams.
func (s *server) statusPage() *status.Handler {
	downstreams := make([]status.Downstream, 0, len(s.sinks))
	for _, d := range s.sinks {
		downstreams = append(downstreams, status.Downstream{Name: d.Name, Kind: d.Kind, Queue: d})
	}
	return status.NewHandler(status.Options{
		Version:     version,
		ConfigFile:  s.flags.configFile,
		Rules:       s.agg,
		Reloads:     s.reloader,
		WAL:         s.router,
		Downstreams: downstreams,
		Logger:      s.logger,
	})
}
