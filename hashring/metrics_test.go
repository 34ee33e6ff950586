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
# HELP cardinal_cluster_refresh_failures_total Refresh rounds in which a discovery source failed; such a round changes no member.
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
# HELP cardinal_cluster_ring_info The ring this member routes by: 1, with its version; members that disagree show different versions.
# TYPE cardinal_cluster_ring_info gauge
cardinal_cluster_ring_info{version=%q} 1
`, last, c.m.Ring().VersionString())
	names := []string{"cardinal_cluster_refreshes_total", "cardinal_cluster_refresh_failures_total", "cardinal_cluster_probes_not_ready_total",
		"cardinal_cluster_joins_total", "cardinal_cluster_members", "cardinal_cluster_last_refresh_success_timestamp_seconds", "cardinal_cluster_ring_info"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != len(metricHelp()) {
		t.Fatalf("gathered %d metrics (%v), want %d", n, err, len(metricHelp()))
	}
}
