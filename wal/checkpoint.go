package wal

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A checkpoint file is named checkpoint.<20-digit index>, a name tidwall/wal's segment scan
// ignores, and holds the content followed by a trailer: the content's length (8 bytes), its
// CRC32C (4 bytes), both little-endian, and checkpointMagic.
const (
	checkpointPrefix      = "checkpoint."
	checkpointTempSuffix  = ".tmp"
	checkpointMagic       = "cwc1"
	checkpointTrailerSize = 8 + 4 + len(checkpointMagic)
)

// Checkpoint is a checkpoint file whose checksum verified when it was found.
type Checkpoint struct {
	// Index is the log index the checkpoint was written at, as given to WriteCheckpoint.
	Index uint64
	// Size is the length of the content.
	Size int64
	path string
	crc  uint32
}

func checkpointName(index uint64) string { return fmt.Sprintf("%s%020d", checkpointPrefix, index) }

// parseCheckpointName returns the index of a checkpoint file name.
func parseCheckpointName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok || len(digits) != segmentNameLen {
		return 0, false
	}
	index, err := strconv.ParseUint(digits, 10, 64)
	return index, err == nil
}

// WriteCheckpoint stores what write produces as the checkpoint at index, atomically: it is
// written to a temporary file, fsynced, renamed and the directory fsynced, so a crash leaves
// either the old checkpoints or the new one complete. Then every other checkpoint is
// removed except the newest one before index, which LatestCheckpoint falls back to.
func (l *Log) WriteCheckpoint(index uint64, write func(io.Writer) error) error {
	l.checkpointMu.Lock()
	defer l.checkpointMu.Unlock()
	start := time.Now()
	final := filepath.Join(l.cfg.Dir, checkpointName(index))
	size, err := writeCheckpointFile(final, write)
	if err != nil {
		return fmt.Errorf("wal: writing checkpoint %d: %w", index, err)
	}
	if err := l.pruneCheckpoints(index); err != nil {
		return fmt.Errorf("wal: removing checkpoints older than %d: %w", index, err)
	}
	l.m.checkpointDuration.Observe(time.Since(start).Seconds())
	l.m.checkpointBytes.Set(float64(size))
	l.m.checkpointTime.Set(float64(l.opts.now().UnixNano()) / 1e9)
	return nil
}

// writeCheckpointFile writes, fsyncs and renames the file; it returns the content's length.
func writeCheckpointFile(final string, write func(io.Writer) error) (size int64, err error) {
	tmp := final + checkpointTempSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	crc := crc32.New(castagnoli)
	cw := &countingWriter{w: io.MultiWriter(bw, crc)}
	if err := write(cw); err != nil {
		return 0, err
	}
	trailer := binary.LittleEndian.AppendUint64(nil, uint64(cw.n))
	trailer = binary.LittleEndian.AppendUint32(trailer, crc.Sum32())
	trailer = append(trailer, checkpointMagic...)
	if _, err := bw.Write(trailer); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, err
	}
	return cw.n, syncDir(filepath.Dir(final))
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// listCheckpoints returns the indexes of the checkpoint files in dir, newest first.
func listCheckpoints(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var indexes []uint64
	for _, e := range entries {
		if index, ok := parseCheckpointName(e.Name()); ok && !e.IsDir() {
			indexes = append(indexes, index)
		}
	}
	slices.SortFunc(indexes, func(a, b uint64) int { return cmp.Compare(b, a) })
	return indexes, nil
}

// pruneCheckpoints removes every checkpoint but the one at index and the newest before it.
func (l *Log) pruneCheckpoints(index uint64) error {
	indexes, err := listCheckpoints(l.cfg.Dir)
	if err != nil {
		return err
	}
	keptPrevious := false
	for _, i := range indexes {
		if i == index || (i < index && !keptPrevious) {
			keptPrevious = keptPrevious || i < index
			continue
		}
		if err := os.Remove(filepath.Join(l.cfg.Dir, checkpointName(i))); err != nil {
			return err
		}
	}
	return syncDir(l.cfg.Dir)
}

