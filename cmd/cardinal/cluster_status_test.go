package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/status"
	"github.com/cardinal-proxy/cardinal/hashring"
)

// The status page's cluster section tells an operator, per member, whether it answers,
// when one that does not leaves the ring, which members route by another ring, which
// candidates join and when, and what the handoff wait is waiting for.
func TestClusterStatusSaysWhatEachPeerIsDoing(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := hashring.New([]hashring.Member{{Name: "node-a", Addr: "10.0.0.1:9090"}, {Name: "node-b", Addr: "10.0.0.2:9090"}, {Name: "node-c", Addr: "10.0.0.3:9090"}})
	peers := []hashring.PeerState{
		{Name: "node-b", Addr: "10.0.0.2:9090", Member: true, RingVersion: r.VersionString()},
		{Name: "node-c", Addr: "10.0.0.3:9090", Member: true, MissingSince: now.Add(-40 * time.Second), LeaveAt: now.Add(260 * time.Second), RingVersion: r.VersionString()},
		{Name: "node-d", Addr: "10.0.0.4:9090", ReadySince: now.Add(-12 * time.Second), JoinAt: now.Add(18 * time.Second)},
	}
	wait := hashring.HandoffWait{Since: now.Add(-15 * time.Second), Until: now.Add(45 * time.Second),
		Waiting: []string{"node-c: dial tcp 10.0.0.3:9090: connect: connection refused"}}
	queues := map[string]hashring.QueueFill{"node-b": {Bytes: 256 << 20, Limit: 256 << 20}, "node-c": {Bytes: 3 << 19, Limit: 256 << 20}}
	st := clusterStatus("node-a", r, peers, queues, wait, now)

	want := map[string]string{
		"node-a": "this member",
		"node-b": "ready",
		"node-c": "not answering ready for 40s; leaves the ring in 4m20s",
	}
	for _, m := range st.Members {
		if m.State != want[m.Name] {
			t.Errorf("%s: state %q, want %q", m.Name, m.State, want[m.Name])
		}
		if m.Trouble != (m.Name == "node-c") {
			t.Errorf("%s: trouble %v", m.Name, m.Trouble)
		}
		if m.QueueFull != (m.Name == "node-b") || m.Shards == 0 {
			t.Errorf("%s: queue full %v, %d shards", m.Name, m.QueueFull, m.Shards)
		}
		if q := queues[m.Name]; m.QueueBytes != q.Bytes || m.QueueLimit != q.Limit {
			t.Errorf("%s: queue %d of %d bytes, want %d of %d", m.Name, m.QueueBytes, m.QueueLimit, q.Bytes, q.Limit)
		}
	}
	if len(st.Members) != 3 || len(st.Candidates) != 1 || st.Candidates[0].State != "candidate: ready for 12s, joins the ring in 18s" {
		t.Errorf("members %+v, candidates %+v", st.Members, st.Candidates)
	}
	if !strings.Contains(st.HandoffWait, "at most 45s more") || len(st.HandoffWaiting) != 1 {
		t.Errorf("handoff wait %q, waiting %v", st.HandoffWait, st.HandoffWaiting)
	}

	// A member that routes by another ring disagrees; a settled wait says when it settled.
	peers[0].RingVersion = "00000000000000ff"
	wait.Settled, wait.SettledAfter = true, 1200*time.Millisecond
	st = clusterStatus("node-a", r, peers, nil, wait, now)
	if b := st.Members[1]; !b.Trouble || !strings.Contains(b.State, "routes by ring 00000000000000ff") {
		t.Errorf("node-b routing by another ring: %+v", b)
	}
	no := false
	peers[0].InRing = &no
	if b := clusterStatus("node-a", r, peers, nil, wait, now).Members[1]; !strings.HasSuffix(b.State, "its ring does not have this member") {
		t.Errorf("node-b routing by a ring without node-a: %+v", b)
	}
	peers[0].InRing, peers[0].Outside = nil, true
	if b := clusterStatus("node-a", r, peers, nil, wait, now).Members[1]; !b.Trouble || !strings.Contains(b.State, "outside its own ring") {
		t.Errorf("node-b outside its ring: %+v", b)
	}
	peers[0].Outside = false
	if !strings.HasPrefix(st.HandoffWait, "every peer handed the ring over 1.2s after it came") || st.HandoffWaiting != nil {
		t.Errorf("settled: %q, waiting %v", st.HandoffWait, st.HandoffWaiting)
	}
	wait.Settled = false
	if got := clusterStatus("node-a", r, peers, nil, wait, now.Add(time.Minute)); !strings.HasPrefix(got.HandoffWait, "the handoff timeout ended the wait 15s ago") || got.HandoffWaiting != nil {
		t.Errorf("after the timeout: %q, waiting %v", got.HandoffWait, got.HandoffWaiting)
	}

	// Alone after its peer left: the outputs gained from it still wait for its handoff.
	alone := hashring.HandoffWait{Since: now, Until: now.Add(40 * time.Second), Settled: true,
		Departed: []hashring.DepartedMember{{Name: "node-b", Until: now.Add(40 * time.Second)}}}
	if got := handoffWaitState(alone, now); !strings.HasPrefix(got, "this member is alone") || !strings.Contains(got, "Outputs gained from node-b, which left the ring, wait for its handoff, at most 40s more.") {
		t.Errorf("alone after node-b left: %q", got)
	}
	if got := handoffWaitState(alone, now.Add(time.Minute)); strings.Contains(got, "node-b") {
		t.Errorf("alone, node-b's wait over: %q", got)
	}

	// The page shows it all, escaped.
	st = clusterStatus("node-a", r, peers, queues, hashring.HandoffWait{Since: now, Until: now.Add(time.Hour), Waiting: []string{"node-c: status 409: not handed over: <1 handoffs pending>"}}, now)
	rec := httptest.NewRecorder()
	status.NewHandler(status.Options{Rules: noRules{}, Cluster: fixedCluster(st)}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, s := range []string{
		`<td>node-c</td><td>10.0.0.3:9090</td><td><span class="warn">not answering ready for 40s; leaves the ring in 4m20s</span></td>`,
		`<td>1.5 MiB of 256.0 MiB</td>`,
		`<span class="full">full (256.0 MiB): receiver answers 503</span>`,
		`<td>node-d</td><td>10.0.0.4:9090</td><td>candidate: ready for 12s, joins the ring in 18s</td><td>–</td><td>–</td>`,
		`<li class="warn">node-c: status 409: not handed over: &lt;1 handoffs pending&gt;</li>`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("the page lacks %s:\n%s", s, body)
		}
	}
}

type noRules struct{}

func (noRules) Stats() []aggregator.RuleStats { return nil }

type fixedCluster status.ClusterStatus

func (f fixedCluster) ClusterStatus() status.ClusterStatus { return status.ClusterStatus(f) }
