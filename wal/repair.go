package wal

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// segmentScan is what reading one segment file found.
type segmentScan struct {
	entries int // entries that verify, before the first that does not
	badAt   int // byte offset of the first entry that does not verify, or -1
	// goodAfterBad is set when an entry after badAt verifies: the bad entry is not a torn
	// write at the end, which only a crash during the last write can leave.
	goodAfterBad bool
}

// scanSegment walks the entries of a segment file's contents: tidwall/wal's uvarint length,
// then our CRC32C and payload.
func scanSegment(data []byte) segmentScan {
	s := segmentScan{badAt: -1}
	for pos := 0; pos < len(data); {
		size, n := binary.Uvarint(data[pos:])
		if n <= 0 || uint64(len(data)-pos-n) < size {
			if s.badAt < 0 { // the length, or the entry it announces, runs past the end
				s.badAt = pos
			}
			return s
		}
		end := pos + n + int(size)
		_, ok := unframe(data[pos+n : end])
		switch {
		case !ok && s.badAt < 0:
			s.badAt = pos
		case ok && s.badAt >= 0:
			s.goodAfterBad = true
			return s
		case ok:
			s.entries++
		}
		pos = end
	}
	return s
}

// verifySegments reads every segment before tidwall/wal opens them: an entry that does not
// verify at the end of the last segment is what a crash during a write leaves, and is cut
// off (logged and counted); one anywhere else, or a gap between segments, is an ErrCorrupt
// error, because cutting it would lose entries that were acknowledged. It returns the
// segments with their sizes after any repair.
func verifySegments(segments []segmentFile, logger *slog.Logger, m *metrics) ([]segmentFile, error) {
	for i := range segments {
		seg := &segments[i]
		data, err := os.ReadFile(seg.path)
		if err != nil {
			return nil, err
		}
		scan := scanSegment(data)
		last := i == len(segments)-1
		switch {
		case scan.badAt < 0:
		case scan.goodAfterBad || !last:
			return nil, fmt.Errorf("%w: segment %s: entry %d (byte %d) fails its checksum or framing, and entries after it exist; move the directory aside to start with an empty log",
				ErrCorrupt, filepath.Base(seg.path), seg.first+uint64(scan.entries), scan.badAt)
		default:
			cut := seg.size - int64(scan.badAt)
			if err := truncateFile(seg.path, int64(scan.badAt)); err != nil {
				return nil, fmt.Errorf("wal: cutting the torn tail of segment %s: %w", filepath.Base(seg.path), err)
			}
			seg.size = int64(scan.badAt)
			logger.Warn("wal: cut a torn or corrupt tail off the last segment, left by a crash during a write",
				"segment", filepath.Base(seg.path), "from_index", seg.first+uint64(scan.entries), "bytes_cut", cut)
			m.repairedTails.Inc()
			m.repairedBytes.Add(float64(cut))
		}
		if !last {
			if next := segments[i+1].first; seg.first+uint64(scan.entries) != next {
				return nil, fmt.Errorf("%w: segment %s holds entries %d to %d but the next segment starts at %d",
					ErrCorrupt, filepath.Base(seg.path), seg.first, seg.first+uint64(scan.entries)-1, next)
			}
		}
	}
	return segments, nil
}

// truncateFile cuts a file to size and makes the cut durable.
func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
