package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// The cluster test (issue 18) holds a cluster of cardinals to docs/design.md §5: agents write
// to the member on their own node, each member aggregates the outputs it owns and forwards
// the rest, and Prometheus receives every output series from exactly one member, window by
// window exactly what one cardinal fed everything would write, through a rolling restart of
// every member.

const clusterMembers = 3

// clusterMember is one cardinal of the test's cluster, with the proxy that records what it
// writes to Prometheus.
type clusterMember struct {
	name   string
	addr   string
	config string
	card   *cardinalServer
	proxy  *crashProxy
}

// startCluster configures n members that know each other by a static peer list, each
// writing to Prometheus through a crashProxy of its own and keeping a WAL, starts the first
// started of them and waits until every one routes by a ring of those.
func startCluster(t *testing.T, promWriteURL string, n, started int) ([]*clusterMember, *peersFile) {
	t.Helper()
	return startClusterCheckpointing(t, promWriteURL, n, started, 2*time.Second)
}

// startClusterCheckpointing is startCluster with the members' wal.checkpoint_interval.
func startClusterCheckpointing(t *testing.T, promWriteURL string, n, started int, checkpoints time.Duration) ([]*clusterMember, *peersFile) {
	t.Helper()
	return startClusterWith(t, promWriteURL, n, started, checkpoints, "")
}

