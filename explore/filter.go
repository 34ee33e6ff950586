package explore

import (
	"math/bits"
	"sync/atomic"
)

// filter remembers which series a scan has already seen: a blocked Bloom filter with three
// bits per series, all in one 64-bit word, so a lookup touches one cache line. Sized at 16
// bits per expected series, it takes a new series for a seen one (and skips it) about once
// in 200 at the end of a scan, and about once in 800 over a whole scan (most series arrive
// in its first scrape interval): the explorer's series counts are low by that much.
type filter struct {
	words []uint64
	shift uint // 64 - log2(len(words))
}

// bitsPerSeries is the filter's size per expected series.
const bitsPerSeries = 16

// minFilterWords is the smallest filter: 64 Ki words (512 KiB) hold 256k series.
const minFilterWords = 1 << 16

// newFilter returns a filter for about series series, of at most maxBytes (but at least
// minFilterWords). A filter too small for its series takes more new series for seen ones:
// the counts come out low.
func newFilter(series uint64, maxBytes int64) filter {
	words := uint64(minFilterWords)
	for words*64 < series*bitsPerSeries && int64(words)*16 <= maxBytes {
		words *= 2
	}
	return filter{words: make([]uint64, words), shift: uint(64 - bits.TrailingZeros64(words))}
}

// testAndSet reports whether the series of hash h was seen, and marks it seen. It is safe
// for concurrent use: of two callers with one new hash, exactly one is told it is new.
func (f *filter) testAndSet(h uint64) bool {
	w := &f.words[h>>f.shift]
	mask := uint64(1)<<(h&63) | uint64(1)<<(h>>6&63) | uint64(1)<<(h>>12&63)
	if atomic.LoadUint64(w)&mask == mask {
		return true
	}
	return atomic.OrUint64(w, mask)&mask == mask
}

// bytes is the filter's memory.
func (f *filter) bytes() int64 { return int64(len(f.words)) * 8 }
