package hashring

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorReportsStats(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.prober.set(addrOf("b"), Identity{Name: "b"}) // not ready
	c.round(0)
	c.disc.set(nil, errors.New("lookup failed"))
	c.clock.advance(10 * time.Second)
	_ = c.m.Refresh(t.Context())

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c.m.Collector()); err != nil {
		t.Fatal(err)
	}
	last := float64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	want := fmt.Sprintf(`
# HELP cardinal_cluster_refreshes_total Membership refresh rounds (discovery and probing of every peer).
# TYPE cardinal_cluster_refreshes_total counter
cardinal_cluster_refreshes_total 2
# HELP cardinal_cluster_refresh_failures_total Refresh rounds in which a discovery source failed, or that were cut short; such a round changes no member.
# TYPE cardinal_cluster_refresh_failures_total counter
cardinal_cluster_refresh_failures_total 1
# HELP cardinal_cluster_probes_not_ready_total Identity probes answered by a peer that is not ready.
# TYPE cardinal_cluster_probes_not_ready_total counter
cardinal_cluster_probes_not_ready_total 1
# HELP cardinal_cluster_joins_total Peers that joined the ring.
# TYPE cardinal_cluster_joins_total counter
cardinal_cluster_joins_total 1
# HELP cardinal_cluster_members Members of the ring, this one included.
# TYPE cardinal_cluster_members gauge
cardinal_cluster_members 2
# HELP cardinal_cluster_last_refresh_success_timestamp_seconds Unix time of the last successful refresh round; 0 before the first.
# TYPE cardinal_cluster_last_refresh_success_timestamp_seconds gauge
cardinal_cluster_last_refresh_success_timestamp_seconds %g
`, last)
	names := []string{"cardinal_cluster_refreshes_total", "cardinal_cluster_refresh_failures_total", "cardinal_cluster_probes_not_ready_total",
		"cardinal_cluster_joins_total", "cardinal_cluster_members", "cardinal_cluster_last_refresh_success_timestamp_seconds"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != len(metricHelp()) {
		t.Fatalf("gathered %d metrics (%v), want %d", n, err, len(metricHelp()))
	}
}

// cardinal_cluster_ring_info is the ring this member routes by, which is the forwarder's: a
// member that left (removed from discovery, it keeps running until stopped) routes by its
// peers' ring without itself, as its peers do, while its membership's ring still has it.
// Shown with itself, it would make the disagreement alert fire for as long as it runs.
func TestRingInfoIsTheRingThisMemberRoutesBy(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.round(0)
	reg := prometheus.NewPedanticRegistry()
	fwd, err := NewForwarder("self", DefaultForwardConfig(), time.Minute, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fwd.Shutdown(t.Context()) }()
	info := func() string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		for _, mf := range mfs {
			if mf.GetName() == "cardinal_cluster_ring_info" {
				for _, m := range mf.GetMetric() {
					versions = append(versions, m.GetLabel()[0].GetValue())
				}
			}
		}
		return strings.Join(versions, ",")
	}
	fwd.SetMembers(c.m.Members())
	if got, want := info(), c.m.Ring().VersionString(); got != want {
		t.Errorf("ring_info %q in the ring with self, want %q", got, want)
	}
	fwd.Leave(c.m.Members())
	if got, want := info(), New([]Member{{Name: "a"}, {Name: "b"}}).VersionString(); got != want {
		t.Errorf("ring_info %q after leaving, want the peers' ring %q, the one this member routes by", got, want)
	}
}

// Every per-peer series exists, at 0, once the peer is in the ring: a failure's first
// occurrence (a refused forward, a retry, a drop at shutdown) shows in increase(), which
// needs a sample before it, and an alert has a series to watch from the start.
func TestEveryPerPeerSeriesExistsFromTheStart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	fwd, err := NewForwarder("node-a", DefaultForwardConfig(), time.Minute, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fwd.Shutdown(t.Context()) }()
	fwd.SetMembers([]Member{{Name: "node-b", Addr: "127.0.0.1:1"}, {Name: "node-c", Addr: "127.0.0.1:1"}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	peers := map[string]map[string]bool{} // metric -> peers it has a series of
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" {
					if peers[mf.GetName()] == nil {
						peers[mf.GetName()] = map[string]bool{}
					}
					peers[mf.GetName()][l.GetValue()] = true
				}
			}
		}
	}
	for _, name := range []string{"cardinal_cluster_forwarded_samples_total", "cardinal_cluster_forward_sent_samples_total",
		"cardinal_cluster_forward_sent_bytes_total", "cardinal_cluster_forward_failed_samples_total", "cardinal_cluster_forward_dropped_samples_total",
		"cardinal_cluster_forward_rerouted_samples_total", "cardinal_cluster_forward_retries_total", "cardinal_cluster_forward_queue_bytes",
		"cardinal_cluster_handoffs_total", "cardinal_cluster_handoff_bytes_total", "cardinal_cluster_handoffs_received_total",
		"cardinal_cluster_received_requests_total", "cardinal_cluster_received_bytes_total"} {
		if !peers[name]["node-b"] || !peers[name]["node-c"] {
			t.Errorf("%s has series of peers %v, want node-b and node-c from the start", name, peers[name])
		}
	}
	// The bound the queue bytes are measured against, for an alert on the fill.
	var limit float64
	for _, mf := range mfs {
		if mf.GetName() == "cardinal_cluster_forward_queue_max_bytes" {
			limit = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if want := float64(DefaultForwardConfig().Queue.MaxBytes); limit != want || limit == 0 {
		t.Errorf("cardinal_cluster_forward_queue_max_bytes = %v, want %v", limit, want)
	}
}
