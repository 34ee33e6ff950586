package hashring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// drainTimeout bounds how long the queues of a ring that was replaced keep sending what they
// held when it changed.
const drainTimeout = 2 * time.Minute

// Forwarder is this member's side of forwarding (docs/design.md §5): the ring in force, a
// remote-write queue to every other member of it, and the rings of senders it has seen. Its
// methods are safe for concurrent use.
type Forwarder struct {
	self    string
	cfg     ForwardConfig
	reg     prometheus.Registerer
	logger  *slog.Logger
	auth    http.Header
	tls     *downstream.ClientTLS // nil: plain HTTP
	scheme  string
	metrics *forwardMetrics

	cur   atomic.Pointer[peerSet]
	addrs atomic.Pointer[map[string]string] // member name -> its current host:port

	handoffTimeout time.Duration
	now            func() time.Time // the clock of ring changes and handoff waits (Awaits)
	drainTimeout   time.Duration    // drainTimeout; a test's may be shorter
	chunks         chunkPool
	received       handoffIDs      // handoffs merged lately, so that a retried one merges once
	peers          peerLabels      // the peer label of what is counted by the sender's name
	sending        pendingHandoffs // handoffs taken out and not yet delivered

	mu       sync.Mutex
	onChange func()
	// holdsForOthers reports state of others' outputs not yet taken out (HoldsForOthers).
	holdsForOthers func() bool
	// onDisagree brings the ring up to date when a handoff comes by another one.
	onDisagree func(ctx context.Context, leaving string)
	// syncing are the ring syncs under way, by the sender's ring version (syncRing).
	syncing map[string]chan struct{}
	// undelivered takes what a replaced ring's queues still hold after the drain timeout.
	undelivered func([]prompb.TimeSeries)
	// handoffTaken makes a handoff taken out of the aggregator durable before its first
	// delivery attempt; handoffEnded learns that its owner answered one for good.
	handoffTaken func(PendingHandoff) (durable func() error)
	handoffEnded func(id string)
	// legacy rewrites a refused handoff for an older owner (OnHandoffRefused).
	legacy func(body []byte) ([]byte, bool)
	// merge merges a handoff here (HandoffHandler's): the part of one of this member's
	// own that a ring change gave back to it.
	merge    func(id string, body []byte) error
	draining map[*peerSet]bool
	// held are the bytes all the queues to each member hold, by name: a replaced ring's
	// draining queues and the ring in force's share one limit, so that ring changes in
	// quick succession do not each add a full queue per member. One per name ever seen.
	held    map[string]*atomic.Int64
	senders map[string]*Ring // rings senders routed by, by version; a few at a time
	closed  bool
	started bool // SetMembers has given the first member set
	leaving bool // Leave was called: this member is not in its own ring any more
	// stopping: StopHandingOff was called; the process is shutting down.
	stopping bool
	// serving: Started was called; each ring from then on asks its peers whether they
	// have handed over (settle.go).
	serving bool
	// outside: this member stays out of its own ring, its peers routing by rings without
	// it; admitted: a peer has said it routes by a ring with it (or it has none), and it
	// never stays out again (SetMembersFrom).
	outside, admitted bool
}

// peerSet is the queues of one ring: one per member, nil for this one.
type peerSet struct {
	view View
	// changes are the ring changes less than the handoff timeout old, the one that made
	// this ring first: what a handoff may still come for (Forwarder.Awaits).
	changes []ringChange
	queues  []*peerQueue         // by member index; nil for this one
	sent    []prometheus.Counter // samples forwarded, per member
	// inUse counts the outboxes taken from this set and not yet sent: a replaced set's
	// queues close only once it is 0, so that a request routed by the old ring while the
	// ring changed still has its series sent.
	inUse atomic.Int64
	// handedOver: this member has taken out what this ring gives others (settle.go).
	// settled: every peer has said it handed over this ring; nothing more is to come from
	// a member of it (Awaits).
	handedOver, settled atomic.Bool
	since               time.Time // when it came, on the real clock (settle)
	// settledAfter is how long after since it settled (ns); waiting are the peers that had
	// not handed over at the last round, with why (HandoffWait).
	settledAfter atomic.Int64
	waiting      atomic.Pointer[[]string]
	// last is the last round of the handed-over question (settle.go); nil before the
	// first.
	last atomic.Pointer[round]
}

