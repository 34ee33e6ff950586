package hashring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxConcurrentProbes bounds the probes in flight during one round.
const maxConcurrentProbes = 64

// Membership keeps the set of members from discovery and probing, with hysteresis, and the
// Ring built from it. Each round (Refresh) discovers peer addresses from every source,
// probes them all for their Identity, and then applies these rules:
//
//   - This member (self) is always a member; an address that answers with its name (the
//     Service's address, say) is ignored.
//   - A peer joins once it has answered ready in every round for join_after. At start-up
//     the wait is waived for join_after from the first successful round: a peer that answers
//     ready then joins at once, so a cluster whose members start together, or a member
//     restarting into a running cluster, agrees on the ring without waiting out join_after.
//   - A member leaves once it has been unseen (not discovered, its probe failing, or not
//     ready) in every round for leave_after.
//   - A round in which any source fails (a DNS error, an unreadable peers file) changes
//     nothing: it neither interrupts nor extends a peer's run of rounds seen or unseen.
//   - A member that answers at a new address keeps its place: Members shows the new
//     address, the ring's version and owners stay. If it answers at several, the current
//     address is kept, or else the lowest.
//   - A peer listed as name=host:port must answer with that name, or it is ignored.
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

	round sync.Mutex // held for the whole of Refresh: one round at a time

	mu      sync.Mutex            // guards what follows
	peers   map[string]*peerState // members and candidates by name; never self
	started time.Time             // time of the first successful round; zero before
	ring    *Ring
	stats   Stats
}

// peerState is what Membership remembers of a peer between rounds.
type peerState struct {
	addr   string
	member bool
	// readySince starts the current run of rounds in which the peer answered ready (a
	// candidate that goes unseen is forgotten, so its next run starts afresh).
	readySince time.Time
	// missingSince starts the current run of rounds in which a member went unseen; zero
	// if it was seen in the latest successful round.
	missingSince time.Time
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
	return &Membership{
		self:        self,
		cfg:         cfg,
		discoverers: slices.Clone(discoverers),
		prober:      prober,
		now:         clock,
		logger:      logger,
		changes:     make(chan struct{}, 1),
		peers:       map[string]*peerState{},
		ring:        ring,
		stats:       Stats{Members: 1, RingVersion: ring.VersionString()},
	}, nil
}

// Ring returns the ring of the current members.
func (m *Membership) Ring() *Ring {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring
}

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
	m.round.Lock()
	defer m.round.Unlock()
	peers, err := m.discover(ctx)
	if err != nil {
		m.mu.Lock()
		m.stats.Rounds++
		m.stats.FailedRounds++
		m.mu.Unlock()
		return err
	}
	answers := m.probeAll(ctx, peers)
	if err := ctx.Err(); err != nil {
		return err // the probes were cut short: they say nothing about the peers
	}
	m.apply(m.now(), answers)
	return nil
}

// discover returns the union of what every source finds, by address; an address two
// sources name differently is left out.
func (m *Membership) discover(ctx context.Context) ([]peer, error) {
	byAddr := map[string]string{}
	contradicted := map[string]bool{}
	var errs []error
	for _, d := range m.discoverers {
		entries, err := d.Discover(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			p, err := parsePeer(e)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			name, seen := byAddr[p.addr]
			switch {
			case !seen || name == "":
				byAddr[p.addr] = p.name
			case p.name != "" && p.name != name:
				contradicted[p.addr] = true
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	peers := make([]peer, 0, len(byAddr))
	for addr, name := range byAddr {
		if contradicted[addr] {
			m.logger.Warn("cluster peer listed under two names; ignored", "addr", addr)
			continue
		}
		peers = append(peers, peer{name: name, addr: addr})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].addr < peers[j].addr })
	return peers, nil
}

// answer is the outcome of probing one discovered peer.
type answer struct {
	peer peer
	id   Identity
	err  error
}

// probeAll probes every peer concurrently, each bounded by probe_timeout, and returns the
// answers in the order of peers.
func (m *Membership) probeAll(ctx context.Context, peers []peer) []answer {
	answers := make([]answer, len(peers))
	slots := make(chan struct{}, maxConcurrentProbes)
	var wg sync.WaitGroup
	for i, p := range peers {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if t := time.Duration(m.cfg.ProbeTimeout); t > 0 {
				pctx, cancel = context.WithTimeout(ctx, t)
			}
			defer cancel()
			id, err := m.prober.Probe(pctx, p.addr)
			answers[i] = answer{peer: p, id: id, err: err}
		})
	}
	wg.Wait()
	return answers
}

