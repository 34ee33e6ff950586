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

// buildSinks creates every configured downstream.
func buildSinks(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, logger *slog.Logger) (fanout, error) {
	var out fanout
	for _, rw := range cfg.Downstream.RemoteWrite {
		c, err := downstream.NewRemoteWrite(rw, reg, logger)
		if err != nil {
			return nil, fmt.Errorf("downstream %q: %w", rw.Name, err)
		}
		out = append(out, namedDownstream{name: rw.Name, kind: "remote_write", sink: c})
	}
	if fc := cfg.Downstream.File; fc != nil {
		fs, err := newFileSink(fc.Path, logger)
		if err != nil {
			return nil, err
		}
		out = append(out, namedDownstream{name: fc.Name, kind: "file", sink: fs})
	}
	for _, tc := range cfg.Downstream.TimescaleDB {
		ts, err := timescale.New(ctx, tc, reg, logger)
		if err != nil {
			return nil, fmt.Errorf("downstream %q: %w", tc.Name, err)
		}
		out = append(out, namedDownstream{name: tc.Name, kind: "timescaledb", sink: ts})
	}
	if len(out) == 0 {
		logger.Warn("no downstream configured: aggregated series go nowhere")
	}
	return out, nil
}