// removeCheckpointTemps removes checkpoint files a crash left half-written.
func removeCheckpointTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if base, ok := strings.CutSuffix(name, checkpointTempSuffix); ok {
			if _, ok := parseCheckpointName(base); ok {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// LatestCheckpoint returns the newest checkpoint whose checksum verifies; ok is false when
// there is none. A newer one that does not verify is skipped, logged, counted in
// cardinal_wal_corrupt_checkpoints_total and set aside (renamed with the suffix .corrupt).
func (l *Log) LatestCheckpoint() (cp Checkpoint, ok bool, err error) {
	l.checkpointMu.Lock()
	defer l.checkpointMu.Unlock()
	indexes, err := listCheckpoints(l.cfg.Dir)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("wal: listing checkpoints: %w", err)
	}
	for _, index := range indexes {
		cp, err := verifyCheckpoint(filepath.Join(l.cfg.Dir, checkpointName(index)), index)
		if errors.Is(err, ErrCorrupt) {
			l.logger.Warn("wal: skipping a corrupt checkpoint; falling back to an older one", "index", index, "err", err)
			l.m.corruptCheckpoints.Inc()
			l.setAside(index)
			continue
		}
		if err != nil {
			return Checkpoint{}, false, fmt.Errorf("wal: reading checkpoint %d: %w", index, err)
		}
		return cp, true, nil
	}
	return Checkpoint{}, false, nil
}

// corruptSuffix names a checkpoint found corrupt, set aside: no longer a checkpoint to
// restore or to keep as the fallback of the next one.
const corruptSuffix = ".corrupt"

// setAside renames a corrupt checkpoint out of the checkpoints, so that the next checkpoint
// keeps the one restored instead as its fallback (pruneCheckpoints keeps the newest before
// it, which the corrupt one would be). It stays in the directory for a look, the newest one
// set aside only, so that they do not fill the disk: LatestCheckpoint finds them newest
// first, and one older than a file already set aside is removed. A failure is logged: the
// fallback is then the corrupt file, as before.
func (l *Log) setAside(index uint64) {
	path := filepath.Join(l.cfg.Dir, checkpointName(index))
	entries, err := os.ReadDir(l.cfg.Dir)
	if err != nil {
		l.logger.Warn("wal: could not set a corrupt checkpoint aside", "index", index, "err", err)
		return
	}
	var aside []string
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), corruptSuffix); ok {
			if i, ok := parseCheckpointName(base); ok {
				if i > index {
					// A newer one is set aside already (in this start-up): this one goes.
					if err := os.Remove(path); err != nil {
						l.logger.Warn("wal: could not remove a corrupt checkpoint", "index", index, "err", err)
					}
					return
				}
				aside = append(aside, filepath.Join(l.cfg.Dir, e.Name()))
			}
		}
	}
	for _, p := range aside {
		_ = os.Remove(p)
	}
	if err := os.Rename(path, path+corruptSuffix); err != nil {
		l.logger.Warn("wal: could not set a corrupt checkpoint aside", "index", index, "err", err)
		return
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		l.logger.Warn("wal: could not sync the directory after setting a corrupt checkpoint aside", "err", err)
	}
}

// verifyCheckpoint reads a checkpoint file through and checks its trailer and checksum.
func verifyCheckpoint(path string, index uint64) (Checkpoint, error) {
	f, cp, err := openCheckpoint(path, index)
	if err != nil {
		return Checkpoint{}, err
	}
	defer f.Close()
	crc := crc32.New(castagnoli)
	if _, err := io.Copy(crc, io.NewSectionReader(f, 0, cp.Size)); err != nil {
		return Checkpoint{}, err
	}
	if crc.Sum32() != cp.crc {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint %s fails its checksum", ErrCorrupt, filepath.Base(path))
	}
	return cp, nil
}

// openCheckpoint opens a checkpoint file and reads its trailer.
func openCheckpoint(path string, index uint64) (*os.File, Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Checkpoint{}, err
	}
	corrupt := func(why string) (*os.File, Checkpoint, error) {
		f.Close()
		return nil, Checkpoint{}, fmt.Errorf("%w: checkpoint %s %s", ErrCorrupt, filepath.Base(path), why)
	}
	size := fi.Size() - int64(checkpointTrailerSize)
	if size < 0 {
		return corrupt("is shorter than its trailer")
	}
	trailer := make([]byte, checkpointTrailerSize)
	if _, err := f.ReadAt(trailer, size); err != nil {
		f.Close()
		return nil, Checkpoint{}, err
	}
	if string(trailer[12:]) != checkpointMagic || binary.LittleEndian.Uint64(trailer) != uint64(size) {
		return corrupt("has no valid trailer")
	}
	return f, Checkpoint{Index: index, Size: size, path: path, crc: binary.LittleEndian.Uint32(trailer[8:])}, nil
}

// Open returns the checkpoint's content. Reading it checks the checksum again: the last Read
// fails with an ErrCorrupt error instead of io.EOF if the file changed since it was found.
func (c Checkpoint) Open() (io.ReadCloser, error) {
	f, cp, err := openCheckpoint(c.path, c.Index)
	if err != nil {
		return nil, fmt.Errorf("wal: opening checkpoint %d: %w", c.Index, err)
	}
	return &checkpointReader{f: f, r: bufio.NewReaderSize(io.NewSectionReader(f, 0, cp.Size), 1<<20), crc: crc32.New(castagnoli), want: cp.crc, name: filepath.Base(c.path)}, nil
}

// checkpointReader reads a checkpoint's content and checks its CRC32C at the end.
type checkpointReader struct {
	f    *os.File
	r    io.Reader
	crc  hash.Hash32
	want uint32
	name string
}

func (r *checkpointReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.crc.Write(p[:n])
	if err == io.EOF && r.crc.Sum32() != r.want {
		return n, fmt.Errorf("%w: checkpoint %s fails its checksum", ErrCorrupt, r.name)
	}
	return n, err
}

func (r *checkpointReader) Close() error { return r.f.Close() }