// apply turns one successful round's answers into joins, leaves and new addresses.
func (m *Membership) apply(now time.Time, answers []answer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Rounds++
	m.stats.LastSuccess = now
	if m.started.IsZero() {
		m.started = now
	}
	seen := m.readyAddrs(answers)
	joinAfter, leaveAfter := time.Duration(m.cfg.JoinAfter), time.Duration(m.cfg.LeaveAfter)
	starting := now.Sub(m.started) < joinAfter
	namesChanged, addrsChanged := false, false

	for name, addrs := range seen {
		st := m.peers[name]
		if st == nil {
			st = &peerState{}
			m.peers[name] = st
		}
		addr := addrs[0]
		if slices.Contains(addrs, st.addr) {
			addr = st.addr
		}
		if len(addrs) > 1 {
			m.logger.Warn("cluster peer answers at several addresses", "name", name, "addrs", addrs, "using", addr)
		}
		st.missingSince = time.Time{}
		if st.readySince.IsZero() {
			st.readySince = now
		}
		switch {
		case st.member && st.addr != addr:
			m.logger.Info("cluster member has a new address", "name", name, "old", st.addr, "new", addr)
			st.addr = addr
			m.stats.AddressChanges++
			addrsChanged = true
		case !st.member:
			st.addr = addr
			if starting || now.Sub(st.readySince) >= joinAfter {
				st.member = true
				m.stats.Joins++
				namesChanged = true
				m.logger.Info("cluster member joined", "name", name, "addr", addr)
			}
		}
	}
	for name, st := range m.peers {
		if _, ok := seen[name]; ok {
			continue
		}
		if !st.member {
			delete(m.peers, name) // a candidate's run of ready rounds is broken
			continue
		}
		if st.missingSince.IsZero() {
			st.missingSince = now
		}
		if now.Sub(st.missingSince) >= leaveAfter {
			delete(m.peers, name)
			m.stats.Leaves++
			namesChanged = true
			m.logger.Info("cluster member left", "name", name, "addr", st.addr, "unseen_since", st.missingSince)
		}
	}

	members := []Member{m.self}
	for name, st := range m.peers {
		if st.member {
			members = append(members, Member{Name: name, Addr: st.addr})
		}
	}
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	switch {
	case namesChanged:
		m.ring = New(members)
	case addrsChanged:
		m.ring = m.ring.withAddrs(members)
	}
	m.stats.Members = len(members)
	m.stats.Candidates = len(m.peers) + 1 - len(members)
	m.stats.RingVersion = m.ring.VersionString()
	if namesChanged || addrsChanged {
		select {
		case m.changes <- struct{}{}:
		default:
		}
	}
}

// readyAddrs returns, by member name, the addresses (in increasing order) that answered
// ready with that name, leaving out self's name and named peers that answered another name,
// and counts the probes.
func (m *Membership) readyAddrs(answers []answer) map[string][]string {
	seen := map[string][]string{}
	for _, a := range answers {
		m.stats.Probes++
		switch {
		case a.err != nil:
			m.stats.ProbeFailures++
			m.logger.Debug("cluster probe failed", "addr", a.peer.addr, "err", a.err)
		case a.id.Name == m.self.Name:
		case a.peer.name != "" && a.id.Name != a.peer.name:
			m.stats.NameMismatches++
			m.logger.Warn("cluster peer answers with another name than it is listed under; ignored", "addr", a.peer.addr, "listed", a.peer.name, "answered", a.id.Name)
		case !a.id.Ready:
			m.stats.NotReady++
		default:
			seen[a.id.Name] = append(seen[a.id.Name], a.peer.addr)
		}
	}
	return seen
}

// Stats returns the counters and gauges of the membership, for metrics.
func (m *Membership) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
