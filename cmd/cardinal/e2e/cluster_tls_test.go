package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/internal/testcert"
)

// clusterToken is the bearer token both members' web configs require, and their forwarding
// sends.
const clusterToken = "peer-b3arer-t0ken"

// peerTrouble matches a log line of a refused (401) or failed TLS peer request. 401 is a
// whole word: the test's temporary directories, named in each log's first line, end in
// random digits that may hold it (a run failed on ".../token4018992667/...").
var peerTrouble = regexp.MustCompile(`(?m)^.*(\b401\b|x509|tls:).*$`)

// TestCluster_peer_traffic_over_TLS_with_a_bearer_token runs two members whose HTTP
// interface takes only HTTPS with a bearer token (--web.config.file), and whose peer traffic
// (cluster.forward) uses TLS trusting the members' certificate and that token. A member
// that joins while agents write to the first has every kind of peer traffic cross it: the
// identity probes, the first's forwarded requests, the handoff of the outputs the second
// gains, and the second's questions whether the first has handed over. The aggregated gauge
// at Prometheus comes out whole from the two, and neither member logged a refusal.
func TestCluster_peer_traffic_over_TLS_with_a_bearer_token(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	dir := t.TempDir()
	ca := testcert.Write(t, dir, 1)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(clusterToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbearer_token_file: token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	config := func(name string) string {
		return fmt.Sprintf(`
aggregator:
  flush_interval: 5s
  flush_delay: 1s
downstream:
  remote_write:
    - url: %s
      name: prom
      queue: {min_backoff: 20ms, max_backoff: 200ms}
cluster:
  name: %s
  peers: [%s, %s]
  refresh_interval: 1s
  probe_timeout: 1s
  join_after: 1s
  forward:
    bearer_token_file: %s
    tls: {ca_file: %s}
    queue: {min_backoff: 20ms, max_backoff: 200ms}
rules:
  - metric_name: tls_inflight
    type: gauge
    drop_labels: [pod]
`, prom.WriteURL, name, addrs[0], addrs[1], filepath.Join(dir, "token"), filepath.Join(dir, testcert.CertFile))
	}
	a := startSecureCardinalAt(t, dir, addrs[0], "a.yaml", config("node-a"), webConfig, ca)

	const jobs = 20
	send := func() {
		t.Helper()
		now := time.Now().UnixMilli()
		var series []prompb.TimeSeries
		for j := range jobs {
			for _, pod := range []string{"p0", "p1"} {
				series = append(series, prompb.TimeSeries{
					Labels:  labelSet("tls_inflight", "job", fmt.Sprintf("j%02d", j), "pod", pod),
					Samples: []prompb.Sample{{Value: float64(j + 1), Timestamp: now}},
				})
			}
		}
		code, body, err := a.do("POST", "/api/v1/write", rwBody(t, series...), "Bearer "+clusterToken)
		if err != nil || code/100 != 2 {
			t.Fatalf("remote write to node-a: %d %q %v", code, body, err)
		}
	}
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			send()
		}
	}()
	var stopOnce sync.Once
	stopSending := func() { stopOnce.Do(func() { close(stop); <-sent }) }
	defer stopSending()
	send()
	time.Sleep(3 * time.Second)

	b := startSecureCardinalAt(t, dir, addrs[1], "b.yaml", config("node-b"), webConfig, ca)
	metric := func(c *secureCardinal, pattern string) func() (bool, error) {
		re := regexp.MustCompile(`(?m)^` + pattern)
		return func() (bool, error) {
			code, body, err := c.do("GET", "/metrics", nil, "Bearer "+clusterToken)
			if err != nil || code != 200 {
				return false, fmt.Errorf("metrics: %d %v", code, err)
			}
			return re.MatchString(body), fmt.Errorf("no %s", pattern)
		}
	}
	eventually(t, 30*time.Second, "node-b gets its outputs handed over over TLS",
		metric(b, `cardinal_cluster_handoffs_received_total\{peer="node-a",result="ok"\} [1-9]`))
	eventually(t, 30*time.Second, "node-b learns over TLS that node-a handed over",
		metric(b, `cardinal_cluster_handoff_wait_seconds_count\{result="handed_over"\} [1-9]`))
	eventually(t, 30*time.Second, "node-a's forwards to node-b are acknowledged over TLS",
		metric(a, `cardinal_cluster_forward_sent_samples_total\{peer="node-b"\} [1-9]`))
	eventually(t, 30*time.Second, "node-a probes node-b over TLS", metric(a, `cardinal_cluster_members 2`))

	// Every output, written by one member or the other, holds both pods.
	eventually(t, 40*time.Second, "every output whole at Prometheus", func() (bool, error) {
		got := query(t, prom.URL, `tls_inflight`, time.Now())
		if len(got) != jobs {
			return false, fmt.Errorf("%d outputs at Prometheus, want %d: %v", len(got), jobs, got)
		}
		for j := range jobs {
			key := seriesKey(map[string]string{"__name__": "tls_inflight", "job": fmt.Sprintf("j%02d", j)})
			if v, want := got[key], float64(2*(j+1)); v != want {
				return false, fmt.Errorf("%s = %v, want %v (both pods)", key, v, want)
			}
		}
		return true, nil
	})
	for _, c := range []*secureCardinal{a, b} {
		if bad := peerTrouble.FindAllString(c.proc.log(), -1); len(bad) > 0 {
			t.Errorf("a member logged a refused or failed TLS peer request:\n%s", strings.Join(bad, "\n"))
		}
	}
	// node-a first, while node-b still takes what node-a forwards at shutdown (the cleanups
	// would stop node-b first, leaving node-a retrying it for its whole shutdown timeout).
	stopSending()
	if code := a.proc.stop(); code != 0 {
		t.Errorf("node-a exited with %d after SIGTERM, want 0", code)
	}
}
