package hashring

import (
	"slices"
	"strings"
	"time"
)

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
	// ringVersion is the ring the peer said it routes by when it last answered; inRing and
	// outside what it said then of this member and of itself (Identity).
	ringVersion string
	inRing      *bool
	outside     bool
	// addrs are the addresses it answered ready at in the latest round it was seen, so that
	// several (a dual-stack Service lists two) are logged when they change, not each round.
	addrs string
}

// apply turns one successful round's answers into joins, leaves and new addresses, and
// returns the members (self included, sorted by name) with what changed.
func (m *Membership) apply(now time.Time, answers []answer) (members []Member, namesChanged, addrsChanged bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Rounds++
	m.stats.LastSuccess = now
	if m.started.IsZero() {
		m.started = now
	}
	seen, leaving := m.readyAddrs(answers)
	answeredAt := map[string]string{} // address -> the name it answered with
	outside := map[string]bool{}      // names that said they wait outside their own ring
	for _, a := range answers {
		if a.err == nil && a.id.Name != "" {
			answeredAt[a.peer.addr] = a.id.Name
			outside[a.id.Name] = outside[a.id.Name] || a.id.Outside
		}
	}
	m.noteShared(answeredAt)
	for name := range m.leavers {
		if _, ok := seen[name]; !ok {
			leaving[name] = true
		}
	}
	clear(m.leavers)
	m.noteSelf(now, answers)
	joinAfter, leaveAfter := time.Duration(m.cfg.JoinAfter), time.Duration(m.cfg.LeaveAfter)
	starting := now.Sub(m.started) < joinAfter

	for name, addrs := range seen {
		st := m.peers[name]
		if st == nil {
			st = &peerState{}
			m.peers[name] = st
		}
		if own := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return m.shared[a] }); len(own) > 0 {
			addrs = own
		}
		addr := addrs[0]
		if slices.Contains(addrs, st.addr) {
			addr = st.addr
		}
		if joined := strings.Join(addrs, ","); joined != st.addrs {
			if len(addrs) > 1 {
				m.logger.Warn("cluster peer answers at several addresses", "name", name, "addrs", addrs, "using", addr)
			}
			st.addrs = joined
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
			// At start-up a peer joins at once, so that a member restarting (or a whole
			// cluster starting together) takes the ring its peers route by; but not a
			// candidate that its peers have not added yet (it says it waits outside its own
			// ring): a restart must not admit one that the running members, seeing it
			// ready for less than join_after at a time, never do.
			if (starting && !outside[name]) || now.Sub(st.readySince) >= joinAfter {
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
		if leaving[name] {
			delete(m.peers, name)
			if st.member {
				m.stats.Leaves++
				namesChanged = true
				m.logger.Info("cluster member left (it said it is leaving)", "name", name, "addr", st.addr)
			}
			continue
		}
		if !st.member {
			delete(m.peers, name) // a candidate's run of ready rounds is broken
			continue
		}
		if st.missingSince.IsZero() {
			st.missingSince = now
		}
		if other, ok := answeredAt[st.addr]; ok && st.addr != "" && other != name {
			// Its address answers another member's name now (an address reused while
			// it is away): sent there, its series would be taken, and dropped, by that
			// member. Without an address its queue holds them until it is back or leaves.
			m.logger.Warn("cluster member's address answers another name; forgetting the address", "name", name, "addr", st.addr, "answered", other)
			st.addr = ""
			addrsChanged = true
		}
		if now.Sub(st.missingSince) >= leaveAfter {
			delete(m.peers, name)
			m.stats.Leaves++
			namesChanged = true
			m.logger.Info("cluster member left", "name", name, "addr", st.addr, "unseen_since", st.missingSince)
		}
	}

	m.noteRings(answers)
	members = []Member{m.self}
	for name, st := range m.peers {
		if st.member {
			members = append(members, Member{Name: name, Addr: st.addr})
		}
	}
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	m.stats.Members = len(members)
	m.stats.Candidates = len(m.peers) + 1 - len(members)
	return members, namesChanged, addrsChanged
}

// maxSharedAddrs bounds the addresses remembered as shared.
const maxSharedAddrs = 4096

// noteShared marks the addresses that answered with another name than in the round before:
// an address in front of several members (a Service's), which must not be a member's
// address while one of its own answers too.
func (m *Membership) noteShared(answeredAt map[string]string) {
	for addr, name := range answeredAt {
		if before, ok := m.answered[addr]; ok && before != name {
			if m.shared == nil || len(m.shared) >= maxSharedAddrs {
				m.shared = map[string]bool{}
			}
			m.shared[addr] = true
		}
	}
	m.answered = answeredAt
}

