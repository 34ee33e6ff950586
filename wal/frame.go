package wal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// ErrCorrupt is wrapped by errors about an entry or a checkpoint whose checksum or framing
// does not verify where a crash cannot explain it (not at the tail of the last segment).
var ErrCorrupt = errors.New("wal: corrupt")

// castagnoli is the CRC32C table (hardware-accelerated on amd64 and arm64); it is never
// written after initialisation.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcSize is the length of the checksum that starts every entry's data.
const crcSize = 4

// appendFrame appends the framed form of payload, a little-endian CRC32C of the payload
// followed by the payload, to dst. tidwall/wal adds the uvarint length around it.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// unframe returns the payload of a framed entry, or false when its checksum does not match.
func unframe(data []byte) ([]byte, bool) {
	if len(data) < crcSize {
		return nil, false
	}
	payload := data[crcSize:]
	return payload, binary.LittleEndian.Uint32(data) == crc32.Checksum(payload, castagnoli)
}

// entrySize is the number of bytes a payload of n bytes takes in a segment file.
func entrySize(n int) int64 {
	framed := uint64(crcSize + n)
	var buf [binary.MaxVarintLen64]byte
	return int64(binary.PutUvarint(buf[:], framed)) + int64(framed)
}
