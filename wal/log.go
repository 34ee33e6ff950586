package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tidwall "github.com/cardinal-proxy/cardinal/wal/internal/tidwall"
)

// ErrClosed is returned by operations on a Log after Close.
var ErrClosed = errors.New("wal: closed")

// Log is an open write-ahead log. Append, Sync, TruncateFront, WriteCheckpoint and the index
// getters are safe for concurrent use; Replay is meant for start-up, before appends begin,
// and must not run concurrently with TruncateFront.
type Log struct {
	cfg    Config
	opts   options
	logger *slog.Logger
	m      *metrics
	tw     *tidwall.Log

	reqs    chan *appendRequest // appends waiting for the committer
	stop    chan struct{}       // closed by Close: the committer writes what is queued and exits
	stopped chan struct{}       // closed by the committer when it has exited
	syncer  sync.WaitGroup      // the fsync: interval goroutine
	// syncMu serialises fsyncs, so that one returns only after the directory fsync that
	// another, begun first, owes for a new segment (dirDirty).
	syncMu sync.Mutex

	mu       sync.Mutex
	closed   bool
	failed   error // the first write or fsync error; appends are refused from then on
	reserved int64 // bytes on disk plus those of appends accepted but not yet written

	// writeMu serialises the committer's writes with TruncateFront, which both change the
	// segment files and the fields below.
	writeMu   sync.Mutex
	batch     tidwall.Batch
	frame     []byte
	diskBytes int64
	segments  int
	tailBytes int64 // size of the last segment, to follow tidwall/wal's rule for the next one
	dirDirty  atomic.Bool

	first, last atomic.Uint64

	checkpointMu sync.Mutex
}

// options are what tests change; Open uses the defaults.
type options struct {
	segmentSize int
	// fsync runs one fsync of the log's current segment; tests count or fail them.
	fsync func(sync func() error) error
	now   func() time.Time
}

func (o *options) setDefaults() {
	if o.segmentSize <= 0 {
		o.segmentSize = defaultSegmentSize
	}
	if o.fsync == nil {
		o.fsync = func(sync func() error) error { return sync() }
	}
	if o.now == nil {
		o.now = time.Now
	}
}

// Open opens the log in cfg.Dir, creating it if missing. A torn or corrupt tail of the last
// segment, as a crash during a write leaves it, is cut off (logged and counted in
// cardinal_wal_repaired_tails_total); a corrupt entry anywhere else is an ErrCorrupt error
// naming its segment and index. Metrics are registered on reg unless it is nil.
func Open(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Log, error) {
	return open(cfg, reg, logger, options{})
}

func open(cfg Config, reg prometheus.Registerer, logger *slog.Logger, opts options) (*Log, error) {
	opts.setDefaults()
	if err := cfg.validate(opts.segmentSize); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg, reg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	segs, err := listSegments(cfg.Dir)
	if err == nil {
		segs, err = verifySegments(segs, logger, m)
	}
	if err == nil {
		err = removeCheckpointTemps(cfg.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: opening %s: %w", cfg.Dir, err)
	}
	tw, err := tidwall.Open(cfg.Dir, &tidwall.Options{
		NoSync:           true, // the committer and the interval syncer fsync
		SegmentSize:      opts.segmentSize,
		SegmentCacheSize: 2,
		AllowEmpty:       true, // TruncateFront may remove every entry
		DirPerms:         0o750,
		FilePerms:        0o640,
	})
	if err != nil {
		return nil, fmt.Errorf("wal: opening %s: %w", cfg.Dir, err)
	}
	l := &Log{
		cfg: cfg, opts: opts, logger: logger, m: m, tw: tw,
		reqs:    make(chan *appendRequest, maxBatchEntries),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	first, err := tw.FirstIndex()
	if err == nil {
		var last uint64
		last, err = tw.LastIndex()
		l.first.Store(first)
		l.last.Store(last)
	}
	if err == nil && len(segs) == 0 { // tidwall/wal created the first segment file
		err = syncDir(cfg.Dir)
	}
	if err == nil {
		err = l.measureSegments()
	}
	if err != nil {
		tw.Close()
		return nil, fmt.Errorf("wal: opening %s: %w", cfg.Dir, err)
	}
	go l.commitLoop()
	if cfg.Fsync == FsyncInterval {
		l.syncer.Add(1)
		go l.syncLoop()
	}
	return l, nil
}

// measureSegments sets the size accounting from the segment files on disk.
func (l *Log) measureSegments() error {
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return err
	}
	var total int64
	for _, s := range segs {
		total += s.size
	}
	l.mu.Lock()
	l.reserved += total - l.diskBytes
	l.mu.Unlock()
	l.diskBytes, l.segments, l.tailBytes = total, len(segs), 0
	if len(segs) > 0 {
		l.tailBytes = segs[len(segs)-1].size
	}
	l.m.diskBytes.Set(float64(l.diskBytes))
	l.m.segments.Set(float64(l.segments))
	return nil
}

// FirstIndex is the index of the oldest entry; when the log is empty, LastIndex()+1.
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// LastIndex is the index of the newest entry written, 0 for a log never written to.
// Indexes continue across Close and Open and across TruncateFront.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Replay calls fn with every entry from index from (or the first entry, if later) to the
// last, in order, verifying each entry's checksum: a corrupt one ends the replay with an
// ErrCorrupt error naming its segment and index. An error from fn ends it too, wrapped.
func (l *Log) Replay(from uint64, fn func(index uint64, payload []byte) error) error {
	from = max(from, l.first.Load())
	last := l.last.Load()
	for i := from; i <= last; i++ {
		data, err := l.tw.Read(i)
		if errors.Is(err, tidwall.ErrCorrupt) {
			return fmt.Errorf("%w: segment %s: entry %d has broken framing", ErrCorrupt, l.segmentOf(i), i)
		}
		if err != nil {
			return fmt.Errorf("wal: reading entry %d: %w", i, err)
		}
		payload, ok := unframe(data)
		if !ok {
			return fmt.Errorf("%w: segment %s: entry %d fails its checksum", ErrCorrupt, l.segmentOf(i), i)
		}
		if err := fn(i, payload); err != nil {
			return fmt.Errorf("wal: replaying entry %d: %w", i, err)
		}
	}
	return nil
}

// segmentOf names the segment file that holds index, for error messages.
func (l *Log) segmentOf(index uint64) string {
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return "?"
	}
	name := "?"
	for _, s := range segs {
		if s.first <= index {
			name = filepath.Base(s.path)
		}
	}
	return name
}

