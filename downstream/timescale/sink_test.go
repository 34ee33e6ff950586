package timescale

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream"
)

// New refuses what `cardinal check config` refuses, with the same message: both call
// Config.Validate's checks.
func TestNewRefusesWhatValidateRefuses(t *testing.T) {
	const dsn = "postgres://cardinal@127.0.0.1:5432/metrics"
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"missing_dsn", func(c *Config) { c.DSN = "" }, "timescaledb: dsn is required"},
		{"unparsable_dsn", func(c *Config) { c.DSN = "postgres://x:y@host:notaport/db" }, "timescaledb: dsn:"},
		{"negative_retention", func(c *Config) { c.Retention = setting.Duration(-time.Hour) }, "retention must not be negative"},
		{"zero_queue_bound", func(c *Config) { c.MaxQueueBytes = 0 }, "max_queue_bytes must be more than 0"},
		{"zero_batch_size", func(c *Config) { c.BatchSize = 0 }, "batch_size must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(dsn, tt.edit)
			s, err := New(context.Background(), cfg, nil, nil)
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if want := cfg.Validate(); want == nil || err.Error() != want.Error() {
				t.Errorf("New says %q, Validate says %q", err, want)
			}
		})
	}
	t.Run("password_not_in_error", func(t *testing.T) {
		_, err := New(context.Background(), testConfig("postgres://u:s3cret@host:notaport/db", nil), nil, nil)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %v reveals the password", err)
		}
	})
	t.Run("two_downstreams_with_one_name", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		named := func(name string) Config { return testConfig(dsn, func(c *Config) { c.Name = name }) }
		a, err := New(context.Background(), named("tsdb"), reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		if _, err := New(context.Background(), named("tsdb"), reg, nil); err == nil {
			t.Error("a second downstream with the same name registered its metrics")
		}
		b, err := New(context.Background(), named("other"), reg, nil)
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
	sized := downstream.NewQueue(1<<30, 1)
	sized.Push(batch)
	ts := newTestSink(t, dsn, func(c *Config) { c.MaxQueueBytes = setting.ByteSize(3 * sized.Bytes()) }, nil)

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
	// Past the bound (Full, so the receiver answers 503) acknowledged data is still queued:
	// only Shutdown drops.
	for range 2 {
		ts.Send(cloneSeries(batch))
	}
	if got := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropShutdown); got != 0 {
		t.Errorf("rows dropped = %v past the bound, want 0", got)
	}
	if got, want := ts.metric(t, "cardinal_timescale_queue_bytes"), float64(6*sized.Bytes()); got != want {
		t.Errorf("queue bytes = %v with six sends queued, want %v", got, want)
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
