package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
)

// buildSinks creates every configured downstream. A constructor's error is prefixed with
// the downstream's name here, once.
func buildSinks(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, logger *slog.Logger) (downstream.Fanout, error) {
	var out downstream.Fanout
	add := func(name, kind string, sink downstream.Sink, err error) error {
		if err != nil {
			return fmt.Errorf("downstream %q: %w", name, err)
		}
		out = append(out, downstream.Named{Name: name, Kind: kind, Sink: sink})
		return nil
	}
	for _, rw := range cfg.Downstream.RemoteWrite {
		s, err := downstream.NewRemoteWrite(rw, reg, logger)
		if err := add(rw.Name, "remote_write", s, err); err != nil {
			return nil, err
		}
	}
	if fc := cfg.Downstream.File; fc != nil {
		s, err := downstream.NewFile(*fc, logger)
		if err := add(fc.Name, "file", s, err); err != nil {
			return nil, err
		}
	}
	for _, tc := range cfg.Downstream.TimescaleDB {
		s, err := timescale.New(ctx, tc, reg, logger)
		if err := add(tc.Name, "timescaledb", s, err); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		logger.Warn("no downstream configured: aggregated series go nowhere")
	}
	return out, nil
}
