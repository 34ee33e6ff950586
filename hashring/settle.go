package hashring

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// After a ring change (or a start) a member holds the outputs it gained until their
// previous owner's handoff comes, for up to the handoff timeout: the old owner's state may
// still be on its way. When no peer has any (a whole cluster restarted, or the outputs began
// after the change), the outputs were held for the whole timeout. Instead, the member asks
// every peer whether it has handed over everything of the ring in force (HandedOverPath),
// every settleEvery. A peer that said so in two rounds in a row is done: the outputs whose
// previous owners (since this member last owned them) are all done and still in the ring
// stop waiting (Awaits), and after a start, all of them once every peer is done. A peer that
// hangs holds back only what it owned.
//
// A peer has handed over when it routes by the same ring, has taken out of its aggregator
// what that ring gives others (the hand off that follows a ring change, or a start's), has
// no handoff pending (one split by an older ring may carry outputs for the asker through
// another member), has no replaced ring's queue still sending, and holds no state begun
// for a sender on another ring (strays, handed off at its next flush tick). Two rounds in a
// row, so that a handoff delivered to a peer just after it answered shows in the next.

// HandedOverPath answers whether this member has handed over everything of a ring version
// (its query parameter ring): 200 when it has, 409 with the reason when not yet.
const HandedOverPath = "/cluster/v1/handed-over"

// settleEvery is how often a member asks its peers whether they have handed over, while it
// waits; settleTimeout bounds one question.
const (
	settleEvery   = 500 * time.Millisecond
	settleTimeout = 2 * time.Second
)

// HoldsForOthers sets the function that reports whether this member holds state of
// outputs another member owns that is not yet taken out (aggregator.HoldsForOthers): while
// it does, this member has not handed over.
func (f *Forwarder) HoldsForOthers(fn func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdsForOthers = fn
}

// Started tells the forwarder that this member has restored its state (checkpoint and
// write-ahead log) and is about to serve: it hands off what the ring in force does not give
// it (OnRingChange's function) and from then on answers peers that it has handed over that
// ring (a ring change does the same by itself), and it asks its peers, for this ring and
// every later one, whether they have handed over theirs.
func (f *Forwarder) Started() {
	f.mu.Lock()
	f.serving = true
	ps := f.cur.Load()
	if !ps.settled.Load() {
		go f.settle(ps)
	}
	f.mu.Unlock()
	f.handOverRing(ps)
}

// handOverRing takes out of the aggregator what the ring of ps does not give this member and
// marks ps handed over: the handoffs are pending (SendHandoff) when it returns.
func (f *Forwarder) handOverRing(ps *peerSet) {
	f.mu.Lock()
	fn := f.onChange
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
	ps.handedOver.Store(true)
}

// handedOver returns why this member has not handed over everything of ring version v, or
// "" if it has.
func (f *Forwarder) handedOver(v string) string {
	ps := f.cur.Load()
	if got := ps.view.ring.VersionString(); got != v {
		return fmt.Sprintf("ring %s here, not %s", got, v)
	}
	if !ps.handedOver.Load() {
		return "still taking out what the ring gives others"
	}
	if n := f.sending.count(); n > 0 {
		return fmt.Sprintf("%d handoffs pending", n)
	}
	f.mu.Lock()
	draining, holds := len(f.draining), f.holdsForOthers
	f.mu.Unlock()
	if draining > 0 {
		return "a replaced ring's queues are still sending"
	}
	if holds != nil && holds() {
		return "holding outputs begun for a sender on another ring"
	}
	return ""
}

// HandedOverHandler answers HandedOverPath.
func (f *Forwarder) HandedOverHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v := r.URL.Query().Get("ring")
		if v == "" {
			http.Error(w, "the ring query parameter is missing", http.StatusBadRequest)
			return
		}
		if why := f.handedOver(v); why != "" {
			http.Error(w, "not handed over: "+why, http.StatusConflict)
			return
		}
		_, _ = io.WriteString(w, "handed over\n")
	})
}

