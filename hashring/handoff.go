package hashring

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// HandoffPath is where a member receives the state of outputs it gained from their previous
// owner (docs/design.md §5).
const HandoffPath = "/cluster/v1/handoff"

// maxHandoffBytes bounds a handoff body: the state of a few million output series.
const maxHandoffBytes = 2 << 30

// Handoff is the state a flush took out of the aggregator: Encode returns the part whose
// placement keys keep selects (aggregator.Handoff).
type Handoff interface {
	Encode(keep func(key uint64) bool) []byte
	Len() int
}

// Owns reports whether this member owns the output with placement key key in the ring in
// force (aggregator.Ownership).
func (f *Forwarder) Owns(key uint64) bool { return f.cur.Load().view.Owner(key) == -1 }

// Awaits reports whether this member gained key's shard in a ring change less than the
// handoff timeout ago, and has owned it since, so that its previous owner's state may still
// come (aggregator.Ownership). Not only the last change counts: a shard gained from a member
// that left keeps waiting for its handoff when another member joins a moment later. After
// a start, every owned key may, until the ring changes: the state of a member that joins a
// running cluster is with the others.
//
// The wait ends sooner once the members that may hold the state have handed the ring over
// (settle.go): after a start, every peer; for a shard gained in a change, the members that
// owned it in the changes since this member last did and those that joined in them, each
// of which must still be in the ring (one that has left may still hand over) and have said
// so, while no replaced ring's queue still sends to those owners. A peer that hangs so
// holds back only what it owned.
func (f *Forwarder) Awaits(key uint64) bool {
	ps := f.cur.Load()
	if ps.view.Owner(key) != -1 {
		return false
	}
	now := f.now()
	settled, last := ps.settled.Load(), ps.last.Load() // one round: done and drains agree
	gained := false
	for i, c := range ps.changes { // the newest first
		if now.Sub(c.at) > f.handoffTimeout {
			break
		}
		if c.prev == nil { // the start
			if i == 0 {
				return !settled // nothing changed since
			}
			break
		}
		if c.prev.Owner(key) == -1 { // this member owned it before this change
			if !gained {
				continue // and since: it was gained, if at all, in an older change
			}
			break // every owner since it last had it is checked
		}
		// Gained in this change or a newer one; the member that owned it before this one
		// may hold its state.
		gained = true
		prev := c.prev.ring.OwnerOfKey(key).Name
		if ps.awaitsMember(prev, settled, last) {
			return true
		}
		if len(c.joined) > 0 && !settled && ps.awaitsJoined(c.joined, key, prev, last) {
			return true
		}
	}
	return false
}

// awaitsJoined reports whether one of the members that joined in the ring change that gave
// this member key (whose previous owner was prev) may hold its state: a peer whose ring had
// that member, but not this one yet, gave it the key, which it owns in such a ring when it
// outranks prev. This member's admission is such a change (Admitted), when a member the
// peers added first joins its ring in the same round. It waits for one that answers the
// handed-over question and has not handed over what it owned, or to which a queue still
// sends (alive, it writes the output until it hands it over); not one that does not answer
// at all (down or hung): it writes nothing meanwhile, and that it holds anything for this
// member is only a possibility (a peer that hangs must not hold back what a member gains
// from the others).
func (ps *peerSet) awaitsJoined(joined []joinedMember, key uint64, prev string, last *round) bool {
	st := salt(ps.view.ring.Shard(key))
	prevScore := score(seed(prev), st)
	for _, j := range joined {
		if score(j.seed, st) <= prevScore || (last.isDone(j.name) && !last.drainsTo(j.name)) {
			continue
		}
		if last == nil || last.answered == nil || last.answered[j.name] {
			return true // not asked yet, or alive and not handed over
		}
	}
	return false
}