// ringChange is one change of the ring in force: the ring before it, from this member (nil
// for a start), and when it came.
type ringChange struct {
	prev *View
	at   time.Time
	// joined are the members of the ring this change made that were not in prev's, this
	// one aside. A shard this member gained in the change may have been given to one of them
	// by a peer whose ring had it but not this member (this member's admission, or a peer
	// that added it first), so its state may be there (Awaits).
	joined []joinedMember
}

// joinedMember is a member that joined in a ring change, with its rendezvous seed.
type joinedMember struct {
	name string
	seed uint64
}

// maxRingChanges bounds the changes a peerSet remembers (each keeps a ring's owner table).
const maxRingChanges = 8

// NewForwarder returns the forwarder of the member named self, alone in its ring until
// SetMembers says otherwise, registering its metrics with reg.
func NewForwarder(self string, cfg ForwardConfig, handoffTimeout time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*Forwarder, error) {
	if err := ValidateName(self); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		self: self, cfg: cfg, reg: reg, logger: logger, scheme: "http", handoffTimeout: handoffTimeout,
		metrics: newForwardMetrics(reg), draining: map[*peerSet]bool{}, held: map[string]*atomic.Int64{}, senders: map[string]*Ring{}, now: time.Now,
		drainTimeout: drainTimeout,
	}
	f.metrics.queueMaxBytes.Set(float64(cfg.Queue.MaxBytes))
	auth, err := authHeader(cfg)
	if err != nil {
		return nil, err
	}
	f.auth = auth
	if cfg.TLS != nil {
		report := func(err error) { logger.Warn("cluster.forward.tls: a file could not be used", "err", err) }
		if f.tls, err = cfg.clientTLS(report); err != nil {
			return nil, err
		}
		f.scheme = "https"
	}
	f.addrs.Store(&map[string]string{})
	f.install(New([]Member{{Name: self}}), nil)
	return f, nil
}

// ValidateName checks a member name: it goes in a header list and an URL's host, so it is a
// DNS name as Kubernetes node names are (letters, digits, '-', '.' and '_').
func ValidateName(name string) error {
	if name == "" {
		return errors.New("the cluster member name is empty: set cluster.name, --cluster.name or $NODE_NAME")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("cluster member name %q: only letters, digits, '-', '.' and '_' are allowed", name)
		}
	}
	return nil
}

// SetMembers takes the members membership agreed on (this one included or not: it is
// added). New addresses apply at once, to the next connection; a new set of names is a new
// ring: series are routed by it from now on, and the queues of the old one send what they
// hold, then stop.
func (f *Forwarder) SetMembers(members []Member) { f.SetMembersFrom(members, nil) }

// SetMembersFrom is SetMembers given also what membership knows of the peers
// (Membership.PeerStates). A member that is not in its peers' rings yet (they add it after
// join_after) stays out of its own until they do (Admitted): its ring is members without
// itself, so that it owns nothing and forwards every series to the member that writes its
// output meanwhile, instead of holding its own agents' part of the outputs it will own
// (which the others write without it until then). Once a peer has added it, it is a
// member: it gains its shards as in any ring change, and their handoffs bring it the state;
// it never stays out again. While no peer answers, a member not yet outside routes by its
// own ring (a whole cluster restarting on its last ring) and one outside stays out; both
// ask again at each round (Admitted).
func (f *Forwarder) SetMembersFrom(members []Member, peers []PeerState) {
	addrs := make(map[string]string, len(members))
	for _, m := range members {
		addrs[m.Name] = m.Addr
	}
	f.addrs.Store(&addrs)
	f.mu.Lock()
	defer f.mu.Unlock()
	adm := AdmissionAdded
	if !f.admitted && !f.leaving {
		adm = Admitted(f.self, members, peers)
	}
	// No answer changes nothing: an outside member stays out until a peer adds it.
	outside := adm == AdmissionOutside || (adm == AdmissionUnknown && f.outside)
	switch {
	case outside && !f.outside:
		f.logger.Info("cluster: the peers route by a ring without this member; it forwards every series until they add it (join_after)")
	case !outside && f.outside:
		f.logger.Info("cluster: the peers added this member; it owns its shards from now on")
	}
	f.outside, f.admitted = outside, f.admitted || adm == AdmissionAdded
	ms := append([]Member{{Name: f.self}}, members...)
	if f.leaving || outside {
		ms = slices.DeleteFunc(slices.Clone(members), func(m Member) bool { return m.Name == f.self })
	}
	r := New(ms)
	first := !f.started
	f.started = true
	if f.closed || r.Version() == f.cur.Load().view.ring.Version() {
		return
	}
	old := f.cur.Load()
	var prev *View
	if !first {
		prev = &old.view
	}
	f.install(r, prev)
	f.metrics.ringChanges.Inc()
	f.logger.Info("cluster ring changed", "version", r.VersionString(), "members", r.Len(),
		"shards_owned", r.ShardsOwned(f.self), "shards_moved", len(Moved(old.view.ring, r)))
	f.draining[old] = true
	go f.drain(old)
	if prev != nil {
		go f.handOverRing(f.cur.Load())
	}
}

