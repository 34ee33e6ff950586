package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/hashring"
)

// clusterNode is this cardinal's membership of a cluster: who the members are, and the
// forwarding of what they own to them (docs/design.md §5).
type clusterNode struct {
	name       string
	forwarder  *hashring.Forwarder
	membership *hashring.Membership
	logger     *slog.Logger
	refresh    time.Duration
	// probeTimeout bounds a peer's probe of this member; leaveOnShutdown is
	// cluster.leave_on_shutdown.
	probeTimeout    time.Duration
	leaveOnShutdown bool
	// lastRing keeps the ring in force beside the write-ahead log; nil without one.
	lastRing *hashring.LastRing
	// setMu makes SetMembers and Leave one at a time: the membership loop and a handoff's
	// ring sync both read the members and set them.
	setMu sync.Mutex
}

// memberName is the name this cardinal goes by in its cluster: --cluster.name, else
// cluster.name, else $NODE_NAME (the Downward API's spec.nodeName in deploy/), else the host
// name. It must not change across restarts: the ring is built from names.
func memberName(flag string, cfg *hashring.Config) (string, error) {
	for _, n := range []string{flag, cfg.Name, os.Getenv("NODE_NAME")} {
		if n != "" {
			return n, hashring.ValidateName(n)
		}
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster member name: set --cluster.name or $NODE_NAME (no host name: %w)", err)
	}
	return h, hashring.ValidateName(h)
}

// startCluster builds the node and runs its first membership round, so that the ring is
// known before the write-ahead log is replayed and requests arrive: a whole cluster started
// together agrees at once (peers that answer ready in the first round join without waiting).
// With a WAL (walDir), the round starts from the ring the previous process saved there, so
// that what the log replays is routed as it was before, even when no peer answers yet.
func (s *server) startCluster(ctx context.Context, cfg *hashring.Config, walDir string) error {
	name, err := memberName(s.flags.clusterName, cfg)
	if err != nil {
		return err
	}
	fwd, err := hashring.NewForwarder(name, cfg.Forward, time.Duration(cfg.HandoffTimeout), s.reg, s.logger)
	if err != nil {
		return err
	}
	discoverers, err := hashring.NewDiscoverers(*cfg, net.DefaultResolver)
	if err != nil {
		return err
	}
	m, err := hashring.NewMembership(hashring.Member{Name: name}, *cfg, discoverers, fwd.Prober(), time.Now, s.logger)
	if err != nil {
		return err
	}
	c := &clusterNode{name: name, forwarder: fwd, membership: m, logger: s.logger, refresh: time.Duration(cfg.RefreshInterval),
		probeTimeout: time.Duration(cfg.ProbeTimeout), leaveOnShutdown: cfg.LeaveOnShutdown}
	if walDir != "" {
		c.lastRing = hashring.OpenLastRing(walDir, name)
		last, err := c.lastRing.Load()
		if err != nil {
			s.logger.Warn("cluster: not resuming the previous ring; starting from discovery alone", "err", err)
		}
		m.Resume(last)
	}
	first, cancel := context.WithTimeout(ctx, time.Duration(cfg.ProbeTimeout)+time.Second)
	defer cancel()
	if err := m.Refresh(first); err != nil {
		s.logger.Warn("cluster: the first discovery round failed; starting with the ring resumed, or alone, until one succeeds", "err", err)
	}
	s.reg.MustRegister(m.Collector())
	s.cluster = c
	c.setMembers()
	// Outputs this member no longer owns are handed off, at once when the ring changes and
	// at each window close for what arrives late; outputs it gained wait for them.
	s.agg.SetOwnership(fwd)
	fwd.OnRingChange(s.agg.HandOffNow)
	fwd.HoldsForOthers(s.agg.HoldsForOthers)
	fwd.OnRingDisagreement(func(ctx context.Context, leaving string) {
		if leaving != "" {
			m.Leaving(leaving)
		}
		if err := m.RefreshWithin(ctx, time.Duration(cfg.ProbeTimeout)+time.Second); err != nil {
			s.logger.Warn("cluster: a handoff came by another ring, and the membership round it started failed; merging by the ring in force", "err", err)
			return
		}
		c.setMembers()
	})
	s.logger.Info("cluster member", "name", name, "members", fwd.Ring().Len(), "ring", fwd.Ring().VersionString())
	return nil
}