// readyAddrs returns, by member name, the addresses (in increasing order) that answered
// ready with that name, leaving out self's name and named peers that answered another name,
// and counts the probes.
func (m *Membership) readyAddrs(answers []answer) (seen map[string][]string, leaving map[string]bool) {
	seen, leaving = map[string][]string{}, map[string]bool{}
	for _, a := range answers {
		m.stats.Probes++
		switch {
		case a.err != nil || a.id.Name == "":
			m.stats.ProbeFailures++
			m.logger.Debug("cluster probe failed", "addr", a.peer.addr, "err", a.err, "name", a.id.Name)
		case a.id.Name == m.self.Name:
			// Only a process that serves as a member collides: this member's previous
			// process, still listed while it shuts down, answers leaving or not ready.
			if m.instance != "" && a.id.Instance != "" && a.id.Instance != m.instance && a.id.Ready && !a.id.Leaving {
				m.stats.NameCollisions++
				m.logger.Error("cluster: another process answers with this member's name; both run as if alone and write the same outputs: give every member its own cluster.name", "addr", a.peer.addr, "name", a.id.Name)
			}
		case a.peer.name != "" && a.id.Name != a.peer.name:
			m.stats.NameMismatches++
			m.logger.Warn("cluster peer answers with another name than it is listed under; ignored", "addr", a.peer.addr, "listed", a.peer.name, "answered", a.id.Name)
		case a.id.Leaving:
			leaving[a.id.Name] = true
		case !a.id.Ready:
			m.stats.NotReady++
		default:
			seen[a.id.Name] = append(seen[a.id.Name], a.peer.addr)
		}
	}
	return seen, leaving
}

// maxSelfAddrs bounds the addresses remembered as this member's own.
const maxSelfAddrs = 16

// noteSelf records, in a successful round, whether discovery lists this member: an address
// answered with its name, an entry names it, or an address that answered with its name
// before is listed though its probe failed now (an overloaded member answering its own
// probe late is still listed). Once it has been listed, then unlisted in every successful
// round for leave_after, it has been removed from the cluster (a peers file edited, a node
// taken out) and Removed says so: like a peer's leave, only successful rounds decide it,
// so a DNS outage or an unreadable file never does.
func (m *Membership) noteSelf(now time.Time, answers []answer) {
	listed := false
	for _, a := range answers {
		switch {
		case a.err == nil && a.id.Name == m.self.Name && (m.instance == "" || a.id.Instance == "" || a.id.Instance == m.instance):
			if m.selfAddrs == nil || len(m.selfAddrs) >= maxSelfAddrs {
				m.selfAddrs = map[string]bool{}
			}
			m.selfAddrs[a.peer.addr] = true
			listed = true
		case a.err == nil && a.id.Name != "":
			delete(m.selfAddrs, a.peer.addr) // another member answers there now
		case a.peer.name == m.self.Name || m.selfAddrs[a.peer.addr]:
			listed = true
		}
	}
	if listed {
		m.selfListed, m.selfMissingSince, m.removed = true, time.Time{}, false
		return
	}
	if m.selfListed && m.selfMissingSince.IsZero() {
		m.selfMissingSince = now
	}
	if !m.selfMissingSince.IsZero() && now.Sub(m.selfMissingSince) >= time.Duration(m.cfg.LeaveAfter) {
		m.removed = true
	}
}

// Removed reports whether this member was listed by discovery and has not been, in every
// successful round for leave_after: it should hand its outputs over and leave.
func (m *Membership) Removed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed
}

// Leaving tells the membership that member name said it is leaving (its handoff did): the
// next successful round drops it at once, as when its identity says so, unless it answers
// ready in that round. A member taken out of discovery is probed by nobody, so without this
// the others would count it as an owner for leave_after after it has left its own ring.
func (m *Membership) Leaving(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == m.self.Name || m.peers[name] == nil {
		return
	}
	if m.leavers == nil {
		m.leavers = map[string]bool{}
	}
	m.leavers[name] = true
}

// Instance is this process's Identity.Instance: a random id, drawn by NewMembership, that
// tells another process answering with this member's name (NameCollisions) from this one.
func (m *Membership) Instance() string { return m.instance }
