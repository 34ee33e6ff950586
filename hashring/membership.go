package hashring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Membership keeps the set of members from discovery and probing, with hysteresis, and the
// Ring built from it. Each round (Refresh) discovers peer addresses from every source,
// probes them all for their Identity, and then applies these rules:
//
//   - This member (self) is always a member; an address that answers with its name (the
//     Service's address, say) is ignored.
//   - A peer joins once it has answered ready in every round for join_after. At start-up
//     the wait is waived for join_after from the first successful round: a peer that answers
//     ready then joins at once, so a cluster whose members start together, or a member
//     restarting into a running cluster, agrees on the ring without waiting out join_after;
//     not a candidate that says it waits outside its own ring (its peers have not added it).
//     So of members started a moment apart, one that finds another's ring first waits
//     outside it for join_after, forwarding everything to the ring's members meanwhile.
//   - A member leaves once it has been unseen (not discovered, its probe failing, or not
//     ready) in every round for leave_after.
//   - A round in which any source fails (a DNS error, an unreadable peers file) changes
//     nothing: it neither interrupts nor extends a peer's run of rounds seen or unseen.
//   - A member that answers at a new address keeps its place: Members shows the new
//     address, the ring's version and owners stay. If it answers at several, the current
//     address is kept, or else the lowest.
//   - A peer listed as name=host:port must answer with that name, or it is ignored.
//
// Members do not exchange their views: each decides from its own rounds, so two members
// can disagree for about join_after after a peer appears and leave_after after one goes.
// Identity.RingVersion and cardinal_cluster_ring_info make a disagreement visible.
//
// Membership is safe for concurrent use.
type Membership struct {
	self        Member
	cfg         Config
	discoverers []Discoverer
	prober      Prober
	now         func() time.Time
	logger      *slog.Logger
	changes     chan struct{}

	// round is held (a value in it) for the whole of a round: one at a time. A channel, so
	// that a round asked for under a deadline (a handoff's) stops waiting when it ends.
	round chan struct{}

	// ring is the ring of the current members, replaced (never changed) after a round
	// that changes them; it is built outside mu, so readers never wait for a build.
	ring atomic.Pointer[Ring]

	mu      sync.Mutex            // guards what follows
	peers   map[string]*peerState // members and candidates by name; never self
	started time.Time             // time of the first successful round; zero before
	// selfListed is true once discovery listed this member; selfMissingSince starts the
	// run of rounds since in which it was not (see Removed).
	selfListed       bool
	selfMissingSince time.Time
	// selfAddrs are the addresses that answered with this member's name: listed, they
	// list it even when its probe fails. removed is Removed's answer, decided in a
	// successful round.
	selfAddrs map[string]bool
	removed   bool
	// leavers are the members that said they are leaving since the last round (Leaving).
	leavers map[string]bool
	// instance is this process's Identity.Instance; set once, by NewMembership.
	instance string
	stats    Stats
	// answered is the name each address answered with in the latest round; shared are the
	// addresses that have answered with two names (a load-balanced Service listed as a
	// peer), never a member's address while another answers for it.
	answered map[string]string
	shared   map[string]bool
	// lastSkipped is what discovery left out in the latest round (noteSkipped); guarded
	// by round.
	lastSkipped string
}

