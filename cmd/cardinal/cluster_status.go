package main

import (
	"fmt"
	"time"

	"github.com/cardinal-proxy/cardinal/cmd/cardinal/status"
	"github.com/cardinal-proxy/cardinal/hashring"
)

// ClusterStatus implements status.Cluster: the ring, what membership knows of each peer,
// and the wait for handoffs, as this member sees them now.
func (c *clusterNode) ClusterStatus() status.ClusterStatus {
	return clusterStatus(c.name, c.forwarder.Ring(), c.membership.PeerStates(), c.forwarder.QueueFills(), c.forwarder.HandoffWait(), time.Now())
}

// clusterStatus builds the status page's cluster section from its parts, at now.
func clusterStatus(self string, r *hashring.Ring, peers []hashring.PeerState, queues map[string]hashring.QueueFill, wait hashring.HandoffWait, now time.Time) status.ClusterStatus {
	version := r.VersionString()
	st := status.ClusterStatus{Self: self, Version: version, HandoffWait: handoffWaitState(wait, now)}
	if !wait.Settled && now.Before(wait.Until) {
		st.HandoffWaiting = wait.Waiting
	}
	byName := make(map[string]hashring.PeerState, len(peers))
	for _, p := range peers {
		byName[p.Name] = p
	}
	for _, m := range r.Members() {
		q := queues[m.Name]
		cm := status.ClusterMember{Name: m.Name, Addr: m.Addr, Shards: r.ShardsOwned(m.Name),
			QueueFull: q.Full(), QueueBytes: q.Bytes, QueueLimit: q.Limit}
		if m.Name == self {
			cm.Addr, cm.State = "(this member)", "this member"
		} else {
			cm.State, cm.Trouble = memberState(byName[m.Name], version, now)
		}
		st.Members = append(st.Members, cm)
	}
	if r.Index(self) < 0 {
		st.Candidates = append(st.Candidates, status.ClusterMember{Name: self, Addr: "(this member)",
			State: "this member, outside the ring (leaving, or its peers have not added it yet): it owns nothing and forwards every series", Trouble: true})
	}
	for _, p := range peers {
		if p.Member || r.Index(p.Name) >= 0 {
			continue
		}
		state := fmt.Sprintf("candidate: ready for %s, joins the ring in %s", since(p.ReadySince, now), until(p.JoinAt, now))
		st.Candidates = append(st.Candidates, status.ClusterMember{Name: p.Name, Addr: p.Addr, State: state})
	}
	return st
}

// memberState describes a member of the ring (ringVersion, this member's) from what its
// membership knows of it; trouble is true when it is not answering, stays out of its own
// ring or routes by another ring.
func memberState(p hashring.PeerState, ringVersion string, now time.Time) (state string, trouble bool) {
	switch {
	case p.Name == "":
		return "not known to membership (the ring was resumed, or is being updated)", true
	case !p.MissingSince.IsZero():
		return fmt.Sprintf("not answering ready for %s; leaves the ring in %s", since(p.MissingSince, now), until(p.LeaveAt, now)), true
	case p.Outside:
		return "ready, outside its own ring until its peers add it: it writes nothing and forwards every series", true
	case p.RingVersion != "" && p.RingVersion != ringVersion:
		state := "ready, routes by ring " + p.RingVersion + " (disagrees: it has not seen the same members yet)"
		if p.InRing != nil && !*p.InRing {
			state += "; its ring does not have this member"
		}
		return state, true
	}
	return "ready", false
}

// handoffWaitState says, in a sentence or two, where the wait for handoffs of the ring in
// force is.
func handoffWaitState(w hashring.HandoffWait, now time.Time) string {
	var state string
	switch {
	case w.Settled && w.SettledAfter == 0:
		state = "this member is alone: no peer has anything for it."
	case w.Settled:
		state = fmt.Sprintf("every peer handed the ring over %s after it came.", w.SettledAfter.Round(time.Millisecond))
	case now.Before(w.Until):
		state = fmt.Sprintf("outputs this member gained in the last ring change (or its start) wait for their previous owners' state, at most %s more.", until(w.Until, now))
	default:
		state = fmt.Sprintf("the handoff timeout ended the wait %s ago: outputs gained then went on from this member's own state.", since(w.Until, now))
	}
	for _, d := range w.Departed {
		if now.Before(d.Until) {
			state += fmt.Sprintf(" Outputs gained from %s, which left the ring, wait for its handoff, at most %s more.", d.Name, until(d.Until, now))
		}
	}
	return state
}

// since is the time from t to now, in whole seconds.
func since(t, now time.Time) time.Duration { return now.Sub(t).Round(time.Second) }

// until is the time from now to t, in whole seconds, never below zero.
func until(t, now time.Time) time.Duration { return max(t.Sub(now), 0).Round(time.Second) }