// install makes r the ring in force, with a queue to each other member. Called with mu held
// (or before the forwarder is shared).
func (f *Forwarder) install(r *Ring, prev *View) {
	now := f.now()
	change := ringChange{prev: prev, at: now}
	if prev != nil {
		for _, m := range r.members {
			if m.Name != f.self && prev.ring.Index(m.Name) < 0 {
				change.joined = append(change.joined, joinedMember{name: m.Name, seed: seed(m.Name)})
			}
		}
	}
	ps := &peerSet{view: NewView(r, f.self), since: time.Now(), changes: []ringChange{change}, queues: make([]*peerQueue, r.Len()), sent: make([]prometheus.Counter, r.Len())}
	if old := f.cur.Load(); old != nil && prev != nil {
		for _, c := range old.changes {
			if len(ps.changes) == maxRingChanges || now.Sub(c.at) > f.handoffTimeout {
				break
			}
			ps.changes = append(ps.changes, c)
		}
	}
	header := forwardHeader(f.self, r)
	for k, v := range f.auth {
		header[k] = v
	}
	for i, m := range r.members {
		if i == ps.view.self {
			continue
		}
		url := f.scheme + "://" + m.Name + remotewrite.WritePath
		client := &http.Client{Transport: f.transport()}
		held := f.held[m.Name]
		if held == nil {
			held = new(atomic.Int64)
			f.held[m.Name] = held
		}
		ps.queues[i] = newPeerQueue(m.Name, url, header, client, time.Duration(f.cfg.Timeout), int64(f.cfg.Queue.MaxBytes), held, f.backoff(), f.metrics, &f.chunks, f.logger)
		ps.sent[i] = f.metrics.forwardedSamples.WithLabelValues(m.Name)
		f.metrics.touchPeer(m.Name)
	}
	f.cur.Store(ps)
	f.metrics.setRing(r, f.self)
	switch {
	case r.Len() <= 1:
		ps.settled.Store(true) // alone: no peer has anything for it
	case f.serving:
		go f.settle(ps)
	}
}

// Leave takes this member out of its own ring, with members the others: from now on it
// owns nothing, forwards every series to its owner, and (through OnRingChange) hands the
// state of all its outputs over. It is for a member removed from the cluster.
func (f *Forwarder) Leave(members []Member) {
	f.mu.Lock()
	f.leaving = true
	f.mu.Unlock()
	f.SetMembers(members)
}

// Outside reports whether this member stays out of its own ring until its peers add it
// (SetMembersFrom).
func (f *Forwarder) Outside() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outside
}

// Admitted reports whether a peer has said it routes by a ring with this member
// (SetMembersFrom). Until then the peers' rings decide whether this member stays out of its
// own, and they change without its members changing: the caller sets the members again at
// each round meanwhile.
func (f *Forwarder) Admitted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.admitted
}

// Leaving reports whether Leave was called.
func (f *Forwarder) Leaving() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaving
}