// startClusterWith is startClusterCheckpointing with more keys of the cluster section
// (cluster, lines indented by two spaces) in every member's configuration.
func startClusterWith(t *testing.T, promWriteURL string, n, started int, checkpoints time.Duration, cluster string) ([]*clusterMember, *peersFile) {
	t.Helper()
	members := make([]*clusterMember, n)
	pf := &peersFile{path: filepath.Join(t.TempDir(), "peers.yaml")}
	for i := range members {
		members[i] = &clusterMember{name: fmt.Sprintf("node-%d", i), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	}
	pf.write(t, members)
	for _, m := range members {
		m.proxy = startCrashProxy(t, promWriteURL)
		dir := t.TempDir()
		cfg := fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: 4s
downstream:
  remote_write:
    - url: %s
      name: prom
      timeout: 2s
      queue: {min_backoff: 20ms, max_backoff: 200ms}
wal:
  dir: %s
  checkpoint_interval: %s
cluster:
  name: %s
  peers_file: %s
  refresh_interval: 1s
  probe_timeout: 1s
  join_after: 2s
  leave_after: 6s
%s  forward:
    queue: {min_backoff: 20ms, max_backoff: 200ms}
rules:
  - metric_name: crash_requests_total
    type: counter
    drop_labels: [pod]
  - metric_name: crash_inflight
    type: gauge
    drop_labels: [pod]
  - metric_name: %s
    type: histogram
    drop_labels: [pod]
`, crashInterval, m.proxy.URL, filepath.Join(dir, "wal"), checkpoints, m.name, pf.path, cluster, clusterNativeMetric)
		m.config = filepath.Join(dir, "cardinal.yaml")
		if err := os.WriteFile(m.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members[:started] {
		m.start(t)
	}
	for _, m := range members[:started] {
		waitMembers(t, m, started)
	}
	return members, pf
}

// peersFile is the cluster's peers_file, which the test edits to add and remove members.
type peersFile struct{ path string }

// write lists members' addresses, replacing the file at once (a rename).
func (p *peersFile) write(t *testing.T, members []*clusterMember) {
	t.Helper()
	var addrs []string
	for _, m := range members {
		addrs = append(addrs, m.addr)
	}
	p.writeAddrs(t, addrs...)
}

// writeAddrs lists addrs.
func (p *peersFile) writeAddrs(t *testing.T, addrs ...string) {
	t.Helper()
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, []byte("["+strings.Join(quoted, ", ")+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		t.Fatal(err)
	}
}

// start starts the member's cardinal.
func (m *clusterMember) start(t *testing.T) {
	t.Helper()
	// A shutdown waits for peers up to --shutdown.timeout: a hung peer must not outlast the
	// harness's stop timeout.
	m.card = startCardinalAt(t, m.addr, m.config, "--aggregator.flush-tick=200ms", "--shutdown.timeout=10s")
}

// waitMembers waits until m routes by a ring of n members.
func waitMembers(t *testing.T, m *clusterMember, n int) {
	t.Helper()
	eventually(t, 30*time.Second, m.name+" sees the whole cluster", func() (bool, error) {
		got := plainMetric(m.card.selfMetrics(), "cardinal_cluster_members")
		return got == float64(n), fmt.Errorf("%s: cardinal_cluster_members %v, want %d", m.name, got, n)
	})
}

// plainMetric returns the value of an unlabelled metric in a /metrics text, or -1.
func plainMetric(text, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestCluster_members_together_equal_one_through_a_rolling_restart runs three members with
// agents on every node: each input series (a pod) is written to one member, the one of its
// node, so every output has inputs on every member. A fourth member joins (it owns a share
// of the outputs from then on, their state handed over by their previous owners), every
// member with agents is restarted in turn (SIGTERM, as a rolling update does), and the
// fourth is removed from the peers file (it hands everything back) and stopped. At the end every output series
// must be, window by window, exactly the running total (or sum) of the acknowledged inputs,
// written by exactly one member, with no counter reset and no 4xx from Prometheus.
func TestCluster_members_together_equal_one_through_a_rolling_restart(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	members, peers := startCluster(t, prom.WriteURL, clusterMembers+1, clusterMembers)
	agents := members[:clusterMembers]

	hist := newCrashHistory(time.Now().Truncate(crashStep))
	snd := startClusterSender(agents, hist)
	time.Sleep(15 * time.Second)

	// A member joins: the others hand it the state of the outputs it now owns.
	joiner := members[clusterMembers]
	joiner.start(t)
	waitJoined(t, joiner, members)
	time.Sleep(15 * time.Second)

	for _, m := range agents {
		if code := m.card.Stop(); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", m.name, code)
		}
		m.card.Start()
		waitMembers(t, m, len(members))
		t.Logf("%s restarted", m.name)
		time.Sleep(5 * time.Second)
		if err := snd.err(); err != nil {
			t.Fatalf("sender: %v", err)
		}
	}

	// The joiner is removed from the peers file: the others drop it, and it hands them
	// every output it owns before it is stopped.
	removeMember(t, joiner, peers, agents)
	time.Sleep(8 * time.Second)
	if code := joiner.card.Stop(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0", joiner.name, code)
	}
	time.Sleep(10 * time.Second)
	stopAndCheckCluster(t, snd, prom, members)

	for _, m := range agents {
		metrics := m.card.selfMetrics()
		t.Logf("%s: forwarded %s, disagreements %v", m.name,
			strings.Join(regexp.MustCompile(`(?m)^cardinal_cluster_forwarded_samples_total.*$`).FindAllString(metrics, -1), "; "),
			plainMetric(metrics, "cardinal_cluster_ring_disagreements_total"))
		if !strings.Contains(metrics, "cardinal_cluster_forwarded_samples_total") {
			t.Errorf("%s forwarded nothing: the test does not exercise forwarding", m.name)
		}
	}
}

// waitJoined waits until every one of members (joiner among them) routes by a ring of them
// all, and joiner has merged a handoff: the state of what it gained.
func waitJoined(t *testing.T, joiner *clusterMember, members []*clusterMember) {
	t.Helper()
	for _, m := range members {
		waitMembers(t, m, len(members))
	}
	t.Logf("%s joined", joiner.name)
	eventually(t, 30*time.Second, joiner.name+" merges the state of what it gained", func() (bool, error) {
		m := joiner.card.selfMetrics()
		ok := regexp.MustCompile(`(?m)^cardinal_cluster_handoffs_received_total\{.*result="ok".*\} [1-9]`).MatchString(m)
		return ok, fmt.Errorf("no handoff received: %s", m)
	})
}

// removeMember lists only stay in the peers file and waits until they route by a ring of
// themselves and m owns no shard: it has left and handed its outputs over.
func removeMember(t *testing.T, m *clusterMember, peers *peersFile, stay []*clusterMember) {
	t.Helper()
	peers.write(t, stay)
	for _, s := range stay {
		waitMembers(t, s, len(stay))
	}
	eventually(t, 30*time.Second, m.name+" leaves", func() (bool, error) {
		metrics := m.card.selfMetrics()
		return strings.Contains(metrics, "cardinal_cluster_shards_owned 0") || !strings.Contains(metrics, "cardinal_cluster_shards_owned"),
			fmt.Errorf("%s still owns shards", m.name)
	})
	t.Logf("%s left", m.name)
}

// checkClusterOutput checks the outputs at Prometheus as checkOutputsAtPrometheus does, and
// that each output sample was written by exactly one member.
func checkClusterOutput(t *testing.T, prom *prometheusServer, members []*clusterMember, reqs []crashRequest) {
	t.Helper()
	var proxies []*crashProxy
	for _, m := range members {
		if m.proxy != nil {
			proxies = append(proxies, m.proxy)
		}
	}
	wrong := checkOutputsAtPrometheus(t, prom, proxies, reqs)
	for key, ks := range wrong {
		if !strings.Contains(key, "crash_requests_total") {
			continue // a gauge's window has values, not increases
		}
		for _, k := range ks[:min(len(ks), 2)] {
			logWindowInputs(t, reqs, key, k)
		}
	}
	want := crashExpected(reqs)
	// One writer at a time: a sample of an output at one timestamp comes from one member
	// (the output moves with its shard when the ring changes).
	writers := map[string][]string{}
	series := map[string]bool{}
	for _, m := range members {
		if m.proxy == nil {
			continue
		}
		m.proxy.mu.Lock()
		for key, byT := range m.proxy.stored {
			series[key] = true
			for ts := range byT {
				at := key + " at " + fmtMs(ts)
				writers[at] = append(writers[at], m.name)
			}
		}
		m.proxy.mu.Unlock()
		m.proxy.check(t)
	}
	n := 0
	for at, ws := range writers {
		if len(ws) != 1 {
			if n++; n <= 10 {
				t.Errorf("output %s was written by %v, want exactly one member", at, ws)
			}
		}
	}
	if len(series) != len(want) {
		t.Errorf("%d output series were written, want %d", len(series), len(want))
	}
	if t.Failed() {
		logWriters(t, writers)
	}
}

// stopAndCheckCluster stops the agents and checks what the members wrote to prom
// (checkClusterOutput) against what the agents had acknowledged.
func stopAndCheckCluster(t *testing.T, snd *crashSender, prom *prometheusServer, members []*clusterMember) {
	t.Helper()
	snd.stop()
	if err := snd.err(); err != nil {
		t.Fatalf("sender: %v", err)
	}
	reqs := snd.sent()
	t.Logf("sender: %d steps acknowledged, %d retries", len(reqs), snd.retries.Load())
	checkClusterOutput(t, prom, members, reqs)
}

// logWindowInputs logs, for a counter output whose window ending at k is wrong, what each
// of its inputs added in the window, step by step, with the node whose member received it
// and when that member acknowledged it: which member's path lost or moved an increase. reqs
// are startClusterSender's, which notes when each node's part was acknowledged.
func logWindowInputs(t *testing.T, reqs []crashRequest, key string, k int64) {
	t.Helper()
	last := map[string]float64{}
	for _, r := range reqs {
		for _, s := range r.series {
			in := labelKey(s.Labels)
			smp := s.Samples[0]
			prev, seen := last[in]
			last[in] = smp.Value
			if value.IsStaleNaN(smp.Value) {
				delete(last, in)
			}
			if labelKey(withoutPod(s.Labels)) != key || windowEnd(smp.Timestamp) != k || value.IsStaleNaN(smp.Value) {
				continue
			}
			inc := smp.Value
			if seen && smp.Value >= prev {
				inc -= prev
			}
			node := podNode(s.Labels, len(r.acked))
			t.Logf("%s window %s: input %s at %s +%v (seen before: %t), node-%d acknowledged it at %s",
				key, fmtMs(k), in, fmtMs(smp.Timestamp), inc, seen, node, r.acked[node].Format("15:04:05.000"))
		}
	}
}

// logWriters logs, per output series, which member wrote each window end, so that a wrong
// point can be traced to the member and ring change that made it.
func logWriters(t *testing.T, writers map[string][]string) {
	t.Helper()
	byKey := map[string][]string{}
	for at, ws := range writers {
		key, ts, _ := strings.Cut(at, " at ")
		byKey[key] = append(byKey[key], ts+" "+strings.Join(ws, "+"))
	}
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		slices.Sort(byKey[key])
		t.Logf("%s written by: %s", key, strings.Join(byKey[key], ", "))
	}
}

// startClusterSender starts the agents of every node: each step's request is split by pod,
// a pod's series going to the member of its node (podNode), and each part is retried until
// that member acknowledges it, as an agent does. The step counts as sent once every part is.
func startClusterSender(members []*clusterMember, h *crashHistory) *crashSender {
	s := &crashSender{quit: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		for {
			series, ms := h.next()
			for time.Now().UnixMilli() < ms+crashStep.Milliseconds() { // live
				select {
				case <-s.quit:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			parts := make([][]prompb.TimeSeries, len(members))
			for _, ts := range series {
				node := podNode(ts.Labels, len(members))
				parts[node] = append(parts[node], ts)
			}
			acked := make([]time.Time, len(members))
			for node, part := range parts {
				if len(part) == 0 {
					continue
				}
				if !s.postUntilAcked(client, members[node].card.WriteURL, part, ms) {
					return
				}
				acked[node] = time.Now()
			}
			s.mu.Lock()
			s.requests = append(s.requests, crashRequest{series: series, ts: ms, acked: acked})
			s.mu.Unlock()
			s.acked.Add(1)
		}
	}()
	return s
}

// podNode is the node a pod runs on: its slot (the pod name's second number) modulo n.
func podNode(ls []prompb.Label, n int) int {
	for _, l := range ls {
		if l.Name == "pod" {
			parts := strings.Split(l.Value, "-") // pod-<job>-<slot>-<generation>
			slot, _ := strconv.Atoi(parts[2])
			job, _ := strconv.Atoi(parts[1])
			return (slot + job) % n
		}
	}
	return 0
}

// fakePeer is a cluster member that answers its identity (ready) and then misbehaves on
// every forwarded request: it hangs until the test ends, or drops the connection.
type fakePeer struct {
	addr     string
	requests atomic.Int64
	// lacks names the member whose identity probes it answers that its ring lacks it (a
	// member that has just joined); it has every other member.
	lacks atomic.Pointer[string]
}

func startFakePeer(t *testing.T, name string, hang bool) *fakePeer {
	t.Helper()
	p := &fakePeer{}
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/cluster/v1/identity", func(w http.ResponseWriter, r *http.Request) {
		asker := r.URL.Query().Get("member")
		lacks := p.lacks.Load()
		fmt.Fprintf(w, `{"name":%q,"ready":true,"ring_version":"x","in_ring":%t}`, name, lacks == nil || asker != *lacks)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		p.requests.Add(1)
		if hang {
			<-done
			return
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(done)
		srv.CloseClientConnections()
		srv.Close()
	})
	p.addr = srv.Listener.Addr().String()
	return p
}

// TestCluster_a_peer_that_hangs_or_drops_connections_does_not_stall_the_others adds to a
// cluster of two a member that owns its share of the outputs but never answers a forwarded
// request (or drops the connection): the agents' requests to the two others keep being
// acknowledged at once (the peer's queue absorbs what it owns), and the outputs the two
// own keep reaching Prometheus.
func TestCluster_a_peer_that_hangs_or_drops_connections_does_not_stall_the_others(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	for _, hang := range []bool{true, false} {
		t.Run(map[bool]string{true: "hangs", false: "drops_connections"}[hang], func(t *testing.T) {
			prom := startPrometheus(t, prometheusOptions{})
			members, peers := startCluster(t, prom.WriteURL, 2, 2)
			bad := startFakePeer(t, "node-bad", hang)
			peers.writeAddrs(t, members[0].addr, members[1].addr, bad.addr)
			for _, m := range members {
				waitMembers(t, m, 3)
			}
			hist := newCrashHistory(time.Now().Truncate(crashStep))
			snd := startClusterSender(members, hist)
			time.Sleep(20 * time.Second)
			snd.stop()
			if err := snd.err(); err != nil {
				t.Fatalf("sender: %v", err)
			}
			reqs := snd.sent()
			if n := snd.retries.Load(); n > 0 {
				t.Errorf("the agents had to retry %d times: the peer's trouble reached them", n)
			}
			if len(reqs) < 15 {
				t.Errorf("only %d steps acknowledged in 20 s: the members stalled", len(reqs))
			}
			if bad.requests.Load() == 0 {
				t.Fatal("nothing was forwarded to the bad peer: the test does not test it")
			}
			// The windows closed by the end of the run reach Prometheus from both members.
			lastK := windowEnd(reqs[len(reqs)-1].ts) - 2*crashInterval.Milliseconds()
			for _, m := range members {
				eventually(t, 30*time.Second, m.name+" keeps writing its outputs", func() (bool, error) {
					n := m.proxy.outputsAtOrAfter(lastK)
					return n > 0, fmt.Errorf("%s wrote no output at or after %s", m.name, fmtMs(lastK))
				})
				m.proxy.check(t)
			}
			t.Logf("%d steps acknowledged with no retry; %d forwarded requests to the bad peer", len(reqs), bad.requests.Load())
		})
	}
}

// TestCluster_a_member_that_hangs_holds_back_only_what_it_owned runs two members and a fake
// one that answers its identity but hangs on every other request, in the ring from the
// start; agents write to the two. A third member joins: it gains shards from all three. The
// two real members' queues of the ring the join replaced still hold series for the hung
// member and do not drain (for up to 2 minutes), and they say so when asked whether they
// have handed over. Then outputs begin that no member has state of, so that no handoff
// ends their wait at the joiner: those it gained from the real members are written within
// seconds, once those members have said they handed over what they owned, long before the
// drain or handoff_timeout (3m here) ends; only those gained from the hung member wait.
func TestCluster_a_member_that_hangs_holds_back_only_what_it_owned(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	bad := startFakePeer(t, "node-bad", true)
	members, peers := startClusterWith(t, prom.WriteURL, 3, 0, 2*time.Second, "  handoff_timeout: 3m\n")
	agents, joiner := members[:2], members[2]
	// The joiner is added as a real peer's ring adds it (not a start into the ring, after
	// which every output waits for every peer, the hung one too).
	bad.lacks.Store(&joiner.name)
	peers.writeAddrs(t, agents[0].addr, agents[1].addr, bad.addr)
	for _, m := range agents {
		m.start(t)
	}
	for _, m := range agents {
		waitMembers(t, m, 3)
	}
	hist := newCrashHistory(time.Now().Truncate(crashStep))
	snd := startClusterSender(agents, hist)
	defer snd.stop()
	time.Sleep(10 * time.Second) // the queues to the hung member fill

	peers.writeAddrs(t, agents[0].addr, agents[1].addr, bad.addr, joiner.addr)
	joiner.start(t)
	for _, m := range members {
		waitMembers(t, m, 4)
	}
	joined := time.Now()
	// The agents' members answer that all they have left is queues to the hung member.
	ring := regexp.MustCompile(`(?m)^cardinal_cluster_ring_info\{version="([0-9a-f]+)"\} 1$`)
	for _, m := range agents {
		v := ring.FindStringSubmatch(m.card.selfMetrics())
		if v == nil {
			t.Fatalf("%s exports no cardinal_cluster_ring_info", m.name)
		}
		resp, err := http.Get(m.card.URL + "/cluster/v1/handed-over?ring=" + v[1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		own, to := resp.Header.Get("X-Cardinal-Handed-Over-Own"), resp.Header.Get("X-Cardinal-Draining-To")
		t.Logf("%s, asked whether it handed over ring %s: %d %q, own %q, draining to %q", m.name, v[1], resp.StatusCode, bytes.TrimSpace(body), own, to)
		if !strings.Contains(to, "node-bad") {
			t.Errorf("%s does not say its queues still send to node-bad: the test does not test a queue that does not drain", m.name)
		}
	}

	// New outputs: 40 jobs the agents had not sent before, a gauge each, every second.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			var series []prompb.TimeSeries
			now := time.Now().UnixMilli()
			for j := range 40 {
				series = append(series, prompb.TimeSeries{
					Labels: []prompb.Label{
						{Name: "__name__", Value: "crash_inflight"},
						{Name: "job", Value: fmt.Sprintf("late-%d", j)},
						{Name: "pod", Value: "late"},
					},
					Samples: []prompb.Sample{{Timestamp: now, Value: 1}},
				})
			}
			raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = postBody(client, agents[0].card.WriteURL, snappy.Encode(nil, raw))
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	began := time.Now()
	eventually(t, 45*time.Second, joiner.name+" writes new outputs it gained from the members that answer", func() (bool, error) {
		n := joiner.proxy.seriesContaining(`"late-`)
		return n > 0, fmt.Errorf("%s has written no new output %s after they began (%s after joining)", joiner.name,
			time.Since(began).Round(time.Second), time.Since(joined).Round(time.Second))
	})
	t.Logf("%s wrote new outputs %s after they began; %d of the 40 so far", joiner.name, time.Since(began).Round(time.Second), joiner.proxy.seriesContaining(`"late-`))
	if err := snd.err(); err != nil {
		t.Fatalf("sender: %v", err)
	}
	if n := snd.retries.Load(); n > 0 {
		t.Errorf("the agents had to retry %d times: the peer's trouble reached them", n)
	}
	for _, m := range members {
		m.proxy.check(t)
	}
}

