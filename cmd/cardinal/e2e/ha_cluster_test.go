package e2e

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestHA_cluster_with_WAL_counts_one_replica_through_kill9 runs the election where it is
// hardest: two cluster members with write-ahead logs, replica a of an HA pair writing to one
// and replica b to the other, so every output has both replicas' copies on both members and
// its owner elects. b reads every counter 500 higher than a (as replicas behind a load
// balancer might), so counting both would show. Both members are killed with SIGKILL and
// restarted on their WALs: each must come back with the replica it had elected, before any
// new sample arrives, and every output must end at exactly one replica's increase, with no
// reset.
func TestHA_cluster_with_WAL_counts_one_replica_through_kill9(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	members := make([]*clusterMember, 2)
	for i := range members {
		members[i] = &clusterMember{name: fmt.Sprintf("node-%d", i), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	}
	peers := fmt.Sprintf("[%q, %q]", members[0].addr, members[1].addr)
	for _, m := range members {
		dir := t.TempDir()
		m.config = filepath.Join(dir, "cardinal.yaml")
		cfg := fmt.Sprintf(`
aggregator:
  flush_interval: 2s
  flush_delay: 1s
  ha: {enabled: true}
downstream:
  remote_write:
    - url: %s
      queue: {min_backoff: 20ms, max_backoff: 200ms}
wal:
  dir: %s
  checkpoint_interval: 2s
cluster:
  name: %s
  peers: %s
  refresh_interval: 1s
  probe_timeout: 1s
  join_after: 1s
  leave_after: 1m
  forward:
    queue: {min_backoff: 20ms, max_backoff: 200ms}
rules:
  - metric_name: ha_push_total
    type: counter
    drop_labels: [pod]
`, prom.WriteURL, filepath.Join(dir, "wal"), m.name, peers)
		if err := os.WriteFile(m.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		m.start(t)
	}
	for _, m := range members {
		waitMembers(t, m, 2)
	}

	const pods, codes = 5, 8
	start := time.Now()
	// scrape is what replica rep reads at ms: pod p's counter grows p+1 per second.
	scrape := func(rep string, ms int64) []prompb.TimeSeries {
		offset := map[string]float64{"a": 0, "b": 500}[rep]
		var out []prompb.TimeSeries
		for c := range codes {
			for p := range pods {
				out = append(out, prompb.TimeSeries{
					Labels: labelSet("ha_push_total", "cluster", "prod", "__replica__", rep,
						"code", fmt.Sprint(200+c), "pod", fmt.Sprintf("pod-%d", p)),
					Samples: []prompb.Sample{{Timestamp: ms, Value: offset + float64(p+1)*float64(ms-start.UnixMilli())/1000}},
				})
			}
		}
		return out
	}
	send := func(m *clusterMember, series []prompb.TimeSeries) {
		t.Helper()
		if code, msg := postRaw(t, m.card.WriteURL, rwBody(t, series...), nil); code != http.StatusNoContent {
			t.Fatalf("%s: %d %s", m.name, code, msg)
		}
	}
	var first, last int64
	round := func() {
		ms := time.Now().UnixMilli()
		if first == 0 {
			first = ms
		}
		last = ms
		send(members[0], scrape("a", ms))
		send(members[1], scrape("b", ms))
	}
	elected := func(m *clusterMember) string {
		for _, s := range scrapeCardinal(t, m.card.URL) {
			if s.Name == "cardinal_ha_elected_replica" && s.Labels["group"] == "prod" {
				return s.Labels["replica"]
			}
		}
		return ""
	}
	for range 10 {
		round()
		time.Sleep(time.Second)
	}
	before := map[string]string{}
	for _, m := range members {
		before[m.name] = elected(m)
		if before[m.name] == "" {
			t.Fatalf("%s elected no replica", m.name)
		}
	}
	time.Sleep(3 * time.Second) // a checkpoint covers the elections, and the WAL the rest
	for _, m := range members {
		if err := m.card.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := m.card.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		m.card.Start()
	}
	for _, m := range members {
		waitMembers(t, m, 2)
		if got := elected(m); got != before[m.name] {
			t.Errorf("%s: elected %q after the restart, %q before", m.name, got, before[m.name])
		}
	}
	t.Logf("elected before and after kill -9: %v", before)
	for range 10 {
		round()
		time.Sleep(time.Second)
	}

	// Every output ends at one replica's increase from the first round to the last: the
	// same for a and b, whose offset cancels out.
	want := 0.0
	for p := range pods {
		want += float64(p+1) * float64(last-first) / 1000
	}
	var got map[string]float64
	eventually(t, 60*time.Second, "every output's last window downstream", func() (bool, error) {
		got = query(t, prom.URL, `last_over_time(ha_push_total[5m])`, time.Now())
		n := 0
		for _, v := range got {
			if math.Abs(v-want) <= 1e-6*want {
				n++
			}
		}
		return n == codes, fmt.Errorf("%d of %d outputs at %.3f: %v", n, codes, want, got)
	})
	for key := range got {
		if strings.Contains(key, "__replica__") {
			t.Errorf("output %s carries the replica label", key)
		}
	}
	for key, v := range query(t, prom.URL, `resets(ha_push_total[5m])`, time.Now()) {
		if v != 0 {
			t.Errorf("%s: %v resets", key, v)
		}
	}
	dedup := 0.0
	for _, m := range members {
		d, _ := metricValue(scrapeCardinal(t, m.card.URL), "cardinal_ha_samples_deduplicated_total")
		dedup += d
	}
	if dedup == 0 {
		t.Error("no sample deduplicated on any member")
	}
	t.Logf("%d outputs at %.3f each after %s; %v samples deduplicated since the restart", len(got), want, time.Since(start).Round(time.Second), dedup)
}
