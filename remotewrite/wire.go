package remotewrite

import (
	"encoding/binary"
	"fmt"
)

// Wire types of the protobuf encoding.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

// Codes the wire readers return in place of an index when the input is malformed; the
// message walkers turn them into errors with wireError, off the hot path.
const (
	codeTruncated       = -1 - iota // data ends inside a value
	codeOverflow                    // varint longer than ten bytes
	codeTooLong                     // length prefix beyond the data left
	codeWrongWireType               // known field with another wire type
	codePackedOverrun               // packed element running past its field
	codeEndGroup                    // end-group tag outside a group
	codeIllegalFieldNum             // field number ≤ 0
	codeIllegalWireType             // wire type 6 or 7
)

// varint reads a base-128 varint at b[i] and returns it with the index after it, or a code.
// Like gogo/protobuf it reads at most ten bytes and drops bits beyond 64.
func varint(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1
	}
	return varintSlow(b, i)
}

//go:noinline
func varintSlow(b []byte, i int) (uint64, int) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, codeTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i
		}
	}
	return 0, codeOverflow
}

// tagAt reads a field tag at b[i]: field number (truncated to int32 as gogo/protobuf does),
// wire type and the index after it, or a code. Checks of the field number and of end-group
// tags are left to skipField: known fields are positive and never take wire type 4.
func tagAt(b []byte, i int) (num int32, wt uint64, next int) {
	v, j := varint(b, i)
	return int32(v >> 3), v & 7, j
}

// bytesAt reads the length prefix of a wire-type-2 value at b[i] and returns the value's
// bounds, or a code. The length is checked against the data left before anything uses it.
func bytesAt(b []byte, i int, wt uint64) (start, end int) {
	if wt != wireBytes {
		return 0, codeWrongWireType
	}
	n, j := varint(b, i)
	if j < 0 {
		return 0, j
	}
	if n > uint64(len(b)-j) {
		return 0, codeTooLong
	}
	return j, j + int(n)
}

// varintAt reads the value of a varint field at b[i].
func varintAt(b []byte, i int, wt uint64) (uint64, int) {
	if wt != wireVarint {
		return 0, codeWrongWireType
	}
	return varint(b, i)
}

// fixed64At reads the value of a fixed64 field at b[i].
func fixed64At(b []byte, i int, wt uint64) (uint64, int) {
	if wt != wireFixed64 {
		return 0, codeWrongWireType
	}
	if len(b)-i < 8 {
		return 0, codeTruncated
	}
	return binary.LittleEndian.Uint64(b[i:]), i + 8
}

// skipField skips the value of an unknown field whose tag ended at b[i], for every wire type
// including nested groups, refusing what gogo/protobuf refuses: field number ≤ 0, and an end
// group outside a group. It returns the index after the value, or a code.
func skipField(b []byte, i int, num int32, wt uint64) int {
	if wt == wireEndGroup {
		return codeEndGroup
	}
	if num <= 0 {
		return codeIllegalFieldNum
	}
	depth := 0
	for {
		switch wt {
		case wireVarint:
			if _, i = varint(b, i); i < 0 {
				return i
			}
		case wireFixed64:
			if len(b)-i < 8 {
				return codeTruncated
			}
			i += 8
		case wireBytes:
			if _, i = bytesAt(b, i, wt); i < 0 {
				return i
			}
		case wireStartGroup:
			depth++
		case wireEndGroup:
			depth-- // ≥ 0: an end group at depth 0 was refused above
		case wireFixed32:
			if len(b)-i < 4 {
				return codeTruncated
			}
			i += 4
		default:
			return codeIllegalWireType
		}
		if depth == 0 {
			return i
		}
		// Inside a group, gogo/protobuf checks neither field numbers nor matching group ends.
		var tag uint64
		if tag, i = varint(b, i); i < 0 {
			return i
		}
		wt = tag & 7
	}
}

// wireError turns a code into an error wrapping ErrMalformedRequest (and errPackedOverrun).
//
//go:noinline
func wireError(code int, where string) error {
	switch code {
	case codeTruncated:
		return fmt.Errorf("%w: %s: unexpected end of data", ErrMalformedRequest, where)
	case codeOverflow:
		return fmt.Errorf("%w: %s: varint longer than 10 bytes", ErrMalformedRequest, where)
	case codeTooLong:
		return fmt.Errorf("%w: %s: length exceeds the data left", ErrMalformedRequest, where)
	case codeWrongWireType:
		return fmt.Errorf("%w: %s: wrong wire type", ErrMalformedRequest, where)
	case codePackedOverrun:
		return fmt.Errorf("%w (%s)", errPackedOverrun, where)
	case codeEndGroup:
		return fmt.Errorf("%w: %s: end-group tag outside a group", ErrMalformedRequest, where)
	case codeIllegalFieldNum:
		return fmt.Errorf("%w: %s: illegal field number", ErrMalformedRequest, where)
	case codeIllegalWireType:
		return fmt.Errorf("%w: %s: illegal wire type", ErrMalformedRequest, where)
	default:
		return fmt.Errorf("%w: %s", ErrMalformedRequest, where)
	}
}

func zigzag32(v uint64) int32 {
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1)
}

func zigzag64(v uint64) int64 {
	return int64(v>>1) ^ -int64(v&1)
}