// awaitsMember reports whether a handoff from the member called name may still come for
// the ring of ps: it has left the ring (its handoff may still come), or the ring has not
// settled and, at the last round of the handed-over question, the member had not handed
// over what it owned or a replaced ring's queue still sent to it.
func (ps *peerSet) awaitsMember(name string, settled bool, last *round) bool {
	if ps.view.ring.Index(name) < 0 {
		return true
	}
	return !settled && (!last.isDone(name) || last.drainsTo(name))
}

// OnRingChange sets a function called after each change of the ring in force (the server
// hands off what this member lost then).
func (f *Forwarder) OnRingChange(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onChange = fn
}

// OnUndelivered sets the function given what a replaced ring's queues still hold after the
// drain timeout, decoded: the server routes it again by the ring in force, as it does what
// a checkpoint's queues held. Without one, it is dropped and counted.
func (f *Forwarder) OnUndelivered(fn func([]prompb.TimeSeries)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.undelivered = fn
}

// legacySuffix ends the id of a handoff sent again as older builds read it
// (OnHandoffRefused).
const legacySuffix = "/legacy"

// LegacyHandoffID is the id under which the handoff with id is sent again as older builds
// read it (OnHandoffRefused): a checkpoint may hold it pending under that id.
func LegacyHandoffID(id string) string { return id + legacySuffix }

