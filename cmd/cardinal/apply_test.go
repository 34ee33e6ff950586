package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/config"
)

// loadYAML writes a config file with body into a new directory and loads it.
func loadYAML(t *testing.T, body string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cardinal.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A reload applies the rules and says which other sections it changed: those are read once
// at start-up, and an operator who edited the cluster block (the ConfigMap invites it) must
// not believe it took effect.
func TestAReloadSaysWhichChangesWaitForARestart(t *testing.T) {
	const base = `
aggregator: {downstream_url: "http://127.0.0.1:9/api/v1/write"}
rules:
  - {name: req_total, match: req_total, type: counter, without: [pod]}
wal: {dir: /var/lib/cardinal/wal}
cluster:
  name: node-a
  peers: [node-b=127.0.0.1:9001]
`
	started := loadYAML(t, base)
	var logs strings.Builder
	s := &server{
		logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		agg:     aggregator.New(aggregator.Options{}),
		started: started, restartRequired: newRestartRequired(prometheus.NewRegistry()),
	}
	old := started
	for _, step := range []struct {
		name, body string
		want       []string
	}{
		{"a rule changed", strings.Replace(base, "without: [pod]", "without: [pod, instance]", 1), nil},
		{"leave_on_shutdown turned on", base + "  leave_on_shutdown: true\n", []string{"cluster"}},
		{"a peer and the WAL's directory", strings.Replace(strings.Replace(base, "node-b=127.0.0.1:9001", "node-b=127.0.0.1:9001, node-c=127.0.0.1:9002", 1), "/var/lib/cardinal/wal", "/data/wal", 1), []string{"cluster", "wal"}},
		{"the next reload, with the rules alone changed", strings.Replace(strings.Replace(strings.Replace(base, "node-b=127.0.0.1:9001", "node-b=127.0.0.1:9001, node-c=127.0.0.1:9002", 1), "/var/lib/cardinal/wal", "/data/wal", 1), "without: [pod]", "without: [instance]", 1), []string{"cluster", "wal"}},
		{"back to what it started with", base, nil},
	} {
		next := loadYAML(t, step.body)
		logs.Reset()
		if err := s.Apply(old, next); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		old = next
		if got := restartPending(started, next); !slices.Equal(got, step.want) {
			t.Errorf("%s: sections waiting for a restart %q, want %q", step.name, got, step.want)
		}
		wantGauge, wantLog := 0.0, ""
		if len(step.want) > 0 {
			wantGauge, wantLog = 1, "sections="+strings.Join(step.want, ",")
		}
		if g := testutil.ToFloat64(s.restartRequired); g != wantGauge {
			t.Errorf("%s: cardinal_config_restart_required %g, want %g", step.name, g, wantGauge)
		}
		if wantLog != "" && !strings.Contains(logs.String(), wantLog) || wantLog == "" && strings.Contains(logs.String(), "next restart") {
			t.Errorf("%s: the reload logged %q, want a warning naming %q", step.name, logs.String(), step.want)
		}
	}
}
