package hashring

// Admission is what the peers of a member say of its place in the rings they route by
// (Admitted).
type Admission int

const (
	// AdmissionUnknown: no peer that writes outputs answered (none is up yet, as when a
	// whole cluster restarts): the member routes by its own ring meanwhile, and asks again.
	AdmissionUnknown Admission = iota
	// AdmissionOutside: every peer that answered routes by a ring without the member.
	AdmissionOutside
	// AdmissionAdded: a peer routes by a ring with the member, or it has no peers.
	AdmissionAdded
)

// Admitted says whether the peers of the member called self have added it to their rings,
// from what each member of members (self aside) that answered ready in the latest round
// said (peers, from Membership.PeerStates). A member that starts into a running cluster, or
// restarts after the others dropped it, is added only after join_after: until then it
// should stay out of its own ring (Forwarder.SetMembersFrom), since what its agents send for
// the outputs it would own is written by the others meanwhile.
//
// A peer says whether its ring includes this member (Identity.InRing); one that stays out
// of its own ring writes nothing and is not asked. An older cardinal does not say: it counts
// as routing without this member only when its ring is exactly the others'. Whatever else
// the rings hold (a member that died and has not left them yet, another joining at the same
// time) does not matter: only whether this member is in them.
func Admitted(self string, members []Member, peers []PeerState) Admission {
	others := make([]Member, 0, len(members))
	for _, m := range members {
		if m.Name != self {
			others = append(others, m)
		}
	}
	if len(others) == 0 {
		return AdmissionAdded
	}
	byName := make(map[string]PeerState, len(peers))
	for _, p := range peers {
		byName[p.Name] = p
	}
	without, answered := "", 0
	for _, m := range others {
		p, ok := byName[m.Name]
		if !ok || !p.Member || !p.MissingSince.IsZero() || p.RingVersion == "" || p.Outside {
			continue // not seen in the latest round, or writing nothing: it says nothing
		}
		switch {
		case p.InRing != nil && *p.InRing:
			return AdmissionAdded
		case p.InRing == nil:
			if without == "" {
				without = New(others).VersionString()
			}
			if p.RingVersion != without {
				return AdmissionAdded
			}
		}
		answered++
	}
	if answered == 0 {
		return AdmissionUnknown
	}
	return AdmissionOutside
}
