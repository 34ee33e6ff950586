// Package hashring decides which cardinal of a cluster aggregates which output series, and
// who is in the cluster. It leaves forwarding series to their owner, handing state over when
// shards move, and registering metrics to the server.
//
// Placement: Ring puts a key (the xxhash64 of an output series' identity) in shard
// key % Shards, and gives each of the 65536 shards to the member that wins rendezvous
// hashing over the member names. Placement depends on the set of names only: the order they
// are listed in and the members' addresses do not matter, and a member joining or leaving
// moves only the shards it wins or loses, about 1/N of them. Ring.Version identifies the set
// of names, so peers can tell whether they agree.
//
// Membership: Discoverers (a static list, a peers file, DNS A/AAAA or SRV records) give
// addresses; a Prober asks each address for its Identity (name, readiness, ring version),
// served by every cardinal at IdentityPath; Membership turns rounds of these answers into
// members with hysteresis (join after join_after seen ready, leave after leave_after unseen,
// nothing changes on a failed lookup) and rebuilds the Ring when the names change.
package hashring
