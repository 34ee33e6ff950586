package hashring

// OutsideTheirRing reports whether the peers of the member called self route by the ring of
// members without it: each of the other members that answered ready in the latest round
// (peers, from Membership.PeerStates) says it routes by that ring, and at least one
// answered. So it is when a member starts into a running cluster, or restarts after the
// others dropped it: they add it only after join_after. Until then it should stay out of
// its own ring (Forwarder.SetMembersFrom), since what its agents send for the outputs it
// would own is written by the others meanwhile.
func OutsideTheirRing(self string, members []Member, peers []PeerState) bool {
	others := make([]Member, 0, len(members))
	for _, m := range members {
		if m.Name != self {
			others = append(others, m)
		}
	}
	if len(others) == 0 {
		return false
	}
	without := New(others).VersionString()
	byName := make(map[string]PeerState, len(peers))
	for _, p := range peers {
		byName[p.Name] = p
	}
	answered := 0
	for _, m := range others {
		p, ok := byName[m.Name]
		if !ok || !p.Member || !p.MissingSince.IsZero() || p.RingVersion == "" {
			continue // not seen in the latest round: it says nothing
		}
		if p.RingVersion != without {
			return false
		}
		answered++
	}
	return answered > 0
}
