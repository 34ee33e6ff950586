package router

import (
	"errors"
	"fmt"
)

// A WAL record is one kind byte and its payload. Kinds are never reused, so that a log
// written by one version of cardinal is read correctly, or refused clearly, by another.
type recordKind byte

const (
	// recordRemoteWrite1 is an accepted Remote Write 1.0 request: its snappy-compressed
	// protobuf body, holding exactly the series that were ingested.
	recordRemoteWrite1 recordKind = 1
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
	case recordRemoteWrite1:
		return k, rec[1:], nil
	default:
		return 0, nil, fmt.Errorf("%w %d (written by a newer cardinal?)", errUnknownRecord, k)
	}
}