// OnHandoffRefused sets the function that rewrites a handoff body an owner refused for an
// owner of an older build (aggregator.LegacyHandoff), reporting whether it changed anything:
// the rewritten body is sent once more, under a new id.
func (f *Forwarder) OnHandoffRefused(fn func(body []byte) ([]byte, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.legacy = fn
}

// legacyBody is the OnHandoffRefused function's rewrite of body; ok is false without one.
func (f *Forwarder) legacyBody(body []byte) (out []byte, ok bool) {
	f.mu.Lock()
	fn := f.legacy
	f.mu.Unlock()
	if fn == nil {
		return nil, false
	}
	return fn(body)
}

// OnHandoffTaken sets the function SendHandoff calls for each handoff (each part) it
// registers, before it returns: the flush that took the state out still holds checkpoints
// off, and every request logged from then on is ingested after the state was taken out. The
// function gives the handoff its place in what makes it durable (the server queues it in
// its WAL: router.HandoffTaken) and returns the function that the delivery calls before its
// first attempt, which waits until it is durable. Then a crash after the owner merged it
// restarts with the handoff pending under its id, which the owner answers without merging it
// again, rather than with the state it took out, which would be handed off again under a new
// id and merged twice. A failure is logged; the handoff goes anyway.
func (f *Forwarder) OnHandoffTaken(fn func(PendingHandoff) (durable func() error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handoffTaken = fn
}

// OnHandoffEnded sets the function called with the id a handoff's delivery began with once
// its owner has answered it for good (merged, or refused), so that a restart does not deliver
// it again. One given up at the handoff timeout is not ended: a restart soon after delivers
// it again, as one a crash interrupted, and the owner merges what it can of it (late). Nor
// is a part merged here (one a ring change gave back to this member): whether that merge is
// in the log or only in a checkpoint is the merge function's, and delivered again after a
// restart, it is merged once.
func (f *Forwarder) OnHandoffEnded(fn func(id string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handoffEnded = fn
}

// HandoffPartBytes is about the most one handoff body holds: what goes to one owner is sent
// in parts when larger, each the outputs whose placement keys are in one class modulo the
// number of parts, under an id of its own. The owner merges each on its own (an output and
// its inputs are in one part); one with a WAL logs each part instead of taking a checkpoint
// for the whole, and stops ingestion only for the time a part's merge takes.
const HandoffPartBytes = 1 << 20

// handoffParallelParts bounds the parts of what goes to one owner that are delivered at
// once (SendHandoff).
const handoffParallelParts = 4

// SendHandoff sends each owner its part of h (in parts of about HandoffPartBytes), in the
// background, retrying with backoff for
// up to the handoff timeout. A part that cannot be delivered is lost, logged and counted:
// its owner goes on from the state it has. Until a part is delivered or given up it is
// pending (PendingHandoffs): registered before SendHandoff returns, so that a checkpoint,
// which the flush that took the state out holds off, has it either in the aggregator or
// here; and given to OnHandoffTaken's function then too, so that the log has it before
// every request logged after it was taken out.
//
// The flush decided which outputs to take out by the ring in force then, and SendHandoff
// splits them by the ring in force now: if the ring changed in between and gave some of
// them back to this member, that part is merged here again (by the merge function given
// to HandoffHandler), pending like any other until it is.
func (f *Forwarder) SendHandoff(h Handoff) {
	ps := f.cur.Load()
	f.mu.Lock()
	taken := f.handoffTaken
	f.mu.Unlock()
	send := func(peer string, owner int) {
		owns := func(key uint64) bool { return ps.view.Owner(key) == owner }
		body := h.Encode(owns)
		if body == nil {
			return
		}
		bodies := [][]byte{body}
		if n := uint64(len(body)/HandoffPartBytes + 1); n > 1 {
			// By the key's high bits: its low ones are its shard's (Ring.Shard), whose
			// outputs a class of the low bits would take whole.
			bodies = bodies[:0]
			for i := range n {
				if b := h.Encode(func(key uint64) bool { return (key>>32)%n == i && owns(key) }); b != nil {
					bodies = append(bodies, b)
				}
			}
		}
		// At most handoffParallelParts parts of one owner's in flight: its merges take
		// them one at a time anyway, and each holds a connection.
		slots := make(chan struct{}, handoffParallelParts)
		for _, b := range bodies {
			var nonce [8]byte
			_, _ = rand.Read(nonce[:])
			p := PendingHandoff{Peer: peer, ID: f.self + "/" + hex.EncodeToString(nonce[:]), Body: b}
			f.logger.Debug("cluster: handing off", "peer", peer, "id", p.ID, "bytes", len(b), "ring", ps.view.ring.VersionString())
			f.sending.add(p, f.metrics.handoffsPending)
			var durable func() error
			if taken != nil {
				durable = taken(p)
			}
			go func() {
				slots <- struct{}{}
				defer func() { <-slots }()
				f.deliverHandoff(p, durable)
			}()
		}
	}
	for i, m := range ps.view.ring.members {
		if i != ps.view.self {
			send(m.Name, i)
		}
	}
	send(f.self, -1)
}

// PendingHandoff is a handoff taken out of the aggregator and not yet delivered: its owner's
// name, its id (the same on every attempt, so that the owner merges it once; a new one only
// for the one retry as older builds read it, OnHandoffRefused) and its body.
type PendingHandoff struct {
	Peer, ID string
	Body     []byte
}

// PendingHandoffs returns the handoffs not yet delivered, for a checkpoint.
func (f *Forwarder) PendingHandoffs() []PendingHandoff { return f.sending.list() }

// ResendHandoffs delivers handoffs a checkpoint held (PendingHandoffs before a restart) as
// SendHandoff does, under their ids: an owner that merged one before answers it without
// merging it again (aggregator.MergeOnce).
func (f *Forwarder) ResendHandoffs(hs []PendingHandoff) {
	for _, p := range hs {
		f.sending.add(p, f.metrics.handoffsPending)
		go f.deliverHandoff(p, nil) // the log or a checkpoint holds them already
	}
}

// WaitHandoffs waits until every handoff taken out so far has been delivered or given up
// (none is pending), or until ctx is done, when it says how many are left. A member that
// leaves before it exits waits so: with a WAL its checkpoint would keep an undelivered
// handoff for the next process, but a member leaving for good has none.
func (f *Forwarder) WaitHandoffs(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := f.sending.count()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d handoffs not delivered: %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

// pendingHandoffs are the handoffs being delivered, by id.
type pendingHandoffs struct {
	mu sync.Mutex
	m  map[string]PendingHandoff
}

// count is the number of handoffs pending.
func (p *pendingHandoffs) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// add registers h, and shows the count in gauge.
func (p *pendingHandoffs) add(h PendingHandoff, gauge prometheus.Gauge) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]PendingHandoff{}
	}
	p.m[h.ID] = h
	gauge.Set(float64(len(p.m)))
}

// done forgets handoff id, and shows the count in gauge.
func (p *pendingHandoffs) done(id string, gauge prometheus.Gauge) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, id)
	gauge.Set(float64(len(p.m)))
}