// seriesContaining counts the series Prometheus stored a sample of whose key contains sub.
func (p *crashProxy) seriesContaining(sub string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for key := range p.stored {
		if strings.Contains(key, sub) {
			n++
		}
	}
	return n
}

// TestCluster_kill9_of_members_loses_nothing kills members of a three-member cluster with
// SIGKILL while agents write and peers forward, and restarts them on their WAL: what a
// member acknowledged (to an agent, or to a peer that forwarded it) and what it had queued
// for its peers survive, so every output is still, window by window, exactly what one
// cardinal would write, from one writer, with no reset.
func TestCluster_kill9_of_members_loses_nothing(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	members, _ := startCluster(t, prom.WriteURL, clusterMembers, clusterMembers)
	hist := newCrashHistory(time.Now().Truncate(crashStep))
	snd := startClusterSender(members, hist)
	time.Sleep(10 * time.Second)
	for _, m := range members[1:] {
		if err := m.card.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := m.card.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		m.card.Start()
		waitMembers(t, m, len(members))
		t.Logf("%s killed and restarted", m.name)
		time.Sleep(6 * time.Second)
	}
	time.Sleep(8 * time.Second)
	stopAndCheckCluster(t, snd, prom, members)
}

// TestCluster_all_members_killed_at_once_restart_on_their_last_ring kills every member of a
// three-member cluster at once with SIGKILL while agents write, and restarts them together.
// Each restarts before any peer answers, so discovery alone would start it alone, owning
// every output: the series its WAL replays and its checkpoint had queued for peers would be
// aggregated here and handed off later, on top of what their owners had already counted
// from the same samples. A member starts on the ring it saved instead, so what it replays
// goes to the owner, which drops what it has already seen by its timestamp. Checkpoints
// are 8 s apart and the kill comes 14 s in, so that the log replays several samples of each
// input after a checkpoint.
func TestCluster_all_members_killed_at_once_restart_on_their_last_ring(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	members, _ := startClusterCheckpointing(t, prom.WriteURL, clusterMembers, clusterMembers, 8*time.Second)
	hist := newCrashHistory(time.Now().Truncate(crashStep))
	snd := startClusterSender(members, hist)
	time.Sleep(14 * time.Second)
	for _, m := range members {
		if err := m.card.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		if _, err := m.card.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Log("every member killed")
	time.Sleep(300 * time.Millisecond)
	for _, m := range members {
		m.card.Start()
	}
	for _, m := range members {
		waitMembers(t, m, len(members))
	}
	t.Log("every member restarted")
	// Each restarted member holds its outputs for the state its peers may have; none has
	// any (they restarted too), and each says so: the wait ends within seconds, not after
	// handoff_timeout (a minute), which would outlast the check's wait for the last window.
	settled := regexp.MustCompile(`(?m)^cardinal_cluster_handoff_wait_seconds_count\{result="handed_over"\} [1-9]`)
	for _, m := range members {
		eventually(t, 15*time.Second, m.name+" sees every peer handed over", func() (bool, error) {
			got := m.card.selfMetrics()
			return settled.MatchString(got), fmt.Errorf("metrics: %s", got)
		})
	}
	time.Sleep(10 * time.Second)
	stopAndCheckCluster(t, snd, prom, members)
}

// TestCluster_a_member_that_leaves_on_shutdown_hands_its_outputs_over runs four members with
// cluster.leave_on_shutdown, agents on three of them. The fourth, which only owns outputs,
// gets SIGTERM while it is still listed and stays away past leave_after and handoff_timeout
// (as a node drained and deleted would): it must leave the ring and hand every output over
// before it exits, so that the others go on from its state. Without that, they drop it after
// leave_after, wait handoff_timeout for a handoff that never comes and restart its outputs
// from zero: a reset, and totals short. It then starts again on its WAL, rejoins as a new
// member does, and gets its share handed back. Last, a member with agents is restarted as a
// rolling update would: it leaves with its agents' inputs, and rejoins while they write to
// it.
func TestCluster_a_member_that_leaves_on_shutdown_hands_its_outputs_over(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{})
	members, _ := startClusterWith(t, prom.WriteURL, clusterMembers+1, clusterMembers+1, 2*time.Second,
		"  handoff_timeout: 10s\n  leave_on_shutdown: true\n")
	agents, leaver := members[:clusterMembers], members[clusterMembers]
	hist := newCrashHistory(time.Now().Truncate(crashStep))
	snd := startClusterSender(agents, hist)
	time.Sleep(15 * time.Second)

	if code := leaver.card.Stop(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0", leaver.name, code)
	}
	for _, m := range agents {
		waitMembers(t, m, len(agents))
	}
	t.Logf("%s left and stopped", leaver.name)
	merged := regexp.MustCompile(`(?m)^cardinal_cluster_handoffs_received_total\{peer="` + leaver.name + `",result="ok"\} [1-9]`)
	if !slices.ContainsFunc(agents, func(m *clusterMember) bool { return merged.MatchString(m.card.selfMetrics()) }) {
		t.Errorf("no member merged a handoff from %s", leaver.name)
	}
	// Past leave_after and handoff_timeout, when the others would have restarted its outputs.
	time.Sleep(20 * time.Second)

	added := func(m *clusterMember) int { return strings.Count(m.card.Log(), "cluster: the peers added this member") }
	before := added(leaver)
	leaver.card.Start()
	for _, m := range members {
		waitMembers(t, m, len(members))
	}
	// The others dropped it: it stays out of its own ring, forwarding, until they add it.
	eventually(t, 30*time.Second, leaver.name+" joins its ring once the others add it", func() (bool, error) {
		return added(leaver) > before, errors.New("no \"peers added this member\" in its log since the restart")
	})
	t.Logf("%s rejoined", leaver.name)
	time.Sleep(10 * time.Second)

	if code := agents[0].card.Stop(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0", agents[0].name, code)
	}
	before = added(agents[0])
	agents[0].card.Start()
	for _, m := range members {
		waitMembers(t, m, len(members))
	}
	// It left: its agents' series go to the members that write their outputs until the
	// others add it again.
	eventually(t, 30*time.Second, agents[0].name+" joins its ring once the others add it", func() (bool, error) {
		return added(agents[0]) > before, errors.New("no \"peers added this member\" in its log since the restart")
	})
	t.Logf("%s restarted", agents[0].name)
	time.Sleep(10 * time.Second)
	if err := snd.err(); err != nil {
		t.Fatalf("sender: %v", err)
	}
	stopAndCheckCluster(t, snd, prom, members)
}
