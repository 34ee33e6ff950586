package hashring

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
//
// A replaced ring's queue to a member holds series of the outputs that member owned by
// that ring: they concern an output gained from that member (its owner begins a stray of
// them there, and hands it on), not one gained from the member whose queue it is. So a peer
// whose only work left is such queues has handed over what it owned (HeaderHandedOverOwn),
// and names the members they still send to (HeaderDrainingTo, on every answer): an output
// gained from one of those waits for the queue, wherever it is, this member's own included
// (and the ring settles only once those have finished too). Not while a request routed by
// a replaced ring is still being aggregated: it may begin here an output given up. A member
// that hangs in the ring so holds back only what it owned, even though every queue to it
// stops draining (for up to the drain timeout). An older peer names no queue: one of its
// queues to the previous owner is not waited for, as before.

// HandedOverPath answers whether this member has handed over everything of a ring version
// (its query parameter ring): 200 when it has, 409 with the reason when not yet.
const HandedOverPath = "/cluster/v1/handed-over"

// The headers of a handed-over answer about replaced rings' queues: HeaderDrainingTo names
// the members they still send to (comma-separated), and HeaderHandedOverOwn (on a 409) says
// that they are all that is left: the member holds nothing more of the outputs it owned.
const (
	HeaderDrainingTo    = "X-Cardinal-Draining-To"
	HeaderHandedOverOwn = "X-Cardinal-Handed-Over-Own"
)

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
// "" if it has; own when all that is left is replaced rings' queues still sending; and the
// members those queues send to, whatever else is left.
func (f *Forwarder) handedOver(v string) (why string, own bool, drainsTo []string) {
	draining, busy, drainsTo := f.replacedQueues()
	ps := f.cur.Load()
	if got := ps.view.ring.VersionString(); got != v {
		return fmt.Sprintf("ring %s here, not %s", got, v), false, drainsTo
	}
	if !ps.handedOver.Load() {
		return "still taking out what the ring gives others", false, drainsTo
	}
	if n := f.sending.count(); n > 0 {
		return fmt.Sprintf("%d handoffs pending", n), false, drainsTo
	}
	f.mu.Lock()
	holds := f.holdsForOthers
	f.mu.Unlock()
	if holds != nil && holds() {
		return "holding outputs begun for a sender on another ring", false, drainsTo
	}
	switch {
	case busy:
		// A request routed by a replaced ring is still being aggregated: it may begin
		// here an output this member gave up, as well as queue series for others.
		return "a request routed by a replaced ring is still being taken in", false, drainsTo
	case draining && len(drainsTo) == 0:
		// Its queues are done and the set about to go: nothing is known to be on its
		// way, but not yet nothing for sure.
		return "a replaced ring's queues are still sending", false, nil
	case draining:
		return "a replaced ring's queues are still sending to " + strings.Join(drainsTo, ", "), true, drainsTo
	}
	return "", true, nil
}

// replacedQueues reports whether a replaced ring's queues are still draining, whether a
// request routed by such a ring is still being taken in (busy: it may add to them), and
// the members those queues that have not finished send to, sorted (all of a busy set's).
func (f *Forwarder) replacedQueues() (draining, busy bool, to []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ps := range f.draining {
		inUse := ps.inUse.Load() > 0
		busy = busy || inUse
		for _, q := range ps.queues {
			if q == nil || slices.Contains(to, q.name) {
				continue
			}
			if !inUse && q.finished() {
				continue
			}
			to = append(to, q.name)
		}
	}
	slices.Sort(to)
	return len(f.draining) > 0, busy, to
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
		why, own, drainsTo := f.handedOver(v)
		if len(drainsTo) > 0 {
			w.Header().Set(HeaderDrainingTo, strings.Join(drainsTo, ","))
		}
		if why != "" {
			if own {
				w.Header().Set(HeaderHandedOverOwn, "true")
			}
			http.Error(w, "not handed over: "+why, http.StatusConflict)
			return
		}
		_, _ = io.WriteString(w, "handed over\n")
	})
}

