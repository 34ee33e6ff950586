package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/internal/testcert"
)

// checkVsStartup are configurations at and just past every setting that has a limit or a
// parse step. Each invalid one must be refused by `cardinal check config` and by start-up
// with the same messages at the same file:line; each valid one must pass the check and start.
var checkVsStartup = []struct {
	name  string
	yaml  string // appended to a file downstream unless it has a downstream section
	valid bool
}{
	{"listen_addr_not_host_port", "server: {listen_addr: localhost}\n", false},
	{"max_request_bytes_zero", "server: {max_request_bytes: 0}\n", false},
	{"read_timeout_does_not_parse", "server: {read_timeout: soon}\n", false},
	{"limit_negative", "server:\n  limits: {max_labels_per_series: -1}\n", false},
	{"memory_limit_does_not_parse", "server: {memory_limit: lots}\n", false},
	{"flush_interval_under_a_second", "aggregator: {flush_interval: 500ms}\n", false},
	{"flush_delay_over_interval", "aggregator: {flush_interval: 10s, flush_delay: 11s}\n", false},
	{"staleness_zero", "aggregator: {staleness: 0s}\n", false},
	{"unmatched_unknown", "aggregator: {unmatched: keep}\n", false},
	{"ha_replica_label_invalid", "aggregator:\n  ha: {enabled: true, replica_label: 'replica-id'}\n", false},
	{"ha_labels_the_same", "aggregator:\n  ha: {group_label: prometheus, replica_label: prometheus}\n", false},
	{"ha_failover_under_a_second", "aggregator:\n  ha: {failover_timeout: 100ms}\n", false},
	{"ha_unknown_key", "aggregator:\n  ha: {replica: r}\n", false},
	{"ha_kube_prometheus", "aggregator:\n  ha: {enabled: true, group_label: prometheus, replica_label: prometheus_replica, failover_timeout: 1s}\n", true},
	{"downstream_url_not_http", "aggregator: {downstream_url: 'ftp://x/'}\n", false},
	{"remote_write_without_url", "downstream:\n  remote_write:\n    - name: a\n", false},
	{"remote_write_url_bad_port", "downstream:\n  remote_write:\n    - url: 'http://h:99999999999/api/v1/write'\n", false},
	{"remote_write_reserved_header", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      headers: {Content-Encoding: zstd}\n", false},
	{"remote_write_two_auths", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      bearer_token: t\n      basic_auth: {username: u, password: p}\n", false},
	{"remote_write_protobuf_message_unknown", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      protobuf_message: io.prometheus.write.v3.Request\n", false},
	{"remote_write_protobuf_message_v2", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      protobuf_message: io.prometheus.write.v2.Request\n", true},
	{"remote_write_timeout_zero", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      timeout: 0s\n", false},
	{"queue_max_bytes_zero", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      queue: {max_bytes: 0}\n", false},
	{"queue_max_samples_zero", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      queue: {max_samples_per_send: 0}\n", false},
	{"queue_shards_zero", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      queue: {shards: 0}\n", false},
	{"queue_shards_over_the_maximum", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      queue: {shards: 5000}\n", false},
	{"queue_shards_at_the_maximum", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      queue: {shards: 1024}\n", true},
	{"queue_backoff_inverted", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      queue: {min_backoff: 2s, max_backoff: 1s}\n", false},
	{"file_without_path", "downstream:\n  file: {name: f}\n", false},
	{"timescaledb_without_dsn", "downstream:\n  timescaledb:\n    - chunk_interval: 1h\n", false},
	{"timescaledb_dsn_bad_port", "downstream:\n  timescaledb:\n    - dsn: 'postgres://u@127.0.0.1:99999/m'\n", false},
	{"timescaledb_dsn_unknown_sslmode", "downstream:\n  timescaledb:\n    - dsn: 'postgres://u@127.0.0.1:1/m?sslmode=sometimes'\n", false},
	{"timescaledb_dsn_valid", "downstream:\n  timescaledb:\n    - dsn: 'postgres://u@127.0.0.1:1/m?connect_timeout=1'\n", true},
	{"timescaledb_chunk_under_a_minute", "downstream:\n  timescaledb:\n    - {dsn: 'postgres://u@127.0.0.1:1/m', chunk_interval: 30s}\n", false},
	{"timescaledb_compress_after_without_compression", "downstream:\n  timescaledb:\n    - {dsn: 'postgres://u@127.0.0.1:1/m', compress_after: 1d}\n", false},
	{"timescaledb_batch_size_zero", "downstream:\n  timescaledb:\n    - {dsn: 'postgres://u@127.0.0.1:1/m', batch_size: 0}\n", false},
	{"timescaledb_queue_zero", "downstream:\n  timescaledb:\n    - {dsn: 'postgres://u@127.0.0.1:1/m', max_queue_bytes: 0}\n", false},
	{"wal_without_dir", "wal: {fsync: always}\n", false},
	{"wal_fsync_unknown", "wal: {dir: wal, fsync: sometimes}\n", false},
	{"wal_fsync_interval_zero", "wal: {dir: wal, fsync: interval, fsync_interval: 0s}\n", false},
	{"wal_checkpoint_interval_under_a_second", "wal: {dir: wal, checkpoint_interval: 500ms}\n", false},
	{"wal_max_bytes_under_four_segments", "wal: {dir: wal, max_bytes: 1MiB}\n", false},
	{"wal_max_bytes_does_not_parse", "wal: {dir: wal, max_bytes: lots}\n", false},
	{"wal_at_every_edge", "wal: {dir: wal, fsync: always, checkpoint_interval: 1s, max_bytes: 64MiB}\n", true},
	{"explore_scan_for_under_a_second", "explore: {scan_for: 500ms}\n", false},
	{"explore_scan_every_under_scan_for", "explore: {scan_every: 1m, scan_for: 2m}\n", false},
	{"explore_budget_under_a_mebibyte", "explore: {memory_budget: 1000KiB}\n", false},
	{"explore_unknown_key", "explore: {scan_duration: 1m}\n", false},
	{"explore_at_every_edge", "explore: {scan_for: 1s, scan_every: 1s, memory_budget: 1MiB}\n", true},
	{"explore_off", "explore: {enabled: false}\n", true},
	{"remote_write_bearer_token_file_missing", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      bearer_token_file: absent-token\n", false},
	{"remote_write_token_file_relative_to_the_config", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      bearer_token_file: token.txt\n", true},
	{"remote_write_password_file_missing", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      basic_auth: {username: u, password_file: absent-password}\n", false},
	{"remote_write_tls_config_on_http", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      tls_config: {ca_file: cert.pem}\n", false},
	{"remote_write_tls_ca_file_missing", "downstream:\n  remote_write:\n    - url: https://127.0.0.1:1/api/v1/write\n      tls_config: {ca_file: absent-ca.pem}\n", false},
	{"remote_write_tls_ca_file_not_pem", "downstream:\n  remote_write:\n    - url: https://127.0.0.1:1/api/v1/write\n      tls_config: {ca_file: not-pem.txt}\n", false},
	{"remote_write_tls_cert_without_key", "downstream:\n  remote_write:\n    - url: https://127.0.0.1:1/api/v1/write\n      tls_config: {cert_file: cert.pem}\n", false},
	{"remote_write_tls_key_missing", "downstream:\n  remote_write:\n    - url: https://127.0.0.1:1/api/v1/write\n      tls_config: {cert_file: cert.pem, key_file: absent-key.pem}\n", false},
	{"remote_write_tls_at_every_key", "downstream:\n  remote_write:\n    - url: https://127.0.0.1:1/api/v1/write\n      tls_config: {ca_file: cert.pem, cert_file: cert.pem, key_file: key.pem, server_name: prometheus.example, insecure_skip_verify: false}\n", true},
	{"cluster_without_peers", "cluster: {name: n}\n", false},
	{"cluster_name_invalid", "cluster: {name: 'node 1', peers: ['127.0.0.1:1']}\n", false},
	{"cluster_refresh_under_a_second", "cluster: {name: n, peers: ['127.0.0.1:1'], refresh_interval: 500ms, probe_timeout: 500ms}\n", false},
	{"cluster_probe_timeout_over_refresh", "cluster: {name: n, peers: ['127.0.0.1:1'], refresh_interval: 1s, probe_timeout: 2s}\n", false},
	{"cluster_leave_after_under_refresh", "cluster: {name: n, peers: ['127.0.0.1:1'], refresh_interval: 2s, probe_timeout: 1s, leave_after: 1s}\n", false},
	{"cluster_handoff_timeout_under_a_second", "cluster: {name: n, peers: ['127.0.0.1:1'], handoff_timeout: 500ms}\n", false},
	{"cluster_leave_on_shutdown_not_a_bool", "cluster: {name: n, peers: ['127.0.0.1:1'], leave_on_shutdown: sometimes}\n", false},
	{"cluster_peer_without_port", "cluster: {name: n, peers: ['127.0.0.1']}\n", false},
	{"cluster_peer_name_invalid", "cluster: {name: n, peers: ['bad name=127.0.0.1:9']}\n", false},
	{"cluster_peer_name_at_two_addresses", "cluster: {name: n, peers: ['x=127.0.0.1:1', 'x=127.0.0.1:2']}\n", false},
	{"cluster_peer_listed_twice", "cluster: {name: n, peers: ['127.0.0.1:1', '127.0.0.1:1']}\n", false},
	{"cluster_peers_file_missing", "cluster: {name: n, peers_file: absent-peers.yaml}\n", false},
	{"cluster_peers_file_not_a_list", "cluster: {name: n, peers_file: peers-not-a-list.yaml}\n", false},
	{"cluster_peers_file_entry_twice", "cluster: {name: n, peers_file: peers-twice.yaml}\n", false},
	{"cluster_peers_file_relative_to_the_config", "cluster: {name: n, peers_file: peers.yaml}\n", true},
	{"cluster_empty_is_off", "cluster:\n  # peers_file: peers.yaml\n", true},
	{"cluster_forward_ca_file_missing", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  forward: {tls: {ca_file: absent-ca.pem}}\n", false},
	{"cluster_forward_ca_file_not_pem", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  forward: {tls: {ca_file: not-pem.txt}}\n", false},
	{"cluster_forward_cert_without_key", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  forward: {tls: {cert_file: not-pem.txt}}\n", false},
	{"cluster_forward_bearer_token_file_missing", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  forward: {bearer_token_file: absent-token}\n", false},
	{"cluster_forward_password_file_missing", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  forward: {basic_auth: {username: u, password_file: absent-password}}\n", false},
	{"cluster_forward_timeout_zero", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  forward: {timeout: 0s}\n", false},
	{"cluster_at_every_edge", "cluster:\n  name: n\n  peers: ['127.0.0.1:1']\n  refresh_interval: 1s\n  probe_timeout: 1s\n  leave_after: 1s\n  join_after: 0s\n  handoff_timeout: 1s\n  leave_on_shutdown: true\n  forward: {bearer_token_file: token.txt, tls: {ca_file: cert.pem, cert_file: cert.pem, key_file: key.pem}}\n", true},
	{"remote_write_metadata_send_interval_zero", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      metadata_config: {send_interval: 0s}\n", false},
	{"remote_write_metadata_off_ignores_its_interval", "downstream:\n  remote_write:\n    - url: http://127.0.0.1:1/api/v1/write\n      metadata_config: {send: false, send_interval: 0s}\n", true},
	{"rule_exemplars_negative", "rules:\n  - {metric_name: x, type: counter, exemplars: -1}\n", false},
	{"rule_exemplars_over_limit", "rules:\n  - {metric_name: x, type: counter, exemplars: 101}\n", false},
	{"rule_exemplars_at_limit", "rules:\n  - {metric_name: x, type: counter, exemplars: 100}\n", true},
	{"rule_interval_under_a_second", "rules:\n  - {metric_name: x, type: counter, interval: 100ms}\n", false},
	{"rule_flush_delay_over_interval", "rules:\n  - {metric_name: x, type: counter, interval: 5s, flush_delay: 6s}\n", false},
	{"rule_max_input_series_negative", "rules:\n  - {metric_name: x, type: counter, max_input_series: -1}\n", false},
	{"rule_selector_does_not_parse", "rules:\n  - {match: 'x{a=}', type: counter}\n", false},
	{"rule_at_every_edge", "rules:\n  - {metric_name: x, type: counter, interval: 1s, flush_delay: 1s, max_input_series: 0}\n", true},
}

func TestCheckConfigRefusesExactlyWhatStartupRefuses(t *testing.T) {
	dir := t.TempDir()
	// Files the configs name, relative to them: a certificate and its key, a token, a file
	// that is not PEM, and peers files (a sound one, one that is not a list, and one that
	// lists an address twice).
	testcert.Write(t, dir, 1)
	for name, content := range map[string]string{
		"token.txt": "s3cr3t\n", "not-pem.txt": "not a certificate\n",
		"peers.yaml": "- 127.0.0.1:1\n", "peers-not-a-list.yaml": "not: [a list\n", "peers-twice.yaml": "[127.0.0.1:1, 127.0.0.1:1]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range checkVsStartup {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.yaml
			if !strings.Contains(text, "downstream:") {
				text = "downstream:\n  file: {path: '-'}\n" + text
			}
			file := filepath.Join(dir, tt.name+".yaml")
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code := run([]string{"check", "config", file}, &out, &errOut)
			started, startErr := startOnce(t, file)
			if tt.valid {
				if code != 0 || !started {
					t.Fatalf("a valid config: check exit %d (%s), started %v (%v)", code, errOut.String(), started, startErr)
				}
				return
			}
			if code != 1 || started {
				t.Fatalf("an invalid config: check exit %d, started %v", code, started)
			}
			problems := strings.Split(strings.TrimSpace(strings.TrimPrefix(errOut.String(), "FAILED: "+file+"\n")), "\n")
			for _, p := range problems {
				if !strings.HasPrefix(p, file+":") {
					t.Errorf("check config problem without file:line: %q", p)
				}
				if startErr == nil || !strings.Contains(startErr.Error(), p) {
					t.Errorf("start-up refused with %v\nwhich lacks check config's %q", startErr, p)
				}
			}
			if startErr != nil && strings.Count(startErr.Error(), "\n")+1 != len(problems) {
				t.Errorf("start-up reported %q, check config %q", startErr, problems)
			}
		})
	}
}

// A cluster member's name may come from $NODE_NAME: check config refuses an invalid one as
// start-up does, with the same message.
func TestCheckConfigRefusesTheMemberNameStartupRefuses(t *testing.T) {
	t.Setenv("NODE_NAME", "node 1")
	file := filepath.Join(t.TempDir(), "cardinal.yaml")
	if err := os.WriteFile(file, []byte("downstream:\n  file: {path: '-'}\ncluster: {peers: ['127.0.0.1:1']}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := run([]string{"check", "config", file}, &out, &errOut)
	started, startErr := startOnce(t, file)
	const want = `cluster member name "node 1": only letters`
	if code != 1 || !strings.Contains(errOut.String(), want) {
		t.Errorf("check config: exit %d, %q; want exit 1 and %q", code, errOut.String(), want)
	}
	if started || startErr == nil || !strings.Contains(startErr.Error(), want) {
		t.Errorf("start-up: started %v, %v; want it refused with %q", started, startErr, want)
	}
}

// A cluster section whose contents are commented out turns the cluster off: check config
// prints a warning saying so, and start-up logs the same one.
func TestCheckConfigAndStartupWarnOfAnEmptyClusterSection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cardinal.yaml")
	if err := os.WriteFile(file, []byte("downstream:\n  file: {path: '-'}\ncluster:\n  # peers: ['127.0.0.1:1']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const want = ":3: cluster: the section is empty, so clustering is off"
	var out, errOut strings.Builder
	if code := run([]string{"check", "config", file}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "WARNING: "+file+want) {
		t.Errorf("check config: exit %d, %q; want exit 0 and a warning %q", code, out.String(), want)
	}
	started, logs, err := startLogged(t, file)
	if !started || !strings.Contains(logs, want) {
		t.Errorf("start-up: started %v (%v); want it started, logging %q:\n%s", started, err, want, logs)
	}
}

// startOnce starts the server on file with a free loopback port and reports whether it came
// up (it is then stopped at once) or the error it stopped with.
func startOnce(t *testing.T, file string) (bool, error) {
	t.Helper()
	started, _, err := startLogged(t, file)
	return started, err
}

// startLogged is startOnce, also returning what the server logged.
func startLogged(t *testing.T, file string) (bool, string, error) {
	t.Helper()
	f, err := parseFlags([]string{"--config.file=" + file, "--web.listen-address=127.0.0.1:0", "--shutdown.timeout=5s", "--config.check-interval=0"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuilder{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, f, logger) }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-done:
			return false, logs.String(), err
		case <-deadline:
			t.Fatalf("the server neither started nor failed:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if strings.Contains(logs.String(), "cardinal started") {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stopping: %v", err)
			}
			return true, logs.String(), nil
		}
	}
}

// lockedBuilder is a strings.Builder the server's goroutines can log to while a test reads it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
