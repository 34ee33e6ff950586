package hashring

import "github.com/cespare/xxhash/v2"

// The score of a member for a shard is mix(seed(name) XOR salt(shard)): xxhash64 of the name
// once per member, a fixed salt per shard, and one 64-bit finaliser per pair. That costs a
// few nanoseconds a pair where xxhash over name+shard costs tens, which builds a 100-member
// ring (6.5 million scores) in about 9 ms. Every peer must compute the same
// scores: changing anything in this file reshapes every ring, so it is a change of the
// cluster protocol, not a refactoring.

// golden is 2^64 divided by the golden ratio, the increment of SplitMix64.
const golden = 0x9e3779b97f4a7c15

// mix is the finaliser of SplitMix64 (Stafford's Mix13): a bijection on 64 bits in which
// every input bit flips each output bit with probability close to one half.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// seed is a member's part of its scores.
func seed(name string) uint64 { return xxhash.Sum64String(name) }

// salt is a shard's part of the scores: the shard-th output of SplitMix64.
func salt(shard int) uint64 { return mix(uint64(shard+1) * golden) }

// score is the rendezvous weight of the member with the given seed for the shard with the
// given salt; the highest score owns the shard.
func score(seed, salt uint64) uint64 { return mix(seed ^ salt) }

// assignOwners returns, for each of shards shards, the index in names of the member with the
// highest score; a tie (two equal 64-bit scores) goes to the earlier name. names must be
// non-empty and at most MaxMembers long.
func assignOwners(names []string, shards int) []uint16 {
	seeds := make([]uint64, len(names))
	for i, n := range names {
		seeds[i] = seed(n)
	}
	owners := make([]uint16, shards)
	for s := range owners {
		st := salt(s)
		best, owner := score(seeds[0], st), 0
		for i := 1; i < len(seeds); i++ {
			if sc := score(seeds[i], st); sc > best {
				best, owner = sc, i
			}
		}
		owners[s] = uint16(owner)
	}
	return owners
}