// settle asks the peers of ps, every settleEvery, whether they have handed over its ring,
// and publishes those that have handed over what they owned in the last two rounds (done)
// and the members replaced rings' queues still send to (drains), for Awaits, until every
// peer has handed over everything in two rounds in a row (then ps is settled), ps is
// replaced, or the handoff timeout since it came is over (on the real clock: a test's may
// not move).
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
	var before round
	for {
		if f.cur.Load() != ps || f.isClosed() {
			return
		}
		if waited := time.Since(since); waited > f.handoffTimeout {
			f.metrics.handoffWait.WithLabelValues("timeout").Observe(waited.Seconds())
			return
		}
		_, _, mine := f.replacedQueues() // this member's own queues count as a peer's do
		r := judge(peers, f.allHandedOver(client, peers, version), mine, &before)
		ps.last.Store(r)
		before = *r
		if len(r.waiting) == 0 {
			ps.waiting.Store(nil)
		} else {
			ps.waiting.Store(&r.waiting)
		}
		if r.all {
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

// round is one round of the handed-over question, as Awaits reads it: published as one,
// so that what it says of a member's handoff and of the queues to it are of the same round.
type round struct {
	answers []handedOverAnswer // by peer
	mine    []string           // the members this member's replaced queues sent to
	// done: the peers that handed over what they owned in this round and the one before;
	// answered: those that answered at all; drains: the members replaced queues, this
	// member's or a peer's, sent to in this round or the one before.
	done, answered, drains map[string]bool
	// waiting are the peers that have not handed over everything, each as "name: why".
	waiting []string
	// all: every peer handed over everything in this round and the one before, and this
	// member's replaced queues sent to nobody in either.
	all bool
}

// isDone reports whether the member called name handed over what it owned (r may be nil:
// no round yet).
func (r *round) isDone(name string) bool { return r != nil && r.done[name] }

// drainsTo reports whether a replaced ring's queue still sent to the member called name:
// what it holds may begin outputs there that the member gave up, to be handed on.
func (r *round) drainsTo(name string) bool { return r != nil && r.drains[name] }

// judge reads the answers of peers (in their order) and the members this member's own
// replaced queues send to (mine), given the round before (its zero value before the first).
// Two rounds in a row count, for the drains too: a queue that finished just before its
// member answered may have delivered to a member that answered a moment earlier, which
// says that it holds a stray only in the next round.
func judge(peers []string, answers []handedOverAnswer, mine []string, before *round) *round {
	r := &round{answers: answers, mine: mine, done: map[string]bool{}, answered: map[string]bool{}, drains: map[string]bool{}}
	for _, to := range slices.Concat(mine, before.mine) {
		r.drains[to] = true
	}
	all := 0
	for i, a := range answers {
		name := peers[i]
		if a.heard {
			r.answered[name] = true
		}
		for _, to := range a.drainsTo {
			r.drains[to] = true
		}
		if a.why != "" {
			r.waiting = append(r.waiting, name+": "+a.why)
		}
		if before.answers == nil {
			continue
		}
		for _, to := range before.answers[i].drainsTo {
			r.drains[to] = true
		}
		if a.own && before.answers[i].own {
			r.done[name] = true
		}
		if a.why == "" && before.answers[i].why == "" {
			all++
		}
	}
	r.all = all == len(peers) && len(mine) == 0 && len(before.mine) == 0
	return r
}

// handedOverAnswer is what one peer answered to the handed-over question.
type handedOverAnswer struct {
	// heard: it answered at all (not an error nor a timeout).
	heard bool
	// why it has not handed over everything (its answer, or the error); "" if it has.
	why string
	// own: it has handed over all it owned (everything, or all but replaced rings'
	// queues still sending, HeaderHandedOverOwn).
	own bool
	// drainsTo are the members its replaced rings' queues still send to.
	drainsTo []string
}

// allHandedOver asks every peer at once whether it has handed over ring version, and
// returns their answers in the order of peers.
func (f *Forwarder) allHandedOver(client *http.Client, peers []string, version string) []handedOverAnswer {
	var wg sync.WaitGroup
	answers := make([]handedOverAnswer, len(peers))
	for i, name := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = f.askHandedOver(client, name, version)
		}()
	}
	wg.Wait()
	return answers
}

// askHandedOver asks one peer whether it has handed over ring version.
func (f *Forwarder) askHandedOver(client *http.Client, name, version string) handedOverAnswer {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	req, err := f.peerRequest(ctx, http.MethodGet, name, HandedOverPath+"?ring="+url.QueryEscape(version), nil)
	if err != nil {
		return handedOverAnswer{why: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		return handedOverAnswer{why: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	a := handedOverAnswer{heard: true}
	for _, v := range resp.Header.Values(HeaderDrainingTo) {
		for to := range strings.SplitSeq(v, ",") {
			if to = strings.TrimSpace(to); to != "" {
				a.drainsTo = append(a.drainsTo, to)
			}
		}
	}
	if resp.StatusCode == http.StatusOK {
		a.own = true
		return a
	}
	a.why = fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	a.own = resp.StatusCode == http.StatusConflict && resp.Header.Get(HeaderHandedOverOwn) == "true" && len(a.drainsTo) > 0
	return a
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
	// Departed are the members that left the ring in the changes of the last handoff
	// timeout: outputs gained from one wait for its handoff until its Until, whatever the
	// peers say (one that has left may still hand over), settled or alone.
	Departed []DepartedMember
}

// DepartedMember is a member that left the ring, and when the wait for its handoff ends.
type DepartedMember struct {
	Name  string
	Until time.Time
}

// HandoffWait returns the state of the ring in force's wait for its peers' handoffs.
func (f *Forwarder) HandoffWait() HandoffWait {
	ps := f.cur.Load()
	w := HandoffWait{Since: ps.since, Until: ps.since.Add(f.handoffTimeout), Settled: ps.settled.Load(),
		SettledAfter: time.Duration(ps.settledAfter.Load())}
	if p := ps.waiting.Load(); p != nil && !w.Settled {
		w.Waiting = *p
	}
	now := f.now()
	seen := map[string]bool{}
	for _, c := range ps.changes { // the newest first, as Awaits reads them
		if c.prev == nil || now.Sub(c.at) > f.handoffTimeout {
			break
		}
		for _, m := range c.prev.ring.members {
			if m.Name != f.self && !seen[m.Name] && ps.view.ring.Index(m.Name) < 0 {
				seen[m.Name] = true
				w.Departed = append(w.Departed, DepartedMember{Name: m.Name, Until: c.at.Add(f.handoffTimeout)})
			}
		}
	}
	return w
}

// isClosed reports whether Shutdown was called.
func (f *Forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}