// transport dials a member by its name at the address membership last gave it.
func (f *Forwarder) transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // peers are dialled at their discovered addresses, never through a proxy
	var d net.Dialer
	addrOf := func(addr string) (string, error) {
		name, _, err := net.SplitHostPort(addr)
		if err != nil {
			return "", err
		}
		target, ok := (*f.addrs.Load())[name]
		if !ok || target == "" {
			return "", fmt.Errorf("no address known for cluster member %q", name)
		}
		return target, nil
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		target, err := addrOf(addr)
		if err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, target)
	}
	if f.tls != nil {
		// The URL names the member; without tls.server_name the certificate is checked
		// against the host of its address (downstream.TLSConfig's ServerName).
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			target, err := addrOf(addr)
			if err != nil {
				return nil, err
			}
			return f.tls.DialTLS(&d)(ctx, network, target)
		}
	}
	return t
}

// drain lets the queues of a replaced ring send what they hold, for up to the drain
// timeout; what is left then (an owner that died, or will not answer) is routed again by
// the ring in force (OnUndelivered), or dropped and counted without that.
func (f *Forwarder) drain(ps *peerSet) {
	ctx, cancel := context.WithTimeout(context.Background(), f.drainTimeout)
	defer cancel()
	for ps.inUse.Load() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // a request's aggregation: milliseconds
	}
	f.mu.Lock()
	undelivered := f.undelivered
	f.mu.Unlock()
	var reroute func([]byte) error
	if undelivered != nil {
		reroute = func(raw []byte) error {
			var req prompb.WriteRequest
			if err := req.Unmarshal(raw); err != nil {
				return fmt.Errorf("the queue does not decode: %w", err)
			}
			undelivered(req.Timeseries)
			return nil
		}
	}
	if err := ps.shutdown(ctx, reroute); err != nil {
		f.logger.Error("queues of a replaced ring did not drain", "err", err)
	}
	f.mu.Lock()
	delete(f.draining, ps)
	f.mu.Unlock()
}

// Ring returns the ring in force.
func (f *Forwarder) Ring() *Ring { return f.cur.Load().view.ring }

// Outbox returns an outbox routing by the ring in force.
func (f *Forwarder) Outbox() *Outbox {
	for {
		ps := f.cur.Load()
		ps.inUse.Add(1)
		if f.cur.Load() == ps {
			return &Outbox{View: ps.view, peers: ps, pool: &f.chunks}
		}
		// Replaced meanwhile: its drain may have found it unused already.
		ps.inUse.Add(-1)
	}
}

// Full reports a peer whose queue is full: the receiver then answers 503.
func (f *Forwarder) Full() (peer string, full bool) {
	ps := f.cur.Load()
	for i, q := range ps.queues {
		if q != nil && q.full() {
			return ps.view.ring.members[i].Name, true
		}
	}
	return "", false
}

// QueueFill is what the queues to one member hold against their bound.
type QueueFill struct {
	// Bytes are held by every queue to the member (a replaced ring's, draining, included):
	// encoded series, and a backlog packed as it will be sent.
	Bytes int64
	// Limit is forward.queue.max_bytes: at it the receiver answers 503.
	Limit int64
}

// Full reports that the queues hold their limit or more (never without a limit: this member's
// own entry, or none).
func (q QueueFill) Full() bool { return q.Limit > 0 && q.Bytes >= q.Limit }

// QueueFills returns what the queues to each other member of the ring in force hold, by
// name.
func (f *Forwarder) QueueFills() map[string]QueueFill {
	ps := f.cur.Load()
	fills := map[string]QueueFill{}
	for i, q := range ps.queues {
		if q != nil {
			fills[ps.view.ring.members[i].Name] = QueueFill{Bytes: q.held.Load(), Limit: q.limit}
		}
	}
	return fills
}

