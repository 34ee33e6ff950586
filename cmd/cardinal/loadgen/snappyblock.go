package loadgen

import (
	"encoding/binary"
	"slices"
)

// span is a byte range [start, end) of an uncompressed payload.
type span struct{ start, end int }

// Snappy element tags (see the snappy block format description).
const (
	tagLiteral = 0x00
	tagCopy2   = 0x02
	maxOffset2 = 1<<16 - 1
	minMatch   = 4
	hashBits   = 16
)

// compressPatchable snappy-compresses raw into a block in which every byte of the patch spans
// is emitted as a literal, so that it can later be overwritten in the compressed body without
// recompressing. It returns the block and, for each span (sorted by start, non-overlapping),
// the offset of its first byte in the block. Matches never read from or write to a patch
// span, so patching one byte changes exactly one decoded byte.
func compressPatchable(dst, raw []byte, patches []span) ([]byte, []int) {
	// staticRun[i] is the number of consecutive patch-free bytes starting at i.
	staticRun := make([]int32, len(raw)+1)
	patchAt := make([]bool, len(raw))
	for _, s := range patches {
		for i := s.start; i < s.end; i++ {
			patchAt[i] = true
		}
	}
	for i := len(raw) - 1; i >= 0; i-- {
		if !patchAt[i] {
			staticRun[i] = staticRun[i+1] + 1
		}
	}

	dst = binary.AppendUvarint(dst, uint64(len(raw)))
	offsets := make([]int, 0, len(patches))
	next := 0 // next patch span to place
	emitLiteral := func(from, to int) {
		if from == to {
			return
		}
		dst = appendLiteralTag(dst, to-from)
		for ; next < len(patches) && patches[next].start < to; next++ {
			offsets = append(offsets, len(dst)+patches[next].start-from)
		}
		dst = append(dst, raw[from:to]...)
	}

	table := make([]int32, 1<<hashBits)
	for i := range table {
		table[i] = -1
	}
	literalFrom := 0
	for i := 0; i+minMatch <= len(raw); {
		if staticRun[i] < minMatch {
			i++
			continue
		}
		word := binary.LittleEndian.Uint32(raw[i:])
		h := hash4(word)
		candidate := int(table[h])
		table[h] = int32(i)
		if candidate < 0 || i-candidate > maxOffset2 || staticRun[candidate] < minMatch ||
			binary.LittleEndian.Uint32(raw[candidate:]) != word {
			i++
			continue
		}
		n := minMatch
		limit := int(min(staticRun[i], staticRun[candidate]))
		for n < limit && raw[candidate+n] == raw[i+n] {
			n++
		}
		emitLiteral(literalFrom, i)
		dst = appendCopies(dst, i-candidate, n)
		for k := i + 1; k < i+n && k+minMatch <= len(raw); k++ {
			if staticRun[k] >= minMatch {
				table[hash4(binary.LittleEndian.Uint32(raw[k:]))] = int32(k)
			}
		}
		i += n
		literalFrom = i
	}
	emitLiteral(literalFrom, len(raw))
	return dst, offsets
}

// hash4 hashes four bytes into the match table.
func hash4(u uint32) uint32 { return (u * 0x1e35a7bd) >> (32 - hashBits) }

// appendLiteralTag appends the tag of a literal of n >= 1 bytes.
func appendLiteralTag(dst []byte, n int) []byte {
	n--
	switch {
	case n < 60:
		return append(dst, byte(n)<<2|tagLiteral)
	case n < 1<<8:
		return append(dst, 60<<2|tagLiteral, byte(n))
	case n < 1<<16:
		return append(dst, 61<<2|tagLiteral, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(dst, 62<<2|tagLiteral, byte(n), byte(n>>8), byte(n>>16))
	default:
		return append(dst, 63<<2|tagLiteral, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	}
}

// appendCopies appends copy elements (2-byte offset, at most 64 bytes each, none shorter than
// minMatch) reproducing n bytes from offset bytes back.
func appendCopies(dst []byte, offset, n int) []byte {
	for n > 0 {
		c := min(n, 64)
		if rest := n - c; rest > 0 && rest < minMatch {
			c = n - minMatch
		}
		dst = append(dst, byte(c-1)<<2|tagCopy2, byte(offset), byte(offset>>8))
		n -= c
	}
	return dst
}

// sortSpans orders patch spans by start, as compressPatchable expects.
func sortSpans(s []span) { slices.SortFunc(s, func(a, b span) int { return a.start - b.start }) }
