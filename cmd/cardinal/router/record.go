package router

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cardinal-proxy/cardinal/hashring"
)

// A WAL record is one kind byte and its payload. Kinds are never reused, so that a log
// written by one version of cardinal is read correctly, or refused clearly, by another.
type recordKind byte

const (
	// recordRemoteWrite1 is an accepted Remote Write 1.0 request: its snappy-compressed
	// protobuf body, holding exactly the series that were ingested.
	recordRemoteWrite1 recordKind = 1
	// recordDelivered is a batch a remote-write downstream acknowledged: see
	// appendDelivered.
	recordDelivered recordKind = 2
	// recordForwarded is a request a peer forwarded: the sender's name, ring version and
	// member names (each a uvarint length and bytes), then its body as in
	// recordRemoteWrite1. Replayed, it is aggregated by the sender's ring, as it was.
	recordForwarded recordKind = 3
	// recordHandoffMerged is a handoff a peer delivered, merged before it was logged: see
	// appendHandoff and Router.MergeHandoff.
	recordHandoffMerged recordKind = 4
	// recordHandoffTaken is a handoff this member took out of its aggregator, logged before
	// its first delivery attempt: see Router.HandoffTaken. recordHandoffEnded is the id of
	// one its owner answered for good (merged or refused).
	recordHandoffTaken recordKind = 5
	recordHandoffEnded recordKind = 6
)

// errUnknownRecord is a record of a kind this version does not know.
var errUnknownRecord = errors.New("unknown WAL record kind")

// appendRecord appends a record of kind with payload to dst.
func appendRecord(dst []byte, kind recordKind, payload []byte) []byte {
	return append(append(dst, byte(kind)), payload...)
}

// parseRecord splits a record into its kind and payload.
func parseRecord(rec []byte) (recordKind, []byte, error) {
	if len(rec) == 0 {
		return 0, nil, fmt.Errorf("%w: empty record", errUnknownRecord)
	}
	switch k := recordKind(rec[0]); k {
	case recordRemoteWrite1, recordDelivered, recordForwarded, recordHandoffMerged, recordHandoffTaken, recordHandoffEnded:
		return k, rec[1:], nil
	default:
		return 0, nil, fmt.Errorf("%w %d (written by a newer cardinal?)", errUnknownRecord, k)
	}
}

// appendDelivered appends the payload of a recordDelivered to dst: the downstream's name
// (uvarint length and bytes), a uvarint count, then per series its SeriesHash (8 bytes, little
// endian) and the newest timestamp acknowledged, as a zigzag varint difference from the
// previous one (the series of a batch mostly share their timestamp: one byte).
func appendDelivered(dst []byte, sink string, hashes []uint64, timestamps []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(sink)))
	dst = append(dst, sink...)
	return appendMarks(dst, hashes, timestamps)
}

// appendMarks appends a count and (hash, timestamp) pairs as appendDelivered describes.
func appendMarks(dst []byte, hashes []uint64, timestamps []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(hashes)))
	prev := int64(0)
	for i, h := range hashes {
		dst = binary.LittleEndian.AppendUint64(dst, h)
		dst = binary.AppendVarint(dst, timestamps[i]-prev)
		prev = timestamps[i]
	}
	return dst
}

// parseDelivered reads a recordDelivered payload, calling fn for each pair.
func parseDelivered(payload []byte, fn func(sink string, hash uint64, ts int64)) error {
	n, k := binary.Uvarint(payload)
	if k <= 0 || n > uint64(len(payload)-k) {
		return fmt.Errorf("delivered record: bad downstream name")
	}
	payload = payload[k:]
	sink := string(payload[:n])
	rest, err := parseMarks(payload[n:], func(h uint64, ts int64) { fn(sink, h, ts) })
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the marks", len(rest))
	}
	if err != nil {
		return fmt.Errorf("delivered record of %q: %w", sink, err)
	}
	return nil
}

// parseMarks reads what appendMarks wrote, calling fn for each pair, and returns the rest.
func parseMarks(b []byte, fn func(hash uint64, ts int64)) ([]byte, error) {
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, errors.New("bad mark count")
	}
	b = b[k:]
	prev := int64(0)
	for range count {
		if len(b) < 8 {
			return nil, errors.New("truncated mark")
		}
		h := binary.LittleEndian.Uint64(b)
		d, k := binary.Varint(b[8:])
		if k <= 0 {
			return nil, errors.New("bad mark timestamp")
		}
		b = b[8+k:]
		prev += d
		fn(h, prev)
	}
	return b, nil
}

// appendStrings appends each of ss to dst as a uvarint length and its bytes.
func appendStrings(dst []byte, ss ...string) []byte {
	for _, s := range ss {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// parseStrings reads the n strings appendStrings wrote at the start of payload, and returns
// them and the rest; ok is false when payload does not hold them.
func parseStrings(payload []byte, n int) (ss []string, rest []byte, ok bool) {
	ss = make([]string, n)
	for i := range ss {
		l, k := binary.Uvarint(payload)
		if k <= 0 || l > uint64(len(payload)-k) {
			return nil, nil, false
		}
		ss[i] = string(payload[k : k+int(l)])
		payload = payload[k+int(l):]
	}
	return ss, payload, true
}

// appendForwarded appends the payload of a recordForwarded to dst.
func appendForwarded(dst []byte, fi hashring.ForwardInfo, body []byte) []byte {
	return append(appendStrings(dst, fi.From, fi.Version, strings.Join(fi.Members, ",")), body...)
}

// parseForwarded splits a recordForwarded payload into the sender and the body.
func parseForwarded(payload []byte) (hashring.ForwardInfo, []byte, error) {
	parts, body, ok := parseStrings(payload, 3)
	if !ok {
		return hashring.ForwardInfo{}, nil, errors.New("forwarded record: bad header")
	}
	fi := hashring.ForwardInfo{From: parts[0], Version: parts[1]}
	if parts[2] != "" {
		fi.Members = strings.Split(parts[2], ",")
	}
	return fi, body, nil
}
