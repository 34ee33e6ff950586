package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// testSegmentSize makes a few dozen small entries span several segment files.
const testSegmentSize = 256

func testConfig(t *testing.T, mode FsyncMode) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Fsync = mode
	cfg.MaxBytes = 1 << 20
	return cfg
}

// openTest opens a log with small segments and registers its metrics on a fresh registry.
func openTest(t *testing.T, cfg Config, opts options) *Log {
	t.Helper()
	if opts.segmentSize == 0 {
		opts.segmentSize = testSegmentSize
	}
	l, err := open(cfg, prometheus.NewRegistry(), nil, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func closeTest(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func payload(i int) []byte {
	return fmt.Appendf(nil, "request body %03d %s", i, strings.Repeat("x", i%7))
}

// appendRange appends payload(i) for i in [from, to] and checks each gets index i.
func appendRange(t *testing.T, l *Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		index, err := l.Append(context.Background(), payload(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if index != uint64(i) {
			t.Fatalf("Append of payload %d got index %d", i, index)
		}
	}
}

// checkReplay replays from and checks it yields payload(i) at index i for i in [want0, want1].
func checkReplay(t *testing.T, l *Log, from uint64, want0, want1 int) {
	t.Helper()
	next := uint64(want0)
	err := l.Replay(from, func(index uint64, p []byte) error {
		if index != next {
			return fmt.Errorf("got index %d, want %d", index, next)
		}
		if !bytes.Equal(p, payload(int(index))) {
			return fmt.Errorf("index %d: got %q, want %q", index, p, payload(int(index)))
		}
		next++
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	if next != uint64(want1)+1 {
		t.Fatalf("Replay(%d) ended before %d, want it to end after %d", from, next, want1)
	}
}

// segmentPaths lists the segment files of dir in index order.
func segmentPaths(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range segs {
		paths = append(paths, s.path)
	}
	return paths
}

// entryOffsets returns the byte offset of each entry in a segment file.
func entryOffsets(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int
	for pos := 0; pos < len(data); {
		size, n := binary.Uvarint(data[pos:])
		offsets = append(offsets, pos)
		pos += n + int(size)
	}
	return offsets
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// flipByte corrupts one byte of a file.
func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestAppendReplayAcrossSegments(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	if l.FirstIndex() != 1 || l.LastIndex() != 0 {
		t.Fatalf("new log: first %d last %d, want 1 and 0", l.FirstIndex(), l.LastIndex())
	}
	appendRange(t, l, 1, 60)
	paths := segmentPaths(t, cfg.Dir)
	if len(paths) < 4 {
		t.Fatalf("60 entries made %d segments of %d bytes, want several", len(paths), testSegmentSize)
	}
	var onDisk int64
	for _, p := range paths {
		onDisk += fileSize(t, p)
	}
	if got := testutil.ToFloat64(l.m.diskBytes); got != float64(onDisk) {
		t.Errorf("cardinal_wal_disk_bytes %v, files hold %d", got, onDisk)
	}
	if got := testutil.ToFloat64(l.m.segments); got != float64(len(paths)) {
		t.Errorf("cardinal_wal_segments %v, %d files", got, len(paths))
	}
	checkReplay(t, l, 0, 1, 60)
	checkReplay(t, l, 37, 37, 60)
	closeTest(t, l)

	l = openTest(t, cfg, options{})
	defer closeTest(t, l)
	checkReplay(t, l, 1, 1, 60)
	appendRange(t, l, 61, 70) // indexes continue after a reopen
	checkReplay(t, l, 55, 55, 70)
	if got := testutil.ToFloat64(l.m.appends); got != 10 {
		t.Errorf("cardinal_wal_appends_total %v after 10 appends", got)
	}
}

func TestOpenCutsTornTail(t *testing.T) {
	tests := []struct {
		name string
		// damage breaks the last segment file, whose last entry starts at lastEntry.
		damage func(t *testing.T, path string, lastEntry int)
		keep   int // entries that replay afterwards
	}{
		{"entry_cut_short", func(t *testing.T, path string, lastEntry int) {
			if err := os.Truncate(path, fileSize(t, path)-3); err != nil {
				t.Fatal(err)
			}
		}, 19},
		{"length_cut_short", func(t *testing.T, path string, _ int) {
			appendBytes(t, path, []byte{0x80}) // a uvarint that continues past the end
		}, 20},
		{"checksum_mismatch_in_last_entry", func(t *testing.T, path string, lastEntry int) {
			flipByte(t, path, fileSize(t, path)-1)
		}, 19},
		{"zeros_after_last_entry", func(t *testing.T, path string, _ int) {
			appendBytes(t, path, make([]byte, 100))
		}, 20},
		{"garbage_length_after_last_entry", func(t *testing.T, path string, _ int) {
			appendBytes(t, path, binary.AppendUvarint(nil, 1<<40))
		}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, FsyncAlways)
			l := openTest(t, cfg, options{})
			appendRange(t, l, 1, 20)
			closeTest(t, l)
			paths := segmentPaths(t, cfg.Dir)
			last := paths[len(paths)-1]
			if fileSize(t, last) == 0 {
				t.Fatal("test setup: the last segment is empty; change the entry count")
			}
			offsets := entryOffsets(t, last)
			tt.damage(t, last, offsets[len(offsets)-1])
			before := fileSize(t, last)

			l = openTest(t, cfg, options{})
			defer closeTest(t, l)
			if got := testutil.ToFloat64(l.m.repairedTails); got != 1 {
				t.Errorf("cardinal_wal_repaired_tails_total %v, want 1", got)
			}
			cut := before - fileSize(t, last)
			if cut <= 0 || testutil.ToFloat64(l.m.repairedBytes) != float64(cut) {
				t.Errorf("cut %d bytes, cardinal_wal_repaired_bytes_total %v", cut, testutil.ToFloat64(l.m.repairedBytes))
			}
			if l.LastIndex() != uint64(tt.keep) {
				t.Fatalf("LastIndex %d after repair, want %d", l.LastIndex(), tt.keep)
			}
			checkReplay(t, l, 1, 1, tt.keep)
			appendRange(t, l, tt.keep+1, tt.keep+3) // appends continue where the good entries end
			checkReplay(t, l, 1, 1, tt.keep+3)
		})
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesCorruptionBeforeTheTail(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, paths []string)
		want   string // in the error
	}{
		{"checksum_in_earlier_segment", func(t *testing.T, paths []string) {
			flipByte(t, paths[0], fileSize(t, paths[0])-1) // the last entry of the first segment
		}, "entry 11 "},
		{"checksum_mid_last_segment", func(t *testing.T, paths []string) {
			last := paths[len(paths)-1]
			flipByte(t, last, int64(entryOffsets(t, last)[0])+2)
		}, "entries after it exist"},
		{"missing_middle_segment", func(t *testing.T, paths []string) {
			if err := os.Remove(paths[1]); err != nil {
				t.Fatal(err)
			}
		}, "next segment starts at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, FsyncAlways)
			l := openTest(t, cfg, options{})
			appendRange(t, l, 1, 30)
			closeTest(t, l)
			paths := segmentPaths(t, cfg.Dir)
			if len(paths) < 3 || len(entryOffsets(t, paths[len(paths)-1])) < 2 {
				t.Fatal("test setup: want 3 segments and 2 entries in the last")
			}
			tt.damage(t, paths)
			sizes := map[string]int64{}
			for _, p := range segmentPaths(t, cfg.Dir) {
				sizes[p] = fileSize(t, p)
			}

			_, err := open(cfg, nil, nil, options{segmentSize: testSegmentSize})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "segment 0000") {
				t.Fatalf("open: %v, want ErrCorrupt naming the segment and %q", err, tt.want)
			}
			for p, size := range sizes { // nothing was cut
				if got := fileSize(t, p); got != size {
					t.Errorf("%s: %d bytes after a refused open, %d before", filepath.Base(p), got, size)
				}
			}
		})
	}
}

func TestReplayReportsCorruptEntry(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	appendRange(t, l, 1, 30)
	closeTest(t, l)
	l = openTest(t, cfg, options{})
	defer closeTest(t, l)
	// Damaged after Open verified it, as a disk can: Replay checks every entry again.
	first := segmentPaths(t, cfg.Dir)[0]
	offsets := entryOffsets(t, first)
	flipByte(t, first, int64(offsets[2])+3)

	var seen []uint64
	err := l.Replay(1, func(index uint64, _ []byte) error {
		seen = append(seen, index)
		return nil
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 3 ") || !strings.Contains(err.Error(), filepath.Base(first)) {
		t.Fatalf("Replay: %v, want ErrCorrupt naming entry 3 and %s", err, filepath.Base(first))
	}
	if len(seen) != 2 {
		t.Fatalf("replayed %v before the corrupt entry, want 1 and 2", seen)
	}
}

func TestOpenHandlesEmptyAndInterruptedFiles(t *testing.T) {
	t.Run("zero_byte_segment", func(t *testing.T) {
		cfg := testConfig(t, FsyncAlways)
		if err := os.WriteFile(filepath.Join(cfg.Dir, segmentName(1)), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		l := openTest(t, cfg, options{})
		defer closeTest(t, l)
		if l.LastIndex() != 0 {
			t.Fatalf("LastIndex %d", l.LastIndex())
		}
		appendRange(t, l, 1, 2)
	})
	t.Run("missing_directory", func(t *testing.T) {
		cfg := testConfig(t, FsyncAlways)
		cfg.Dir = filepath.Join(cfg.Dir, "a", "b")
		l := openTest(t, cfg, options{})
		defer closeTest(t, l)
		appendRange(t, l, 1, 1)
	})
	t.Run("interrupted_front_truncation", func(t *testing.T) {
		cfg := testConfig(t, FsyncAlways)
		l := openTest(t, cfg, options{})
		appendRange(t, l, 1, 30)
		closeTest(t, l)
		segs, err := listSegments(cfg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		// tidwall/wal truncates by writing the new first segment as .START, then removing the
		// older segments and renaming it; a crash can leave the .START next to them, and a
		// half-written .START.TEMP.
		keep := segs[2]
		data, err := os.ReadFile(keep.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keep.path+startSuffix, data, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Dir, segmentName(keep.first+3)+startSuffix+tempSuffix), []byte{1, 2}, 0o640); err != nil {
			t.Fatal(err)
		}
		l = openTest(t, cfg, options{})
		defer closeTest(t, l)
		if l.FirstIndex() != keep.first || l.LastIndex() != 30 {
			t.Fatalf("first %d last %d, want %d and 30", l.FirstIndex(), l.LastIndex(), keep.first)
		}
		checkReplay(t, l, 0, int(keep.first), 30)
		entries, _ := os.ReadDir(cfg.Dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".") {
				t.Errorf("%s left behind", e.Name())
			}
		}
	})
}

func TestTruncateFrontSurvivesReopen(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	appendRange(t, l, 1, 50)
	before := testutil.ToFloat64(l.m.diskBytes)
	if err := l.TruncateFront(23); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 23 {
		t.Fatalf("FirstIndex %d after TruncateFront(23)", l.FirstIndex())
	}
	if after := testutil.ToFloat64(l.m.diskBytes); after >= before {
		t.Errorf("cardinal_wal_disk_bytes %v after truncating, %v before", after, before)
	}
	checkReplay(t, l, 0, 23, 50)
	if err := l.TruncateFront(10); err != nil || l.FirstIndex() != 23 {
		t.Fatalf("TruncateFront(10) behind the first entry: %v, first %d", err, l.FirstIndex())
	}
	if err := l.TruncateFront(52); err == nil {
		t.Fatal("TruncateFront past LastIndex()+1 succeeded")
	}
	closeTest(t, l)

	l = openTest(t, cfg, options{})
	if l.FirstIndex() != 23 || l.LastIndex() != 50 {
		t.Fatalf("reopened: first %d last %d, want 23 and 50", l.FirstIndex(), l.LastIndex())
	}
	checkReplay(t, l, 0, 23, 50)
	if err := l.TruncateFront(51); err != nil { // everything
		t.Fatal(err)
	}
	closeTest(t, l)

	l = openTest(t, cfg, options{})
	defer closeTest(t, l)
	if l.FirstIndex() != 51 || l.LastIndex() != 50 {
		t.Fatalf("reopened empty: first %d last %d, want 51 and 50", l.FirstIndex(), l.LastIndex())
	}
	checkReplay(t, l, 0, 51, 50)
	appendRange(t, l, 51, 52)
}

func TestFullLogReturnsErrFull(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	cfg.MaxBytes = minSegmentsInMaxBytes * testSegmentSize
	l := openTest(t, cfg, options{})
	defer closeTest(t, l)
	big := bytes.Repeat([]byte("y"), 100)
	var err error
	n := 0
	for ; n < 100; n++ {
		if _, err = l.Append(context.Background(), big); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append %d: %v, want ErrFull", n+1, err)
	}
	if used := int64(n) * entrySize(len(big)); used > int64(cfg.MaxBytes) || used+entrySize(len(big)) <= int64(cfg.MaxBytes) {
		t.Fatalf("full after %d appends (%d bytes) with max_bytes %d", n, used, cfg.MaxBytes)
	}
	if got := testutil.ToFloat64(l.m.rejected.WithLabelValues(rejectFull)); got != 1 {
		t.Errorf("rejected{reason=full} %v", got)
	}
	if err := l.TruncateFront(l.LastIndex() + 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), big); err != nil {
		t.Fatalf("append after truncating: %v", err)
	}
}

func TestGroupCommitSharesFsyncs(t *testing.T) {
	const appenders = 20
	var (
		l      *Log
		syncs  atomic.Int64
		synced atomic.Uint64 // the last index written when an fsync ran
	)
	opts := options{fsync: func(sync func() error) error {
		if syncs.Add(1) == 1 {
			// Hold the first fsync until every append is written or queued behind it.
			for int(l.last.Load())+len(l.reqs) < appenders {
				runtime.Gosched()
			}
		}
		synced.Store(l.last.Load())
		return sync()
	}}
	l = openTest(t, testConfig(t, FsyncAlways), opts)
	defer closeTest(t, l)

	var wg sync.WaitGroup
	indexes := make([]uint64, appenders)
	for i := range appenders {
		wg.Go(func() {
			index, err := l.Append(context.Background(), payload(i))
			if err != nil {
				t.Error(err)
			}
			if index > synced.Load() {
				t.Errorf("Append returned index %d before it was fsynced", index)
			}
			indexes[i] = index
		})
	}
	wg.Wait()
	if got := syncs.Load(); got != 2 {
		t.Fatalf("%d appends took %d fsyncs, want 2 (the first, then one for the rest)", appenders, got)
	}
	seen := map[uint64]bool{}
	for _, index := range indexes {
		if index < 1 || index > appenders || seen[index] {
			t.Fatalf("indexes %v are not 1..%d once each", indexes, appenders)
		}
		seen[index] = true
	}
}

func TestFailedFsyncRefusesAppends(t *testing.T) {
	var fail atomic.Bool
	opts := options{fsync: func(sync func() error) error {
		if fail.Load() {
			return errors.New("input/output error")
		}
		return sync()
	}}
	l := openTest(t, testConfig(t, FsyncAlways), opts)
	appendRange(t, l, 1, 3)
	fail.Store(true)
	if _, err := l.Append(context.Background(), payload(4)); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("Append with a failing fsync: %v", err)
	}
	fail.Store(false) // a later fsync would pass, but what reached the disk is unknown
	_, err := l.Append(context.Background(), payload(5))
	if err == nil || errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "refuses appends") {
		t.Fatalf("Append after a failed fsync: %v, want the recorded failure", err)
	}
	if got := testutil.ToFloat64(l.m.rejected.WithLabelValues(rejectFailed)); got != 2 {
		t.Errorf("rejected{reason=failed} %v, want 2", got)
	}
	l.Close()
	if _, err := l.Append(context.Background(), payload(6)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

func TestFsyncModes(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncNever, FsyncInterval} {
		t.Run(string(mode), func(t *testing.T) {
			var syncs atomic.Int64
			cfg := testConfig(t, mode)
			cfg.FsyncInterval = 1 << 62 // the ticker never fires within the test
			l := openTest(t, cfg, options{fsync: func(sync func() error) error { syncs.Add(1); return sync() }})
			appendRange(t, l, 1, 30)
			if got := syncs.Load(); got != 0 {
				t.Fatalf("%d fsyncs before Close", got)
			}
			closeTest(t, l)
			if got := syncs.Load(); got != 1 {
				t.Fatalf("%d fsyncs by Close, want 1", got)
			}
		})
	}
}

func TestAppendHonoursCancelledContext(t *testing.T) {
	l := openTest(t, testConfig(t, FsyncAlways), options{})
	defer closeTest(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The queue has room, so a cancelled append may still be queued; either way it must not
	// leave its bytes reserved.
	for range 100 {
		l.Append(ctx, payload(1))
	}
	l.mu.Lock()
	reserved := l.reserved
	l.mu.Unlock()
	if want := l.diskBytes; reserved != want {
		t.Fatalf("%d bytes reserved, %d on disk", reserved, want)
	}
}

// TruncateBefore drops only whole segment files: it keeps every entry from index on (and
// possibly some before it, back to the start of index's segment), rewrites no segment, and
// the log reopens with the same entries.
func TestTruncateBeforeDropsWholeSegmentsOnly(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	appendRange(t, l, 1, 60)
	segsBefore, err := listSegments(cfg.Dir)
	if err != nil || len(segsBefore) < 4 {
		t.Fatalf("%d segments (%v): the test needs several", len(segsBefore), err)
	}
	mid := segsBefore[2].first + 1 // inside the third segment
	if err := l.TruncateBefore(mid); err != nil {
		t.Fatal(err)
	}
	if got := l.FirstIndex(); got != segsBefore[2].first {
		t.Errorf("FirstIndex %d, want the third segment's first entry %d", got, segsBefore[2].first)
	}
	segsAfter, err := listSegments(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range segsAfter {
		if b := segsBefore[i+2]; s.path != b.path || s.size != b.size {
			t.Errorf("segment %d is %s (%d bytes), want %s (%d bytes) untouched", i, s.path, s.size, b.path, b.size)
		}
	}
	checkReplay(t, l, 0, int(segsBefore[2].first), 60)
	appendRange(t, l, 61, 65)
	closeTest(t, l)
	l = openTest(t, cfg, options{})
	checkReplay(t, l, 0, int(segsBefore[2].first), 65)
	closeTest(t, l)
}

// The alerts judge disk_bytes against max_bytes and the last checkpoint's age against the
// interval: both limits are exported as configured.
func TestMetricsPublishConfiguredLimits(t *testing.T) {
	cfg := testConfig(t, FsyncInterval)
	cfg.CheckpointInterval = setting.Duration(45 * time.Second)
	l := openTest(t, cfg, options{})
	defer closeTest(t, l)
	if got := testutil.ToFloat64(l.m.maxBytes); got != 1<<20 {
		t.Errorf("cardinal_wal_max_bytes %v, want %d", got, 1<<20)
	}
	if got := testutil.ToFloat64(l.m.checkpointInterval); got != 45 {
		t.Errorf("cardinal_wal_checkpoint_interval_seconds %v, want 45", got)
	}
}

// Sync fsyncs what was appended whatever the fsync mode (under always, Append has).
func TestSyncForcesAnFsyncInEveryMode(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncNever, FsyncInterval, FsyncAlways} {
		t.Run(string(mode), func(t *testing.T) {
			var l *Log
			var synced atomic.Uint64 // the last index written when an fsync ran
			opts := options{fsync: func(sync func() error) error {
				synced.Store(l.last.Load())
				return sync()
			}}
			cfg := testConfig(t, mode)
			cfg.FsyncInterval = setting.Duration(time.Hour) // no fsync by the interval's clock
			l = openTest(t, cfg, opts)
			defer closeTest(t, l)
			index, err := l.Append(context.Background(), payload(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if synced.Load() < index {
				t.Errorf("after Sync the last fsync covered entry %d, want %d", synced.Load(), index)
			}
		})
	}
}

// An entry Enqueue has returned for is written before every entry queued after it, though
// its writer has not waited yet.
func TestEnqueueFixesTheEntrysPlace(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	defer closeTest(t, l)
	wait, err := l.Enqueue(context.Background(), payload(1))
	if err != nil {
		t.Fatal(err)
	}
	later, err := l.Append(context.Background(), payload(2))
	if err != nil {
		t.Fatal(err)
	}
	first, err := wait()
	if err != nil || first >= later {
		t.Fatalf("the enqueued entry is at %d (%v), the one appended after it at %d", first, err, later)
	}
	checkReplay(t, l, 1, 1, 2)
}