// run keeps the membership current and hands each new member set to the forwarder, until
// ctx ends. A member that discovery stops listing (for leave_after) leaves: it hands all
// its outputs to the others and from then on only forwards.
func (c *clusterNode) run(ctx context.Context, every time.Duration) {
	go c.membership.Run(ctx)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.membership.Changes():
			c.setMembers()
		case <-tick.C:
			c.joinWhenAdded()
			if !c.forwarder.Leaving() && c.membership.Removed() {
				c.logger.Warn("cluster: this member is no longer listed by discovery: handing its outputs over and leaving the ring")
				c.setMu.Lock() // not between another goroutine's read of the members and its SetMembers
				c.forwarder.Leave(c.membership.Members())
				c.setMu.Unlock()
			}
		}
	}
}

// setMembers gives the forwarder the current members and, with a WAL, saves them when they
// changed: a failure is logged, and a restart then resumes an older ring (its members that
// are gone leave after leave_after, as any member does).
func (c *clusterNode) setMembers() {
	c.setMu.Lock()
	defer c.setMu.Unlock()
	members := c.membership.Members()
	c.forwarder.SetMembersFrom(members, c.membership.PeerStates())
	if c.lastRing == nil || c.forwarder.Leaving() {
		return
	}
	if err := c.lastRing.Save(members); err != nil {
		c.logger.Warn("cluster: the ring in force is not saved; a restart resumes an older one", "err", err)
	}
}

// joinWhenAdded sets the members again until a peer has added this member to its ring
// (hashring.Forwarder.Admitted): the peers' rings decide whether it stays out of its own.
func (c *clusterNode) joinWhenAdded() {
	if !c.forwarder.Admitted() {
		c.setMembers()
	}
}

// identity is what this member tells its peers about itself; asker is the member that
// asks (hashring.MemberParam), whom it says whether its ring includes.
func (s *server) identity(asker string) hashring.Identity {
	f := s.cluster.forwarder
	ring := f.Ring()
	id := hashring.Identity{Name: s.cluster.name, Ready: s.ready.Load(), RingVersion: ring.VersionString(), Leaving: f.Leaving(), Outside: f.Outside(), Instance: s.cluster.membership.Instance()}
	if asker != "" {
		in := ring.Index(asker) >= 0
		id.InRing = &in
	}
	return id
}

// clusterRoutes adds the cluster's endpoints and marks forwarded requests; without a
// cluster it returns rw as it is.
func (s *server) clusterRoutes(mux *http.ServeMux, rw http.Handler) http.Handler {
	if s.cluster == nil {
		return rw
	}
	mux.Handle(hashring.IdentityPath, hashring.IdentityHandler(s.identity))
	mux.Handle(hashring.HandoffPath, s.cluster.forwarder.HandoffHandler(s.mergeHandoff))
	mux.Handle(hashring.HandedOverPath, s.cluster.forwarder.HandedOverHandler())
	return s.cluster.forwarder.Receiver(rw)
}

// handOff sends what a flush took out of the aggregator to the members that own it.
func (s *server) handOff(h *aggregator.Handoff) {
	if s.cluster != nil {
		s.cluster.forwarder.SendHandoff(h)
	}
}

