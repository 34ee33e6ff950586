// Package hashring decides which cardinal of a cluster aggregates which output series: Ring
// places a key (the xxhash64 of an output series) on one of Shards logical shards and each
// shard on a member by rendezvous hashing over the member names, and Membership keeps the
// set of members from static, file and DNS discovery, learning each peer's name from its
// identity endpoint and admitting or dropping peers only after join_after and leave_after.
// Forwarding series to their owner, handing state over when shards move, and exporting
// metrics are left to the server.
package hashring