// NewMembership returns the membership of self (whose Name must be set) in the cluster
// described by cfg, with peers found by discoverers and probed by prober. clock is the time
// source (nil: time.Now) and logger receives joins, leaves and failed rounds (nil: none).
// Until the first Refresh, self is the only member.
func NewMembership(self Member, cfg Config, discoverers []Discoverer, prober Prober, clock func() time.Time, logger *slog.Logger) (*Membership, error) {
	switch {
	case self.Name == "":
		return nil, errors.New("cluster: this member has no name; set cluster.name, --cluster.name or $NODE_NAME")
	case len(discoverers) == 0:
		return nil, errors.New("cluster: no discovery configured: set peers, peers_file or dns.name")
	case prober == nil:
		return nil, errors.New("cluster: no prober")
	case cfg.RefreshInterval <= 0 || cfg.JoinAfter < 0 || cfg.LeaveAfter < 0 || cfg.ProbeTimeout < 0:
		return nil, fmt.Errorf("cluster: invalid timing (refresh_interval %s, join_after %s, leave_after %s, probe_timeout %s)",
			cfg.RefreshInterval, cfg.JoinAfter, cfg.LeaveAfter, cfg.ProbeTimeout)
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ring := New([]Member{self})
	var id [8]byte
	_, _ = rand.Read(id[:])
	m := &Membership{
		instance:    hex.EncodeToString(id[:]),
		self:        self,
		cfg:         cfg,
		discoverers: slices.Clone(discoverers),
		prober:      prober,
		now:         clock,
		logger:      logger,
		changes:     make(chan struct{}, 1),
		round:       make(chan struct{}, 1),
		peers:       map[string]*peerState{},
		stats:       Stats{Members: 1, RingVersion: ring.VersionString()},
	}
	m.ring.Store(ring)
	return m, nil
}

// Ring returns the ring of the current members. It takes no lock: a router may call it
// per request.
func (m *Membership) Ring() *Ring { return m.ring.Load() }

// Members returns the current members, self included, sorted by name.
func (m *Membership) Members() []Member { return m.Ring().Members() }

// Changes receives a value after Members changes (a join, a leave or a new address).
// Changes that come before the value is received are merged into it: read Ring or Members
// for the current state.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// Run refreshes at once and then every refresh_interval until ctx is done. A failed round
// is logged; the next one tries again.
func (m *Membership) Run(ctx context.Context) {
	ticker := time.NewTicker(time.Duration(m.cfg.RefreshInterval))
	defer ticker.Stop()
	for {
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("cluster discovery failed; membership unchanged", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Refresh runs one round: discover, probe, apply the rules of Membership. It returns the
// discovery error of a failed round, or ctx's error if ctx ended during the round; in both
// cases nothing changes. Probe failures are not errors of the round: they are what makes a
// peer unseen.
func (m *Membership) Refresh(ctx context.Context) error {
	if err := m.lockRound(ctx); err != nil {
		return err
	}
	defer m.unlockRound()
	return m.refresh(ctx)
}

// RefreshWithin is Refresh with budget for the round itself, counted from when the round
// begins, after the one under way (if any) has ended: a round a handoff asks for while the
// periodic one waits out a hung peer's probe gets its whole budget, rather than what the
// wait left of it (and a round cut short changes nothing). The wait itself ends with ctx.
func (m *Membership) RefreshWithin(ctx context.Context, budget time.Duration) error {
	if err := m.lockRound(ctx); err != nil {
		return err
	}
	defer m.unlockRound()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	return m.refresh(ctx)
}

// lockRound waits until no other round runs, or until ctx ends (its error).
func (m *Membership) lockRound(ctx context.Context) error {
	select {
	case m.round <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlockRound ends the round lockRound began.
func (m *Membership) unlockRound() { <-m.round }

// refresh is one round, with the round lock held. Discovery may take refresh_interval at
// most: a DNS server that drops queries (resolver timeouts times search domains) holds the
// round, and a handoff asking for one, no longer. Each probe is bounded by probe_timeout.
func (m *Membership) refresh(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, time.Duration(m.cfg.RefreshInterval))
	peers, err := m.discover(dctx)
	cancel()
	if err != nil {
		m.failedRound()
		return err
	}
	answers := m.probeAll(ctx, peers)
	if err := ctx.Err(); err != nil {
		m.failedRound()
		return err // the probes were cut short: they say nothing about the peers
	}
	members, namesChanged, addrsChanged := m.apply(m.now(), answers)
	if namesChanged || addrsChanged {
		m.install(members, namesChanged)
	}
	return nil
}

// failedRound counts a round that changed nothing: a source failed, or it was cut short.
func (m *Membership) failedRound() {
	m.mu.Lock()
	m.stats.Rounds++
	m.stats.FailedRounds++
	m.mu.Unlock()
}

// install replaces the ring with one of members (sorted by name) and signals the change:
// a new ring if the names changed, else the current one with new addresses.
func (m *Membership) install(members []Member, namesChanged bool) {
	var ring *Ring
	if namesChanged {
		ring = New(members)
	} else {
		ring = m.ring.Load().withAddrs(members)
	}
	m.ring.Store(ring)
	m.mu.Lock()
	m.stats.RingVersion = ring.VersionString()
	m.mu.Unlock()
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// Stats returns the counters and gauges of the membership, for metrics.
func (m *Membership) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
