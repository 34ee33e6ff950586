// Package hashring is cardinal's cluster (docs/design.md §5): who is in it, which member
// aggregates which output series, forwarding each series to the member that owns its
// output, and handing state over when shards move.
//
// Placement: Ring puts a key (the xxhash64 of an output series' identity) in shard
// key % Shards, and gives each of the 262144 shards to the member that wins rendezvous
// hashing over the member names. Placement depends on the set of names only: the order they
// are listed in and the members' addresses do not matter, and a member joining or leaving
// moves only the shards it wins or loses, about 1/N of them. Ring.Version identifies the set
// of names, so peers can tell whether they agree.
//
// Membership: Discoverers (a static list, a peers file, DNS A/AAAA or SRV records) give
// addresses; a Prober asks each address for its Identity (name, readiness, ring version),
// served by every cardinal at IdentityPath; Membership turns rounds of these answers into
// members with hysteresis (join after join_after seen ready, leave after leave_after unseen,
// nothing changes on a failed lookup) and rebuilds the Ring when the names change. A member
// that discovery stops listing is Removed, and leaves (Forwarder.Leave).
//
// Forwarding: a Forwarder keeps the ring in force and, per other member, a queue of encoded
// series sent in order by remote write (peerqueue.go), with headers naming the sender and its
// ring (header.go). An Outbox routes one request: the aggregator asks its View for each
// output's owner and hands it the series to forward; Receiver marks a forwarded request so
// the owner aggregates it by the sender's ring (SenderView) and never forwards it again.
//
// Handoff: the Forwarder is the aggregator's Ownership (Owns, Awaits). After a ring change,
// the state of outputs a member lost is encoded by the aggregator and posted to their owners
// (SendHandoff, HandoffPath), which merge it (HandoffHandler). The outputs a member gained
// wait for that state until the members that may hold it say they have handed the ring
// over (settle.go, HandedOverPath), or the handoff timeout.
package hashring