// TruncateFront removes the entries before index, whole segment files at a time plus a
// rewrite of the segment index falls in. An index at or before FirstIndex does nothing;
// LastIndex()+1 empties the log (indexes still continue from LastIndex).
func (l *Log) TruncateFront(index uint64) error {
	return l.truncateFront(index)
}

// TruncateBefore removes the whole segment files that hold only entries before index, and
// nothing else: it may keep up to a segment of entries before index, but it never rewrites a
// segment, and it deletes the files after releasing the log, so appends are not held up (a
// catch-up can leave a gigabyte of segments between two checkpoints). A checkpoint's
// truncation uses it.
func (l *Log) TruncateBefore(index uint64) error {
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return fmt.Errorf("wal: listing segments: %w", err)
	}
	start := uint64(0)
	for _, s := range segs {
		if s.first <= index {
			start = s.first
		}
	}
	l.writeMu.Lock()
	if err := l.usable(); err != nil {
		l.writeMu.Unlock()
		return err
	}
	if start <= l.first.Load() {
		l.writeMu.Unlock()
		return nil
	}
	files, err := l.tw.DropSegmentsBefore(start)
	if err != nil {
		l.writeMu.Unlock()
		return l.fail(fmt.Errorf("wal: dropping the segments before %d: %w", start, err))
	}
	l.first.Store(start)
	l.writeMu.Unlock()
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("wal: deleting a truncated segment: %w", err)
		}
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		return l.fail(fmt.Errorf("wal: fsync of %s after truncating: %w", l.cfg.Dir, err))
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.measureSegments(); err != nil {
		return fmt.Errorf("wal: after truncating before %d: %w", start, err)
	}
	return nil
}

func (l *Log) truncateFront(index uint64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	first, last := l.first.Load(), l.last.Load()
	if index <= first {
		return nil
	}
	if index > last+1 {
		return fmt.Errorf("wal: cannot truncate before %d: the last entry is %d", index, last)
	}
	if err := l.tw.TruncateFront(index); err != nil {
		return l.fail(fmt.Errorf("wal: truncating before %d: %w", index, err))
	}
	l.first.Store(index)
	if err := syncDir(l.cfg.Dir); err != nil {
		return l.fail(fmt.Errorf("wal: fsync of %s after truncating: %w", l.cfg.Dir, err))
	}
	if err := l.measureSegments(); err != nil {
		return fmt.Errorf("wal: after truncating before %d: %w", index, err)
	}
	return nil
}

// usable is ErrClosed after Close, the failure after a failed write or fsync, else nil.
func (l *Log) usable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// fail records the first write or fsync error, after which the log refuses appends: what
// reached the disk is unknown, so the process should restart and let Open repair the tail.
// It returns the recorded error.
func (l *Log) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		l.failed = fmt.Errorf("%w (the log refuses appends until cardinal restarts)", err)
		l.logger.Error("wal: write failure; refusing appends until restart", "err", err)
	}
	return l.failed
}

// Sync forces every entry appended so far to disk, whatever the fsync mode, for an entry
// that is the only copy of what it holds (a cluster handoff its sender has dropped). Under
// fsync: always Append has done it, and Sync returns at once.
func (l *Log) Sync() error {
	if err := l.usable(); err != nil {
		return err
	}
	if l.cfg.Fsync == FsyncAlways {
		return nil
	}
	return l.fsync()
}

// fsync makes what was written durable, the directory too when a segment file was created.
func (l *Log) fsync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	start := time.Now()
	err := l.opts.fsync(l.tw.Sync)
	if err == nil && l.dirDirty.Swap(false) {
		err = syncDir(l.cfg.Dir)
	}
	l.m.fsyncDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return l.fail(fmt.Errorf("wal: fsync: %w", err))
	}
	return nil
}

// Close writes and syncs the appends already queued, stops the log's goroutines and closes
// the segment file. Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.stopped
	l.syncer.Wait()
	var errs []error
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed == nil {
		errs = append(errs, l.fsync())
	}
	if err := l.tw.Close(); err != nil {
		errs = append(errs, fmt.Errorf("wal: closing: %w", err))
	}
	return errors.Join(errs...)
}