// swap replaces handoff old with h at once, so that a checkpoint has one or the other.
func (p *pendingHandoffs) swap(old string, h PendingHandoff) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, old)
	p.m[h.ID] = h
}

func (p *pendingHandoffs) list() []PendingHandoff {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PendingHandoff, 0, len(p.m))
	for _, h := range p.m {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b PendingHandoff) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// deliverHandoff posts one handoff to its owner (first waiting, when it was just taken, until
// it is durable: durable, from OnHandoffTaken's function) until it is accepted, refused for
// good (a 4xx but 408 and 429: the owner answers a retry of a refused merge with the same
// refusal), or the handoff timeout is over; in every case it is no longer pending, but for
// the last in a member that has left and is shutting down (StopHandingOff), which keeps it
// pending for its last checkpoint. OnHandoffEnded's function learns of the first two. A
// refused body that OnHandoffRefused's function can rewrite for an older build is sent once
// more, rewritten, under its id + legacySuffix.
func (f *Forwarder) deliverHandoff(p PendingHandoff, durable func() error) {
	f.mu.Lock()
	ended := f.handoffEnded
	f.mu.Unlock()
	if p.Peer == f.self {
		ended = nil // see OnHandoffEnded
	}
	kept, answered, began := false, false, p.ID
	defer func() {
		if !kept {
			f.sending.done(p.ID, f.metrics.handoffsPending)
		}
		if answered && ended != nil {
			ended(began)
		}
	}()
	name, id, body := p.Peer, p.ID, p.Body
	start := time.Now()
	if durable != nil {
		if err := durable(); err != nil {
			f.logger.Warn("cluster: a handoff is not durable before its delivery; a crash after it is merged would hand that state off again", "peer", name, "id", id, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.handoffTimeout)
	defer cancel()
	client := &http.Client{Transport: f.transport(), Timeout: time.Duration(f.cfg.Timeout)}
	defer client.CloseIdleConnections() // a transport per handoff part: none kept open after it
	bo := f.backoff()
	for attempt := 0; ; attempt++ {
		err := f.handOver(ctx, client, name, id, body)
		if err == nil {
			answered = true
			f.metrics.handoffs.WithLabelValues(name, "ok").Inc()
			f.metrics.handoffBytes.WithLabelValues(name).Add(float64(len(body)))
			f.metrics.handoffDuration.Observe(time.Since(start).Seconds())
			return
		}
		if errors.Is(err, errRefused) && name != f.self && !strings.HasSuffix(id, legacySuffix) {
			if legacy, ok := f.legacyBody(body); ok {
				// An owner of an older build refuses a handoff whose first sample counts:
				// it goes again as that build reads it, under a new id (the refused one
				// merged nothing, and the owner answers its id with the same refusal).
				f.logger.Warn("cluster: the new owner refused a handoff that says a first sample counts; sending it once more as builds before 2026-12-05 read it (if the owner is one, a series new to the cluster is short of its first value there)", "peer", name, "err", err)
				p = PendingHandoff{Peer: name, ID: LegacyHandoffID(id), Body: legacy}
				f.sending.swap(id, p)
				id, body = p.ID, p.Body
				continue
			}
		}
		if errors.Is(err, errRefused) {
			answered = true
			f.metrics.handoffs.WithLabelValues(name, "failed").Inc()
			f.logger.Error("cluster: the new owner refused a handoff; it goes on without it", "peer", name, "bytes", len(body), "err", err)
			return
		}
		select {
		case <-ctx.Done():
			f.metrics.handoffs.WithLabelValues(name, "failed").Inc()
			if f.keepsUndelivered() {
				kept = true
				f.logger.Error("cluster: handoff not delivered; this member left the ring and is shutting down, so it stays pending for the last checkpoint", "peer", name, "bytes", len(body), "err", err)
				return
			}
			f.logger.Error("cluster: handoff not delivered; the new owner goes on without it", "peer", name, "bytes", len(body), "err", err)
			return
		case <-time.After(bo.Delay(attempt, 0)):
		}
	}
}

// handOver makes one attempt to deliver a handoff: a post to its owner, or for a part that
// came back to this member, a merge here (refused until HandoffHandler has set the merge
// function, which a restart resending its checkpoint's handoffs may not have yet).
func (f *Forwarder) handOver(ctx context.Context, client *http.Client, name, id string, body []byte) error {
	if name != f.self {
		return f.postHandoff(ctx, client, name, id, body)
	}
	f.mu.Lock()
	merge := f.merge
	f.mu.Unlock()
	if merge == nil {
		return errors.New("this member does not merge handoffs yet")
	}
	if err := merge(id, body); err != nil {
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return nil
}

// peerRequest is a request to member name at path (a cluster endpoint), with this
// member's credentials and name.
func (f *Forwarder) peerRequest(ctx context.Context, method, name, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.scheme+"://"+name+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range f.auth {
		req.Header[k] = v
	}
	req.Header.Set(HeaderForwardedBy, f.self)
	return req, nil
}

func (f *Forwarder) postHandoff(ctx context.Context, client *http.Client, name, id string, body []byte) error {
	req, err := f.peerRequest(ctx, http.MethodPost, name, HandoffPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(HeaderRingVersion, f.Ring().VersionString())
	req.Header.Set(headerHandoffID, id)
	if f.Leaving() {
		req.Header.Set(headerLeaving, "true")
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case refusedForGood(resp.StatusCode):
		return fmt.Errorf("%w: status %d: %s", errRefused, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
}

// errRefused is a peer's answer that sending the same request again cannot change.
var errRefused = errors.New("refused for good")

// refusedForGood reports whether a peer's HTTP status refuses a request for good: a 4xx
// but 408 (a timeout, often a proxy's) and 429 (too many requests), which are retried as
// a 5xx is.
func refusedForGood(code int) bool {
	return code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// OnRingDisagreement sets fn, which the handoff handler calls before it merges a handoff
// whose sender routes by another ring than the one in force here: fn should bring this
// member's ring up to date (a membership round, then SetMembers). A member that leaves hands
// its outputs over as soon as it has left its own ring, while the others still count it as
// an owner until their next round; merged by that stale ring, the outputs would look like
// strays at the next flush and go straight back to the member that is leaving. leaving is
// the sender's name when it says it is leaving (headerLeaving): taken out of discovery, it
// is probed by nobody, so only the handoff tells, and the round should drop it at once
// (Membership.Leaving) rather than after leave_after.
func (f *Forwarder) OnRingDisagreement(fn func(ctx context.Context, leaving string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onDisagree = fn
}

// headerLeaving is set on the handoffs of a member that is leaving (Leave).
const headerLeaving = "X-Cardinal-Leaving"

// syncRing runs the OnRingDisagreement function if the handoff's sender routes by a ring
// version (its header; none from an older member) other than the one in force.
// Handoffs that arrive together by the same version (the parts of one sender's) share one
// sync: each would otherwise run a membership round of its own, one after another.
func (f *Forwarder) syncRing(ctx context.Context, version, leaving string) {
	if version == "" || version == f.Ring().VersionString() {
		return
	}
	f.mu.Lock()
	fn := f.onDisagree
	if fn == nil {
		f.mu.Unlock()
		return
	}
	if done, ok := f.syncing[version]; ok {
		f.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		return
	}
	done := make(chan struct{})
	if f.syncing == nil {
		f.syncing = map[string]chan struct{}{}
	}
	f.syncing[version] = done
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.syncing, version)
		f.mu.Unlock()
		close(done)
	}()
	f.metrics.handoffRingSyncs.Inc()
	f.logger.Debug("cluster: a handoff came by another ring; a membership round first", "ring", version, "in_force", f.Ring().VersionString(), "leaving", leaving)
	fn(ctx, leaving)
	f.logger.Debug("cluster: membership round for a handoff done", "ring", version, "in_force", f.Ring().VersionString())
}

// HandoffHandler receives handoffs and gives them to merge with their id (the sender's,
// the same on every attempt: aggregator.MergeOnce); a body merge refuses is a 400. Attempts
// that arrive while the first is being merged wait for its answer. A handoff from a member
// that routes by another ring first brings this member's ring up to date
// (OnRingDisagreement).
//
// merge also takes the parts of this member's own handoffs that a ring change gave back to
// it before they were sent (SendHandoff).
func (f *Forwarder) HandoffHandler(merge func(id string, body []byte) error) http.Handler {
	f.mu.Lock()
	f.merge = merge
	f.mu.Unlock()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHandoffBytes))
		if err != nil {
			http.Error(w, "reading the handoff: "+err.Error(), http.StatusBadRequest)
			return
		}
		from := f.peers.label(r.Header.Get(HeaderForwardedBy))
		id := r.Header.Get(headerHandoffID)
		m, first := f.received.begin(id, time.Now(), 2*f.handoffTimeout)
		if first {
			leaving := ""
			if r.Header.Get(headerLeaving) != "" {
				leaving = r.Header.Get(HeaderForwardedBy)
			}
			f.syncRing(r.Context(), r.Header.Get(HeaderRingVersion), leaving)
			m.err = merge(id, body)
			close(m.done)
		} else {
			// The sender tried again (its request timed out, or the answer was lost):
			// the handoff is merged once, and this attempt gets that merge's answer.
			select {
			case <-m.done:
			case <-r.Context().Done():
				return
			}
			f.metrics.handoffsReceived.WithLabelValues(from, "duplicate").Inc()
		}
		switch {
		case m.err != nil:
			if first {
				f.metrics.handoffsReceived.WithLabelValues(from, "refused").Inc()
			}
			http.Error(w, m.err.Error(), http.StatusBadRequest)
			return
		case first:
			f.metrics.handoffsReceived.WithLabelValues(from, "ok").Inc()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// headerHandoffID names one handoff body across the attempts to deliver it, so that the
// receiver merges it once.
const headerHandoffID = "X-Cardinal-Handoff-Id"

// handoffIDs remembers the handoffs a member received lately, by id.
type handoffIDs struct {
	mu   sync.Mutex
	seen map[string]*handoffMerge
}

// handoffMerge is the merge of one handoff: done is closed when err is set.
type handoffMerge struct {
	done chan struct{}
	err  error
	at   time.Time
}

// begin returns the merge of handoff id and whether the caller is the first to bring it,
// which must then merge it, set err and close done. Entries older than keep are forgotten
// (a sender stops trying after its handoff timeout). A request without an id is always
// first.
func (h *handoffIDs) begin(id string, now time.Time, keep time.Duration) (*handoffMerge, bool) {
	m := &handoffMerge{done: make(chan struct{}), at: now}
	if id == "" {
		return m, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.seen[id]; old != nil {
		return old, false
	}
	if h.seen == nil {
		h.seen = map[string]*handoffMerge{}
	}
	for k, e := range h.seen {
		if now.Sub(e.at) > keep {
			delete(h.seen, k)
		}
	}
	h.seen[id] = m
	return m, true
}