// settle asks the peers of ps, every settleEvery, whether they have handed over its ring,
// and publishes those that did in the last two rounds (done, for Awaits), until all have
// (then ps is settled), ps is replaced, or the handoff timeout since it came is over (on the
// real clock: a test's may not move).
func (f *Forwarder) settle(ps *peerSet) {
	since := ps.since
	var peers []string
	for i, m := range ps.view.ring.members {
		if i != ps.view.self {
			peers = append(peers, m.Name)
		}
	}
	if len(peers) == 0 {
		ps.settled.Store(true)
		return
	}
	transport := f.transport()
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: settleTimeout}
	version := ps.view.ring.VersionString()
	var before map[string]bool // the peers that said so in the previous round
	for {
		if f.cur.Load() != ps || f.isClosed() {
			return
		}
		if waited := time.Since(since); waited > f.handoffTimeout {
			f.metrics.handoffWait.WithLabelValues("timeout").Observe(waited.Seconds())
			return
		}
		ok, answered, waiting := f.allHandedOver(client, peers, version)
		done := make(map[string]bool, len(ok))
		for name := range ok {
			if before[name] {
				done[name] = true
			}
		}
		ps.answered.Store(&answered)
		ps.done.Store(&done)
		before = ok
		if len(waiting) == 0 {
			ps.waiting.Store(nil)
		} else {
			ps.waiting.Store(&waiting)
		}
		if len(done) == len(peers) {
			waited := time.Since(since)
			ps.settledAfter.Store(int64(max(waited, 1)))
			ps.settled.Store(true)
			f.metrics.handoffWait.WithLabelValues("handed_over").Observe(waited.Seconds())
			f.logger.Info("cluster: every peer has handed over; outputs waiting for a handoff go on", "ring", version, "waited", waited.Round(time.Millisecond))
			return
		}
		time.Sleep(settleEvery)
	}
}

// allHandedOver asks every peer at once whether it has handed over ring version, and
// returns those that have, those that answered at all (whatever they said), and those that
// have not handed over, each as "name: why".
func (f *Forwarder) allHandedOver(client *http.Client, peers []string, version string) (ok, answered map[string]bool, waiting []string) {
	var wg sync.WaitGroup
	why := make([]string, len(peers))
	heard := make([]bool, len(peers))
	for i, name := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			why[i], heard[i] = f.askHandedOver(client, name, version)
		}()
	}
	wg.Wait()
	ok, answered = make(map[string]bool, len(peers)), make(map[string]bool, len(peers))
	for i, w := range why {
		if heard[i] {
			answered[peers[i]] = true
		}
		if w != "" {
			waiting = append(waiting, peers[i]+": "+w)
		} else {
			ok[peers[i]] = true
		}
	}
	return ok, answered, waiting
}

// askHandedOver asks one peer whether it has handed over ring version: "" if it has, else
// its answer or the error; answered is false when no answer came (an error or a timeout).
func (f *Forwarder) askHandedOver(client *http.Client, name, version string) (why string, answered bool) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	req, err := f.peerRequest(ctx, http.MethodGet, name, HandedOverPath+"?ring="+url.QueryEscape(version), nil)
	if err != nil {
		return err.Error(), false
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error(), false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK {
		return "", true
	}
	return fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body)), true
}

// HandoffWait is the state of the ring in force's wait for its peers' handoffs (settle.go).
type HandoffWait struct {
	// Since is when the ring came; Until when the handoff timeout ends the wait.
	Since, Until time.Time
	// Settled: every peer has said it handed over, SettledAfter after Since.
	Settled      bool
	SettledAfter time.Duration
	// Waiting are the peers that had not at the last round, each as "name: why".
	Waiting []string
}

// HandoffWait returns the state of the ring in force's wait for its peers' handoffs.
func (f *Forwarder) HandoffWait() HandoffWait {
	ps := f.cur.Load()
	w := HandoffWait{Since: ps.since, Until: ps.since.Add(f.handoffTimeout), Settled: ps.settled.Load(),
		SettledAfter: time.Duration(ps.settledAfter.Load())}
	if p := ps.waiting.Load(); p != nil && !w.Settled {
		w.Waiting = *p
	}
	return w
}

// isClosed reports whether Shutdown was called.
func (f *Forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}