// mergeHandoff adds a handoff from a peer to the aggregator's state and, with a WAL, returns
// once the log holds it (router.MergeHandoff): the peer drops the state when this returns.
// One merged before (the peer's answer was lost, maybe across a restart of this member) is
// acknowledged without merging it again.
func (s *server) mergeHandoff(id string, body []byte) error {
	st, already, err := s.router.MergeHandoff(id, body)
	if err != nil {
		return err
	}
	if already {
		s.logger.Info("cluster: handoff already merged; acknowledged again", "id", id)
		return nil
	}
	s.logger.Info("cluster: handoff merged", "id", id, "outputs", st.Outputs, "inputs", st.Inputs, "bridged", st.Bridged, "unknown_rule", st.Unknown, "late", st.Late)
	return nil
}

// leaveForShutdown makes this member leave the ring before it shuts down
// (cluster.leave_on_shutdown), unless it has left already or is alone, within ctx: a
// membership round first (the periodic rounds stopped with the signal, and a peer that has
// begun leaving says so in its identity: nothing goes to it), then every output goes
// to its owner in the ring without this member, and the handoffs are delivered if they can
// be. It goes on serving meanwhile, not ready, as a member that only forwards, and for at
// least one round of its peers' probes (refresh_interval + probe_timeout) from the leave:
// a peer that gained none of its outputs learns from its identity (leaving) that it left,
// and what such a peer forwards to it meanwhile is handed on at the next flush tick.
func (s *server) leaveForShutdown(ctx context.Context) {
	c := s.cluster
	if c.forwarder.Leaving() {
		return
	}
	round := make(chan error, 1)
	go func() { round <- c.membership.RefreshWithin(ctx, c.probeTimeout+time.Second) }()
	select {
	case err := <-round:
		if err != nil {
			s.logger.Warn("cluster: the membership round before leaving failed; leaving the ring of the last one", "err", err)
		}
	case <-ctx.Done(): // it waits for a round under way first, whatever ctx says
		s.logger.Warn("cluster: no membership round before leaving within the shutdown budget; leaving the ring of the last one")
	}
	c.setMu.Lock()
	members := c.membership.Members()
	leave := !c.forwarder.Leaving() && slices.ContainsFunc(members, func(m hashring.Member) bool { return m.Name != c.name })
	if leave {
		c.forwarder.Leave(members)
	}
	c.setMu.Unlock()
	if !leave {
		return
	}
	start := time.Now()
	s.logger.Info("cluster: leaving the ring before shutting down (cluster.leave_on_shutdown): handing every output over", "members", c.forwarder.Ring().Len())
	s.agg.HandOffNow() // now, not in the ring change's goroutine: the wait below must see them
	if err := c.forwarder.WaitHandoffs(ctx); err != nil {
		s.logger.Warn("cluster: leaving: handoffs still pending; shutting down with them (a WAL's checkpoint keeps them for the next process)", "err", err)
		return
	}
	s.logger.Info("cluster: left the ring; no handoff pending", "took", time.Since(start).Round(time.Millisecond))
	select {
	case <-time.After(time.Until(start.Add(c.refresh + c.probeTimeout))):
	case <-ctx.Done():
	}
}

// handOffLast hands on, for a member that has left, what peers forwarded to it since its
// last flush tick, once the server has stopped, and waits until ctx is done for the
// handoffs to be delivered. It runs before the last checkpoint, so that the checkpoint holds
// none that its owner has merged already (a restart long after, past the hour the owner
// remembers merged ids, would deliver it again), unless one is still in flight when ctx
// ends.
func (s *server) handOffLast(ctx context.Context) {
	s.agg.HandOffNow()
	if err := s.cluster.forwarder.WaitHandoffs(ctx); err != nil {
		s.logger.Warn("cluster: left the ring; handoffs still pending at shutdown", "err", err)
	}
}

// shutdownForwarding sends what waits for peers until ctx is done, as the downstreams do.
// (Cutting it short with a WAL, since the checkpoint holds it, delayed those samples past
// their owner's window close: the cluster test saw a window short.)
func (s *server) shutdownForwarding(ctx context.Context) error {
	return s.cluster.forwarder.Shutdown(ctx)
}
