package timescale

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRejectsBadOptions(t *testing.T) {
	const dsn = "postgres://cardinal@127.0.0.1:5432/metrics"
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"missing_dsn", Options{}, "dsn is required"},
		{"unparsable_dsn", Options{DSN: "postgres://x:y@host:notaport/db"}, "dsn:"},
		{"negative_retention", Options{DSN: dsn, Retention: -time.Hour}, "retention must not be negative"},
		{"min_backoff_above_max", Options{DSN: dsn, MinBackoff: time.Minute, MaxBackoff: time.Second}, "min_backoff (1m0s) must not exceed max_backoff (1s)"},
		{"negative_queue_bound", Options{DSN: dsn, MaxQueueBytes: -1}, "max_queue_bytes must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(context.Background(), tt.opts, nil, nil)
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
	t.Run("password_not_in_error", func(t *testing.T) {
		_, err := New(context.Background(), Options{DSN: "postgres://u:s3cret@host:notaport/db"}, nil, nil)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %v reveals the password", err)
		}
	})
	t.Run("two_downstreams_with_one_name", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		a, err := New(context.Background(), Options{Name: "tsdb", DSN: dsn}, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		if _, err := New(context.Background(), Options{Name: "tsdb", DSN: dsn}, reg, nil); err == nil {
			t.Error("a second downstream with the same name registered its metrics")
		}
		b, err := New(context.Background(), Options{Name: "other", DSN: dsn}, reg, nil)
		if err != nil {
			t.Fatalf("a second downstream with another name: %v", err)
		}
		b.Shutdown(context.Background())
	})
}

// With nothing listening, the sink still starts, keeps retrying, fills its queue, reports
// Full, and at shutdown says what it could not write.
func TestUnreachableDatabaseFillsQueueWithoutBlocking(t *testing.T) {
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=none sslmode=disable", freePort(t))
	batch := syntheticSeries("up", 100, 1_700_000_000_000, 0)
	ts := newTestSink(t, dsn, Options{MaxQueueBytes: 3 * int64(len(batch)) * seriesBytes(&batch[0])}, nil)

	waitFor(t, 10*time.Second, "a failed connection attempt", func() bool {
		return ts.metric(t, "cardinal_timescale_write_errors_total", "kind", "retryable") >= 2
	})
	for range 3 {
		if ts.Full() {
			t.Fatal("Full before the bound was reached")
		}
		ts.Send(cloneSeries(batch))
	}
	if !ts.Full() {
		t.Fatal("Full = false with the queue at its bound")
	}
	done := make(chan struct{})
	go func() {
		ts.Send(cloneSeries(batch)) // must not block
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a full queue")
	}
	// Past the soft bound (Full, so the receiver answers 503) acknowledged data is still
	// queued; only past twice the bound is a Send dropped.
	if got := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropQueueFull); got != 0 {
		t.Errorf("rows dropped with reason queue_full = %v just past the soft bound, want 0", got)
	}
	for range 3 {
		ts.Send(cloneSeries(batch))
	}
	if got := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropQueueFull); got != 100 {
		t.Errorf("rows dropped with reason queue_full = %v past the hard bound, want 100", got)
	}
	if ts.Mode() != "" {
		t.Errorf("Mode() = %q without a database", ts.Mode())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := ts.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "600 series not written") {
		t.Errorf("Shutdown = %v, want an error counting 600 series not written", err)
	}
	if got := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropShutdown); got != 600 {
		t.Errorf("rows dropped with reason shutdown = %v, want 600", got)
	}
	if got := ts.metric(t, "cardinal_timescale_queue_bytes"); got != 0 {
		t.Errorf("queue bytes after shutdown = %v, want 0", got)
	}
}
