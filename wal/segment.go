package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// segmentNameLen is the length of a segment file's name: its first index, zero-padded.
const segmentNameLen = 20

// Suffixes tidwall/wal gives a segment file while it truncates the log: a .START or .END file
// is complete (written to .TEMP, fsynced and renamed) and replaces the segments before or
// after it; a .TEMP file is an unfinished one.
const (
	startSuffix = ".START"
	endSuffix   = ".END"
	tempSuffix  = ".TEMP"
)

// segmentFile is one segment file of the log directory.
type segmentFile struct {
	path  string
	first uint64 // index of its first entry, which is its name
	size  int64
}

// dirFile is a segment file name, parsed.
type dirFile struct {
	name   string
	index  uint64
	suffix string
}

func segmentName(index uint64) string { return fmt.Sprintf("%020d", index) }

// parseSegmentName reads a file name the way tidwall/wal's Open does: a non-zero 20-digit
// index, then nothing, .START or .END. Other names (checkpoints among them) are not segments.
func parseSegmentName(name string) (index uint64, suffix string, ok bool) {
	if len(name) < segmentNameLen {
		return 0, "", false
	}
	index, err := strconv.ParseUint(name[:segmentNameLen], 10, 64)
	if err != nil || index == 0 {
		return 0, "", false
	}
	switch suffix = name[segmentNameLen:]; suffix {
	case "", startSuffix, endSuffix:
		return index, suffix, true
	case startSuffix + tempSuffix, endSuffix + tempSuffix:
		return index, suffix, true
	}
	return 0, "", false
}

// listSegments returns the segment files of dir in index order, after finishing a truncation
// that tidwall/wal was interrupted in (as its Open would) and removing unfinished temp files,
// so that what is scanned is what tidwall/wal will open.
func listSegments(dir string) ([]segmentFile, error) {
	entries, err := os.ReadDir(dir) // sorted by name, as tidwall/wal reads it
	if err != nil {
		return nil, err
	}
	var files []dirFile
	start, end := -1, -1
	changed := false
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		index, suffix, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		if strings.HasSuffix(suffix, tempSuffix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
			changed = true
			continue
		}
		switch {
		case suffix == startSuffix:
			start = len(files)
		case suffix == endSuffix && end < 0:
			end = len(files)
		}
		files = append(files, dirFile{e.Name(), index, suffix})
	}
	if start >= 0 && end >= 0 {
		return nil, fmt.Errorf("%w: both a %s and an %s file in %s", ErrCorrupt, startSuffix, endSuffix, dir)
	}
	finish := func(keep []dirFile, at int) ([]dirFile, error) {
		for _, f := range files {
			if !slices.ContainsFunc(keep, func(k dirFile) bool { return k.name == f.name }) {
				if err := os.Remove(filepath.Join(dir, f.name)); err != nil {
					return nil, err
				}
			}
		}
		f := &keep[at]
		final := f.name[:segmentNameLen]
		if err := os.Rename(filepath.Join(dir, f.name), filepath.Join(dir, final)); err != nil {
			return nil, err
		}
		f.name, f.suffix = final, ""
		return keep, nil
	}
	switch {
	case start >= 0: // a front truncation: the .START file replaces every segment before it
		if files, err = finish(files[start:], 0); err != nil {
			return nil, err
		}
		changed = true
	case end >= 0: // a back truncation: the .END file replaces every segment from its index on
		keep := files[:end+1]
		if end > 0 && keep[end-1].index == keep[end].index {
			keep = append(keep[:end-1:end-1], keep[end])
		}
		if files, err = finish(keep, len(keep)-1); err != nil {
			return nil, err
		}
		changed = true
	}
	if changed {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	segments := make([]segmentFile, 0, len(files))
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		segments = append(segments, segmentFile{path: path, first: f.index, size: fi.Size()})
	}
	return segments, nil
}

// syncDir fsyncs a directory, making the creation, removal and renaming of its files durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
