package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writeTestCheckpoint(t *testing.T, l *Log, index uint64) {
	t.Helper()
	err := l.WriteCheckpoint(index, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "state at %d", index)
		return err
	})
	if err != nil {
		t.Fatalf("WriteCheckpoint(%d): %v", index, err)
	}
}

// checkLatest checks that LatestCheckpoint finds the one written at index, with its content.
func checkLatest(t *testing.T, l *Log, index uint64) {
	t.Helper()
	cp, ok, err := l.LatestCheckpoint()
	if err != nil || !ok {
		t.Fatalf("LatestCheckpoint: %v, found %v", err, ok)
	}
	if cp.Index != index {
		t.Fatalf("latest checkpoint is %d, want %d", cp.Index, index)
	}
	r, err := cp.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("state at %d", index); string(got) != want || cp.Size != int64(len(want)) {
		t.Fatalf("checkpoint %d holds %q (size %d), want %q", index, got, cp.Size, want)
	}
}

func checkpointIndexes(t *testing.T, dir string) []uint64 {
	t.Helper()
	indexes, err := listCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	return indexes
}

func TestCheckpointKeepsNewestAndPrevious(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	now := time.Unix(1700000000, 0)
	l := openTest(t, cfg, options{now: func() time.Time { return now }})
	if _, ok, err := l.LatestCheckpoint(); ok || err != nil {
		t.Fatalf("a new log has a checkpoint: %v %v", ok, err)
	}
	appendRange(t, l, 1, 30)
	for _, index := range []uint64{10, 20, 30} {
		writeTestCheckpoint(t, l, index)
	}
	if got := checkpointIndexes(t, cfg.Dir); !slices.Equal(got, []uint64{30, 20}) {
		t.Fatalf("checkpoints %v on disk, want 30 and 20", got)
	}
	checkLatest(t, l, 30)
	if got := testutil.ToFloat64(l.m.checkpointTime); got != 1700000000 {
		t.Errorf("cardinal_wal_checkpoint_last_timestamp_seconds %v", got)
	}
	if got := testutil.ToFloat64(l.m.checkpointBytes); got != float64(len("state at 30")) {
		t.Errorf("cardinal_wal_checkpoint_bytes %v", got)
	}
	closeTest(t, l)

	// Checkpoint files sit next to the segments; tidwall/wal and the repair scan ignore them.
	l = openTest(t, cfg, options{})
	defer closeTest(t, l)
	checkReplay(t, l, 1, 1, 30)
	checkLatest(t, l, 30)
	// A checkpoint written at an older index replaces newer ones: it is the current state.
	writeTestCheckpoint(t, l, 25)
	if got := checkpointIndexes(t, cfg.Dir); !slices.Equal(got, []uint64{25, 20}) {
		t.Fatalf("checkpoints %v on disk, want 25 and 20", got)
	}
}

func TestCorruptCheckpointFallsBackToPrevious(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"content_byte_flipped", func(t *testing.T, path string) { flipByte(t, path, 2) }},
		{"trailer_byte_flipped", func(t *testing.T, path string) { flipByte(t, path, fileSize(t, path)-1) }},
		{"cut_short", func(t *testing.T, path string) {
			if err := os.Truncate(path, fileSize(t, path)-5); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, FsyncAlways)
			l := openTest(t, cfg, options{})
			defer closeTest(t, l)
			writeTestCheckpoint(t, l, 10)
			writeTestCheckpoint(t, l, 20)
			tt.damage(t, filepath.Join(cfg.Dir, checkpointName(20)))
			checkLatest(t, l, 10)
			if got := testutil.ToFloat64(l.m.corruptCheckpoints); got != 1 {
				t.Errorf("cardinal_wal_corrupt_checkpoints_total %v, want 1", got)
			}
			// The next checkpoint keeps the one restored as its fallback, not the corrupt one
			// (which would leave none if the next were found corrupt too); the corrupt file
			// stays beside them for a look, out of the way.
			writeTestCheckpoint(t, l, 30)
			if got := checkpointIndexes(t, cfg.Dir); !slices.Equal(got, []uint64{30, 10}) {
				t.Errorf("checkpoints %v on disk after the next, want 30 and the restored 10", got)
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, checkpointName(20)+corruptSuffix)); err != nil {
				t.Errorf("the corrupt checkpoint was not set aside: %v", err)
			}
			// Both checkpoints kept found corrupt at the next start: none is left to
			// restore, and the newest is the one set aside.
			writeTestCheckpoint(t, l, 40)
			tt.damage(t, filepath.Join(cfg.Dir, checkpointName(40)))
			tt.damage(t, filepath.Join(cfg.Dir, checkpointName(30)))
			if cp, ok, err := l.LatestCheckpoint(); ok || err != nil {
				t.Fatalf("LatestCheckpoint with both corrupt: %d, found %v, %v", cp.Index, ok, err)
			}
			names, err := filepath.Glob(filepath.Join(cfg.Dir, "*"+corruptSuffix))
			if want := filepath.Join(cfg.Dir, checkpointName(40)+corruptSuffix); err != nil || len(names) != 1 || names[0] != want {
				t.Errorf("set aside: %v (%v), want only %s", names, err, want)
			}
		})
	}
}

func TestCheckpointReaderDetectsLaterDamage(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	defer closeTest(t, l)
	writeTestCheckpoint(t, l, 7)
	cp, ok, err := l.LatestCheckpoint()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	flipByte(t, filepath.Join(cfg.Dir, checkpointName(7)), 0)
	r, err := cp.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a checkpoint damaged after it was found: %v, want ErrCorrupt", err)
	}
}

func TestFailedCheckpointLeavesThePreviousOne(t *testing.T) {
	cfg := testConfig(t, FsyncAlways)
	l := openTest(t, cfg, options{})
	writeTestCheckpoint(t, l, 10)
	boom := errors.New("state encoder failed")
	err := l.WriteCheckpoint(20, func(w io.Writer) error {
		w.Write([]byte("half a state"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteCheckpoint: %v, want the writer's error", err)
	}
	checkLatest(t, l, 10)
	entries, _ := os.ReadDir(cfg.Dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == checkpointTempSuffix {
			t.Errorf("%s left behind", e.Name())
		}
	}
	closeTest(t, l)

	// A crash while writing leaves a temp file, which Open removes.
	tmp := filepath.Join(cfg.Dir, checkpointName(30)+checkpointTempSuffix)
	if err := os.WriteFile(tmp, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, cfg, options{})
	defer closeTest(t, l)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp checkpoint after Open: %v", err)
	}
	checkLatest(t, l, 10)
}
