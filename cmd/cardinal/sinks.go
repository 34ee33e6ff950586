package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// buildSinks creates every configured downstream.
func buildSinks(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, logger *slog.Logger) (fanout, error) {
	var out fanout
	for _, rw := range cfg.Downstream.RemoteWrite {
		cc, err := clientConfig(rw)
		if err != nil {
			return nil, err
		}
		c, err := remotewrite.NewClient(cc, reg, logger)
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
		ts, err := timescale.New(ctx, timescale.Options{
			Name:           tc.Name,
			DSN:            string(tc.DSN),
			ChunkInterval:  time.Duration(tc.ChunkInterval),
			Compression:    tc.Compression,
			CompressAfter:  tc.CompressAge(),
			Retention:      time.Duration(tc.Retention),
			PartitionAhead: time.Duration(tc.PartitionAhead),
			BatchSize:      tc.BatchSize,
			MaxQueueBytes:  int64(tc.MaxQueueBytes),
		}, reg, logger)
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

// clientConfig maps a remote_write entry to the sender's configuration, reading secrets
// from their files.
func clientConfig(rw downstream.RemoteWriteConfig) (remotewrite.ClientConfig, error) {
	cc := remotewrite.ClientConfig{
		Name:              rw.Name,
		URL:               rw.URL,
		Headers:           rw.Headers,
		BearerToken:       string(rw.BearerToken),
		Timeout:           time.Duration(rw.Timeout),
		MaxQueueBytes:     int64(rw.Queue.MaxBytes),
		MaxSamplesPerSend: rw.Queue.MaxSamplesPerSend,
		Shards:            rw.Queue.Shards,
		MinBackoff:        time.Duration(rw.Queue.MinBackoff),
		MaxBackoff:        time.Duration(rw.Queue.MaxBackoff),
	}
	if rw.BearerTokenFile != "" {
		b, err := os.ReadFile(rw.BearerTokenFile)
		if err != nil {
			return cc, fmt.Errorf("downstream %q: bearer_token_file: %w", rw.Name, err)
		}
		cc.BearerToken = strings.TrimSpace(string(b))
	}
	if ba := rw.BasicAuth; ba != nil {
		pw := string(ba.Password)
		if ba.PasswordFile != "" {
			b, err := os.ReadFile(ba.PasswordFile)
			if err != nil {
				return cc, fmt.Errorf("downstream %q: password_file: %w", rw.Name, err)
			}
			pw = strings.TrimSpace(string(b))
		}
		cc.BasicAuth = &remotewrite.BasicAuth{Username: ba.Username, Password: pw}
	}
	return cc, nil
}
