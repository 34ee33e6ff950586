package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCluster_a_stopped_peer_s_queue_holds_a_packed_backlog stops a member (SIGSTOP: it
// accepts connections and answers nothing, as a member that hangs or died without leaving)
// while agents write 20k samples/s to the other, half of them for the stopped one. Its
// queue holds 16MiB: series as they arrived (about 130 bytes a sample here) would fill it
// in about 13 s and the receiver would answer 503; packed past 4 MiB (about 12 bytes a
// sample) the 30 s (600k samples) hold with room to spare. Continued, the stopped member takes the whole
// backlog: every forwarded sample acknowledged, none refused, the queue empty.
func TestCluster_a_stopped_peer_s_queue_holds_a_packed_backlog(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting cardinal")
	}
	var rules strings.Builder
	for m := range 10 {
		fmt.Fprintf(&rules, "  - metric_name: loadgen_counter_%d_total\n    type: counter\n    drop_labels: [pod, instance]\n", m)
	}
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cards := make([]*cardinalServer, len(addrs))
	for i := range cards {
		cfg := "aggregator:\n  flush_interval: 10s\ndownstream:\n  file: {path: /dev/null}\n" + exploreOff +
			fmt.Sprintf("cluster:\n  name: node-%d\n  peers: [%s]\n  refresh_interval: 1s\n  probe_timeout: 1s\n  join_after: 1s\n  leave_after: 10m\n  forward:\n    queue: {max_bytes: 16MiB, min_backoff: 50ms, max_backoff: 500ms}\n",
				i, strings.Join(addrs, ", ")) +
			"rules:\n" + rules.String()
		path := filepath.Join(t.TempDir(), "cardinal.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		cards[i] = startCardinalAt(t, addrs[i], path)
	}
	for _, c := range cards {
		eventually(t, 30*time.Second, "the cluster forms", func() (bool, error) {
			v, err := scrapeMax(c.URL, "cardinal_cluster_members")
			return v == 2, fmt.Errorf("%v members, want 2 (%v)", v, err)
		})
	}
	sender, stopped := cards[0], cards[1]
	if err := stopped.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	defer func() {
		if !continued {
			_ = stopped.Signal(syscall.SIGCONT)
		}
	}()

	shape := []string{"--metrics=10", "--series=2000", "--groups=50", "--samples-per-request=2000", "--url=" + sender.WriteURL}
	// A fixed number of requests, not a duration: a slow machine takes longer, with the
	// same backlog.
	rep := runLoadgen(t, append(shape, "--rate=20000", "--requests=300")...)
	if rep.Samples != rep.SamplesAttempted || rep.Samples == 0 {
		t.Fatalf("with a peer stopped, %d of %d samples acknowledged (errors %v): the queue to it filled", rep.Samples, rep.SamplesAttempted, rep.Errors)
	}
	forwarded := sumMetric(t, sender.URL, "cardinal_cluster_forwarded_samples_total")
	held := sumMetric(t, sender.URL, "cardinal_cluster_forward_queue_bytes")
	t.Logf("%d samples sent, %.0f forwarded to the stopped member, held in %.1f MiB", rep.Samples, forwarded, held/(1<<20))
	// The test means something only if the backlog, as it arrived, would not have fit.
	if raw := forwarded * 100; forwarded < float64(rep.Samples)/4 || raw < 16<<20 || held < 4<<20 {
		t.Fatalf("%.0f samples forwarded (at least 100 bytes each as they arrive), %.0f bytes held: not a backlog that would have filled 16MiB", forwarded, held)
	}

	if err := stopped.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	continued = true
	eventually(t, 60*time.Second, "the continued member takes the backlog", func() (bool, error) {
		sent := sumMetric(t, sender.URL, "cardinal_cluster_forward_sent_samples_total")
		held := sumMetric(t, sender.URL, "cardinal_cluster_forward_queue_bytes")
		return sent == forwarded && held == 0, fmt.Errorf("%.0f of %.0f forwarded samples acknowledged, %.0f bytes still queued", sent, forwarded, held)
	})
	for _, name := range []string{"cardinal_cluster_forward_failed_samples_total", "cardinal_cluster_forward_dropped_samples_total"} {
		if v := sumMetric(t, sender.URL, name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	if got := sumMetric(t, stopped.URL, "cardinal_receiver_samples_total"); got < forwarded {
		t.Errorf("the stopped member accepted %.0f samples, want the %.0f forwarded to it", got, forwarded)
	}
}
