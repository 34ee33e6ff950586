package hashring

import (
	"slices"
	"strings"
	"time"
)

// PeerState is what this member's membership knows of one peer: enough for an operator to
// tell why the ring is what it is (the status page).
type PeerState struct {
	Name, Addr string
	// Member is true for a member of the ring; false for a candidate, seen ready since
	// ReadySince, which joins at JoinAt if it stays ready.
	Member             bool
	ReadySince, JoinAt time.Time
	// MissingSince is when a member was first not seen ready, in the run of rounds up to
	// the latest (zero when it was seen in the latest); it leaves at LeaveAt.
	MissingSince, LeaveAt time.Time
	// RingVersion is the ring the peer said it routes by in its latest answer ("" if it
	// has not answered); InRing whether that ring includes this member (nil: it did not
	// say, an older cardinal); Outside whether it stays out of its own ring (Identity).
	RingVersion string
	InRing      *bool
	Outside     bool
}

// PeerStates returns the peers this member knows, members and candidates, by name.
func (m *Membership) PeerStates() []PeerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PeerState, 0, len(m.peers))
	for name, st := range m.peers {
		ps := PeerState{Name: name, Addr: st.addr, Member: st.member, ReadySince: st.readySince,
			MissingSince: st.missingSince, RingVersion: st.ringVersion, InRing: st.inRing, Outside: st.outside}
		if !st.member {
			ps.JoinAt = st.readySince.Add(time.Duration(m.cfg.JoinAfter))
		}
		if st.member && !st.missingSince.IsZero() {
			ps.LeaveAt = st.missingSince.Add(time.Duration(m.cfg.LeaveAfter))
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// noteRings records what each peer that answered says of the ring it routes by.
func (m *Membership) noteRings(answers []answer) {
	for _, a := range answers {
		if a.err != nil || a.id.Name == "" {
			continue
		}
		if st := m.peers[a.id.Name]; st != nil {
			st.ringVersion, st.inRing, st.outside = a.id.RingVersion, a.id.InRing, a.id.Outside
		}
	}
}
