package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/hashring"
)

// The tests of cluster.leave_on_shutdown against a peer that does not take handoffs. The
// cluster e2e test covers leaving among real members.

// handoffPeer is a ready cluster member named peer-b that takes forwarded series and, while
// hang is set, holds every handoff until the sender gives up on it.
type handoffPeer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hang bool
	ids  []string // of the handoffs taken
	seen []string // of every attempt
}

func startHandoffPeer(t *testing.T, hang bool) *handoffPeer {
	t.Helper()
	p := &handoffPeer{hang: hang}
	quit := make(chan struct{})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case hashring.IdentityPath:
			_ = json.NewEncoder(w).Encode(hashring.Identity{Name: "peer-b", Ready: true})
		case hashring.HandoffPath:
			_, _ = io.ReadAll(r.Body)
			id := r.Header.Get("X-Cardinal-Handoff-Id")
			p.mu.Lock()
			p.seen = append(p.seen, id)
			hang := p.hang
			if !hang {
				p.ids = append(p.ids, id)
			}
			p.mu.Unlock()
			if hang {
				select {
				case <-r.Context().Done():
				case <-quit:
				}
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(quit) }) // first: the sender's client may still wait on a handoff
	return p
}

// attempts returns the ids of every handoff attempt and of the handoffs taken.
func (p *handoffPeer) attempts() (seen, taken []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen), slices.Clone(p.ids)
}

// leaveConfig is node-x's configuration in a ring with peer, leaving on shutdown, with
// handoff_timeout handoff; wal is its wal section, or empty.
func leaveConfig(t *testing.T, peer *handoffPeer, handoff time.Duration, wal string) string {
	t.Helper()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(down.Close)
	path := filepath.Join(t.TempDir(), "cardinal.yaml")
	cfg := fmt.Sprintf(`
aggregator: {flush_interval: 1s}
downstream:
  remote_write: [{url: %s}]
%s
cluster:
  name: node-x
  peers: ['peer-b=%s']
  refresh_interval: 1s
  probe_timeout: 1s
  handoff_timeout: %s
  leave_on_shutdown: true
rules:
  - {metric_name: req_total, type: counter, drop_labels: [pod]}
`, down.URL, wal, peer.srv.Listener.Addr(), handoff)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runMember starts the server on config and waits until it is ready; stop shuts it down
// and returns how long that took.
func runMember(t *testing.T, config string, shutdownTimeout time.Duration) (addr string, stop func() time.Duration) {
	t.Helper()
	f, err := parseFlags([]string{"--config.file=" + config, "--web.listen-address=127.0.0.1:0", "--config.check-interval=0",
		"--aggregator.flush-tick=100ms", "--shutdown.timeout=" + shutdownTimeout.String()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuilder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, f, slog.New(slog.NewTextHandler(logs, nil))) }()
	listen := regexp.MustCompile(`msg="cardinal started" listen=(\S+)`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := listen.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("the server stopped: %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the server did not start:\n%s", logs.String())
		}
	}
	stop = func() time.Duration {
		start := time.Now()
		cancel()
		err := <-done
		took := time.Since(start)
		t.Logf("shutdown took %s (err %v); log:\n%s", took.Round(time.Millisecond), err, logs.String())
		return took
	}
	return addr, stop
}

// pushCounters writes n series of req_total, each on its own job, with value v.
func pushCounters(t *testing.T, addr string, n int, v float64) {
	t.Helper()
	var req prompb.WriteRequest
	now := time.Now().UnixMilli()
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "job", Value: fmt.Sprintf("j%d", i)}, {Name: "pod", Value: "p"}},
			Samples: []prompb.Sample{{Value: v, Timestamp: now}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/api/v1/write", "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
}

// TestLeavingAtShutdownTakesAtMostHalfTheTimeout: with an owner that does not take the
// handoff, leaving gives up at half of --shutdown.timeout, and handing on what came last
// does not wait again past it, so the checkpoint, the queues and the sinks keep the rest.
// (It waited for the same handoff until the whole timeout was gone.)
func TestLeavingAtShutdownTakesAtMostHalfTheTimeout(t *testing.T) {
	peer := startHandoffPeer(t, true)
	addr, stop := runMember(t, leaveConfig(t, peer, 30*time.Second, ""), 4*time.Second)
	pushCounters(t, addr, 64, 1)
	time.Sleep(200 * time.Millisecond)
	took := stop()
	if seen, _ := peer.attempts(); len(seen) == 0 {
		t.Fatal("no handoff reached the peer: the member did not leave")
	}
	if took >= 3500*time.Millisecond {
		t.Errorf("shutdown took %s with --shutdown.timeout=4s; leaving may take 2s of it", took)
	}
}

// TestALeaversUndeliveredHandoffReachesItsOwnerFromTheNextProcess: a member that left owns
// nothing, so a handoff its owner did not take within handoff_timeout is all that is left
// of those outputs. It stays pending, so the last checkpoint holds it and the next process
// delivers it under its id. (It was given up and lost.)
func TestALeaversUndeliveredHandoffReachesItsOwnerFromTheNextProcess(t *testing.T) {
	peer := startHandoffPeer(t, true)
	config := leaveConfig(t, peer, time.Second, fmt.Sprintf("wal: {dir: %s}", filepath.Join(t.TempDir(), "wal")))
	addr, stop := runMember(t, config, 6*time.Second)
	pushCounters(t, addr, 64, 1)
	time.Sleep(200 * time.Millisecond)
	stop()
	seen, _ := peer.attempts()
	if len(seen) == 0 {
		t.Fatal("no handoff reached the peer: the member did not leave")
	}

	peer.mu.Lock()
	peer.hang = false
	peer.mu.Unlock()
	_, stop = runMember(t, config, 6*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, taken := peer.attempts(); slices.ContainsFunc(taken, func(id string) bool { return slices.Contains(seen, id) }) {
			break
		}
		if time.Now().After(deadline) {
			_, taken := peer.attempts()
			stop()
			t.Fatalf("the restarted member delivered handoffs %v; none is the one its first process did not deliver (%v)", taken, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
}