// SenderView returns the view a forwarded request is aggregated by: the sender's ring seen
// from this member, so that it aggregates exactly the outputs the sender routed to it.
// disagree is true when the sender's ring is not the one in force here (counted).
func (f *Forwarder) SenderView(fi ForwardInfo) (v View, disagree bool) {
	cur := f.cur.Load().view
	f.metrics.received.WithLabelValues(f.peers.label(fi.From)).Inc()
	if fi.Version == cur.ring.VersionString() {
		return cur, false
	}
	f.metrics.disagreements.Inc()
	f.mu.Lock()
	r := f.senders[fi.Version]
	f.mu.Unlock()
	if r == nil {
		// Built without the lock: a large ring takes a while (Receiver has checked its size
		// and version), and two requests building the same one are harmless.
		ms := make([]Member, len(fi.Members))
		for i, n := range fi.Members {
			ms[i] = Member{Name: n}
		}
		r = New(ms)
		f.mu.Lock()
		if len(f.senders) >= 8 {
			clear(f.senders)
		}
		f.senders[fi.Version] = r
		f.mu.Unlock()
	}
	return NewView(r, f.self), true
}

// Pending returns what every peer queue holds, for a checkpoint, as snappy-compressed runs of
// encoded series (Remote Write 1.0 bodies, each of up to maxForwardBatch bytes decoded, or one
// larger chunk): after a restart it is routed again, by the ring then in force. Nothing is
// decoded, and a queue's packed backlog is shared, not copied. A queue whose framing is broken
// is an error, which fails the checkpoint: the log keeps what the queue holds until a
// checkpoint can.
//
// The queues of replaced rings are read first: a drain gives what it holds to the ring in
// force before it empties, so a series it moves is in the first snapshot or in the later one
// of the queue it moved to (both, at worst), never in neither.
func (f *Forwarder) Pending() ([][]byte, error) {
	f.mu.Lock()
	var sets []*peerSet
	for ps := range f.draining {
		sets = append(sets, ps)
	}
	sets = append(sets, f.cur.Load())
	f.mu.Unlock()
	var out [][]byte
	for _, ps := range sets {
		for _, q := range ps.queues {
			if q == nil {
				continue
			}
			bodies, err := q.pending()
			if err != nil {
				return nil, err
			}
			out = append(out, bodies...)
		}
	}
	return out, nil
}

// StopHandingOff tells the forwarder that the process is shutting down, before its last
// checkpoint: from then on a handoff of a member that has left (Leave) that its owner does
// not take within the handoff timeout stays pending instead of being given up, so that the
// checkpoint holds it for the next process. (A member that left owns nothing, so it is the
// only copy of that state. A running member gives it up: the next ring change may have sent
// its outputs elsewhere, and its owner remembers merged ids for an hour only.)
func (f *Forwarder) StopHandingOff() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopping = true
}

// keepsUndelivered reports whether a handoff past the handoff timeout stays pending
// (StopHandingOff).
func (f *Forwarder) keepsUndelivered() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaving && f.stopping
}

// Shutdown sends what the peer queues hold until ctx is done, then drops and counts the rest.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	sets := []*peerSet{f.cur.Load()}
	for ps := range f.draining {
		sets = append(sets, ps)
	}
	f.mu.Unlock()
	var errs []error
	for _, ps := range sets {
		errs = append(errs, ps.shutdown(ctx, nil))
	}
	return errors.Join(errs...)
}

// send queues a chunk of encoded series for the member at index i.
func (ps *peerSet) send(i int, chunk []byte, samples int, rules uint64) {
	ps.queues[i].push(chunk, samples, rules)
	ps.sent[i].Add(float64(samples))
}

// shutdown shuts every queue down (peerQueue.shutdown), what is left going to reroute.
func (ps *peerSet) shutdown(ctx context.Context, reroute func([]byte) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ps.queues))
	for i, q := range ps.queues {
		if q == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = q.shutdown(ctx, reroute)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Prober returns the prober membership asks peers' identities with: the scheme, TLS
// settings and credentials of forwarding, naming this member (Identity.InRing).
func (f *Forwarder) Prober() HTTPProber {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // as forwarding's transport
	if f.tls != nil {
		t.DialTLSContext = f.tls.DialTLS(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	}
	return HTTPProber{Client: &http.Client{Transport: t}, Scheme: f.scheme, Header: f.auth.Clone(), Member: f.self}
}

// backoff is the retry schedule of handoffs: forwarding's.
func (f *Forwarder) backoff() downstream.Backoff {
	return downstream.Backoff{Min: time.Duration(f.cfg.Queue.MinBackoff), Max: time.Duration(f.cfg.Queue.MaxBackoff)}
}
