package downstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// testConfig is a remote_write entry named "test" for url, with the defaults of the file
// format and short backoffs.
func testConfig(url string) RemoteWriteConfig {
	cfg := DefaultRemoteWriteConfig()
	cfg.Name = "test"
	cfg.URL = url
	cfg.Queue.MinBackoff = setting.Duration(time.Millisecond)
	cfg.Queue.MaxBackoff = setting.Duration(5 * time.Millisecond)
	return cfg
}

// newTestClient returns a RemoteWrite for cfg with a short batch deadline, shut down at the
// end of the test.
func newTestClient(t *testing.T, cfg RemoteWriteConfig, reg prometheus.Registerer) *RemoteWrite {
	t.Helper()
	logger, _ := newTestLogger()
	c, err := NewRemoteWrite(cfg, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	c.s.batchWait = 5 * time.Millisecond
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Shutdown(ctx)
	})
	return c
}

// seriesBatch returns n single-sample series named s0..s(n-1) at timestamp ts.
func seriesBatch(n int, ts int64) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, n)
	for i := range out {
		out[i] = prompb.TimeSeries{
			Labels:  labels("__name__", fmt.Sprintf("s%d", i), "job", "test"),
			Samples: []prompb.Sample{{Value: float64(ts), Timestamp: ts}},
		}
	}
	return out
}

func TestRemoteWriteBatchesAtMostMaxSamplesPerSend(t *testing.T) {
	down := newTestDownstream(t, nil)
	cfg := testConfig(down.url())
	cfg.Queue.MaxSamplesPerSend, cfg.Queue.Shards = 100, 2
	c := newTestClient(t, cfg, prometheus.NewRegistry())

	c.Send(seriesBatch(1000, 1))
	long := prompb.TimeSeries{Labels: labels("__name__", "long")}
	for i := range 250 {
		long.Samples = append(long.Samples, prompb.Sample{Value: 1, Timestamp: int64(i)})
	}
	c.Send([]prompb.TimeSeries{long})
	c.Start()
	eventually(t, 10*time.Second, "all samples accepted", func() bool { return down.acceptedSamples() == 1250 })

	down.mu.Lock()
	defer down.mu.Unlock()
	full := 0
	for _, n := range down.samples {
		if n > 100 {
			t.Errorf("a request carried %d samples, limit is 100", n)
		}
		if n == 100 {
			full++
		}
	}
	// The 1000 single-sample series fill 10 requests, less the partial last one of each shard
	// (the 250 samples of "long" go one per request: see the next test).
	if full < 9 {
		t.Errorf("only %d of %d requests were full although everything was queued before Start", full, len(down.samples))
	}
	bySeries := map[string][]int64{}
	for _, req := range down.accepted {
		for _, ts := range req {
			for _, s := range ts.Samples {
				bySeries[ts.Labels[0].Value] = append(bySeries[ts.Labels[0].Value], s.Timestamp)
			}
		}
	}
	if !slices.IsSorted(bySeries["long"]) {
		t.Errorf("the 250-sample series arrived out of order")
	}
	if got := bySeries["long"]; len(got) != 250 || got[0] != 0 || got[249] != 249 {
		t.Errorf("the 250-sample series arrived as %d samples", len(got))
	}
}

func TestRemoteWriteSendsRemoteWrite1Headers(t *testing.T) {
	tests := []struct {
		name     string
		auth     func(cfg *RemoteWriteConfig, dir string)
		wantAuth string
	}{
		{"basic_auth", func(cfg *RemoteWriteConfig, _ string) {
			cfg.BasicAuth = &BasicAuth{Username: "u", Password: "p"}
		}, "Basic dTpw"},
		{"basic_auth_password_file", func(cfg *RemoteWriteConfig, dir string) {
			cfg.BasicAuth = &BasicAuth{Username: "u", PasswordFile: writeFile(t, dir, "pw", "p\n")}
		}, "Basic dTpw"},
		{"bearer_token", func(cfg *RemoteWriteConfig, _ string) { cfg.BearerToken = "tok" }, "Bearer tok"},
		{"bearer_token_file", func(cfg *RemoteWriteConfig, dir string) {
			cfg.BearerTokenFile = writeFile(t, dir, "token", "tok\n")
		}, "Bearer tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := newTestDownstream(t, nil)
			cfg := testConfig(down.url())
			tt.auth(&cfg, t.TempDir())
			cfg.Headers = map[string]string{"X-Scope-OrgID": "tenant-1"}
			c := newTestClient(t, cfg, nil)
			c.Start()
			c.Send(seriesBatch(1, 1))
			eventually(t, 5*time.Second, "the request", func() bool { return down.acceptedSamples() == 1 })

			h := down.headers[0]
			for k, want := range map[string]string{
				"Content-Encoding":                  "snappy",
				"Content-Type":                      "application/x-protobuf",
				"X-Prometheus-Remote-Write-Version": "0.1.0",
				"Authorization":                     tt.wantAuth,
				"X-Scope-Orgid":                     "tenant-1",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "cardinal/") {
				t.Errorf("User-Agent = %q", ua)
			}
		})
	}
}

func TestRemoteWritePreservesPerSeriesOrderThroughRetries(t *testing.T) {
	down := newTestDownstream(t, func(attempt int) reply {
		if attempt%3 == 1 {
			return reply{code: http.StatusInternalServerError}
		}
		return reply{code: http.StatusOK}
	})
	cfg := testConfig(down.url())
	cfg.Queue.MaxSamplesPerSend, cfg.Queue.Shards = 7, 4
	c := newTestClient(t, cfg, nil)
	c.Start()
	const rounds, width = 60, 20
	for ts := range int64(rounds) {
		c.Send(seriesBatch(width, ts))
	}
	eventually(t, 10*time.Second, "all samples accepted", func() bool { return down.acceptedSamples() == rounds*width })

	for name, got := range down.acceptedBySeries() {
		if len(got) != rounds {
			t.Errorf("%s: %d samples, want %d", name, len(got), rounds)
		}
		for i, ts := range got {
			if ts != int64(i) {
				t.Fatalf("%s: sample %d has timestamp %d: out of order or duplicated (%v)", name, i, ts, got)
			}
		}
	}
}

func TestRemoteWriteRetriesUntilAccepted(t *testing.T) {
	tests := []struct {
		name    string
		failure reply
		timeout time.Duration
	}{
		{"server_error_500", reply{code: 500, body: "try again"}, 0},
		{"too_many_requests_429", reply{code: 429}, 0},
		{"unavailable_503_with_retry_after", reply{code: 503, header: map[string]string{"Retry-After": "0"}}, 0},
		{"connection_reset", reply{reset: true}, 0},
		{"request_timeout", reply{hang: true}, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const failures = 3
			down := newTestDownstream(t, func(attempt int) reply {
				if attempt < failures {
					return tt.failure
				}
				return reply{code: 204}
			})
			reg := prometheus.NewRegistry()
			cfg := testConfig(down.url())
			cfg.Queue.Shards = 1
			if tt.timeout > 0 {
				cfg.Timeout = setting.Duration(tt.timeout)
			}
			c := newTestClient(t, cfg, reg)
			c.Send(seriesBatch(10, 1))
			c.Start()
			ds := map[string]string{"downstream": "test"}
			// The downstream counts a batch before it answers; the client counts it sent
			// once it has read the answer: wait for both.
			eventually(t, 10*time.Second, "the batch accepted and acknowledged", func() bool {
				return down.acceptedSamples() >= 10 && metricValue(t, reg, "cardinal_downstream_samples_sent_total", ds) >= 10
			})

			if got := down.acceptedBySeries(); len(got) != 10 {
				t.Errorf("%d series accepted, want 10", len(got))
			}
			for name, ts := range down.acceptedBySeries() {
				if len(ts) != 1 {
					t.Errorf("%s accepted %d times", name, len(ts))
				}
			}
			if n := down.attemptCount(); n != failures+1 {
				t.Errorf("%d attempts, want %d", n, failures+1)
			}
			if got := metricValue(t, reg, "cardinal_downstream_samples_retried_total", ds); got != failures*10 {
				t.Errorf("retried = %v, want %v", got, failures*10)
			}
			if got := metricValue(t, reg, "cardinal_downstream_samples_sent_total", ds); got != 10 {
				t.Errorf("sent = %v, want 10", got)
			}
		})
	}
}

func TestRemoteWriteHonoursRetryAfter(t *testing.T) {
	// With backoffs of an hour, only Retry-After: 1 lets the retry happen within the test.
	down := newTestDownstream(t, func(attempt int) reply {
		if attempt == 0 {
			return reply{code: 429, header: map[string]string{"Retry-After": "1"}}
		}
		return reply{code: 204}
	})
	cfg := testConfig(down.url())
	cfg.Queue.MinBackoff, cfg.Queue.MaxBackoff = setting.Duration(time.Hour), setting.Duration(time.Hour)
	c := newTestClient(t, cfg, nil)
	c.Start()
	c.Send(seriesBatch(1, 1))
	eventually(t, 10*time.Second, "the retry honouring Retry-After", func() bool { return down.acceptedSamples() == 1 })
}

func TestRemoteWriteDropsAndCountsRefusedBatches(t *testing.T) {
	down := newTestDownstream(t, func(int) reply {
		return reply{code: 400, body: "out of order sample\nsecond line of detail"}
	})
	reg := prometheus.NewRegistry()
	logger, logs := newTestLogger()
	cfg := testConfig(down.url())
	cfg.Queue.Shards = 1
	c, err := NewRemoteWrite(cfg, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	c.s.batchWait = time.Millisecond
	c.Start()
	c.Send(seriesBatch(10, 1))
	ds := map[string]string{"downstream": "test"}
	eventually(t, 5*time.Second, "the failure counted", func() bool {
		return metricValue(t, reg, "cardinal_downstream_samples_failed_total", ds) == 10
	})
	c.Send(seriesBatch(5, 2))
	eventually(t, 5*time.Second, "the second failure counted", func() bool {
		return metricValue(t, reg, "cardinal_downstream_samples_failed_total", ds) == 15
	})
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	down.mu.Lock()
	received := 0
	for _, n := range down.samples {
		received += n
	}
	down.mu.Unlock()
	if received != 15 {
		t.Errorf("the downstream received %d samples, want each of the 15 once: refused batches are not retried", received)
	}
	if got := metricValue(t, reg, "cardinal_downstream_samples_retried_total", ds); got != 0 {
		t.Errorf("retried = %v, want 0", got)
	}
	out := logs.String()
	if !strings.Contains(out, "out of order sample") || strings.Contains(out, "second line") {
		t.Errorf("log should carry the first line of the response only: %s", out)
	}
	if n := strings.Count(out, "downstream refused"); n != 1 {
		t.Errorf("%d refusal log lines within the rate limit interval, want 1", n)
	}
}

func TestRemoteWriteFullFlipsAndRecovers(t *testing.T) {
	down := newTestDownstream(t, nil)
	reg := prometheus.NewRegistry()
	one := seriesBatch(1, 1)
	perSeries := seriesBytes(&one[0])
	cfg := testConfig(down.url())
	cfg.Queue.MaxBytes = setting.ByteSize(5 * perSeries)
	c := newTestClient(t, cfg, reg)
	ds := map[string]string{"downstream": "test"}

	c.Send(seriesBatch(4, 1))
	if c.Full() {
		t.Fatal("Full with 4 of 5 series queued")
	}
	c.Send(seriesBatch(1, 2))
	if !c.Full() {
		t.Fatal("not Full with the limit reached")
	}
	if got := metricValue(t, reg, "cardinal_downstream_queue_full", ds); got != 1 {
		t.Errorf("queue_full = %v, want 1", got)
	}
	c.Send(seriesBatch(3, 3)) // still queued, and counted
	if got := metricValue(t, reg, "cardinal_downstream_samples_over_limit_total", ds); got != 3 {
		t.Errorf("over_limit = %v, want 3", got)
	}
	if got := metricValue(t, reg, "cardinal_downstream_queue_series", ds); got != 8 {
		t.Errorf("queue_series = %v, want 8", got)
	}

	c.Start()
	eventually(t, 5*time.Second, "the queue drained", func() bool { return !c.Full() && down.acceptedSamples() == 8 })
	eventually(t, 5*time.Second, "the gauges back to zero", func() bool {
		return metricValue(t, reg, "cardinal_downstream_queue_full", ds) == 0 &&
			metricValue(t, reg, "cardinal_downstream_queue_bytes", ds) == 0 &&
			metricValue(t, reg, "cardinal_downstream_queue_series", ds) == 0
	})
}

func TestRemoteWriteShutdownDrainsTheQueue(t *testing.T) {
	down := newTestDownstream(t, func(attempt int) reply {
		if attempt%2 == 0 {
			return reply{code: 503}
		}
		return reply{code: 204}
	})
	reg := prometheus.NewRegistry()
	cfg := testConfig(down.url())
	cfg.Queue.MaxSamplesPerSend = 50
	c := newTestClient(t, cfg, reg)
	c.s.batchWait = time.Hour
	c.Start()
	for ts := range int64(10) {
		c.Send(seriesBatch(100, ts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := down.acceptedSamples(); got != 1000 {
		t.Errorf("accepted %d samples before Shutdown returned, want 1000", got)
	}

	c.Send(seriesBatch(7, 99))
	ds := map[string]string{"downstream": "test", "reason": "shutdown"}
	if got := metricValue(t, reg, "cardinal_downstream_samples_dropped_total", ds); got != 7 {
		t.Errorf("dropped after shutdown = %v, want 7", got)
	}
}

func TestRemoteWriteShutdownGivesUpWhenItsContextEnds(t *testing.T) {
	tests := []struct {
		name  string
		reply reply
		edit  func(*RemoteWriteConfig)
	}{
		{"downstream_keeps_failing", reply{code: 503}, func(*RemoteWriteConfig) {}},
		{"request_in_flight_forever", reply{hang: true}, func(cfg *RemoteWriteConfig) { cfg.Timeout = setting.Duration(time.Hour) }},
		{"long_retry_after", reply{code: 429, header: map[string]string{"Retry-After": "3600"}}, func(*RemoteWriteConfig) {}},
		{"long_backoff", reply{code: 500}, func(cfg *RemoteWriteConfig) {
			cfg.Queue.MinBackoff, cfg.Queue.MaxBackoff = setting.Duration(time.Hour), setting.Duration(time.Hour)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := newTestDownstream(t, func(int) reply { return tt.reply })
			reg := prometheus.NewRegistry()
			cfg := testConfig(down.url())
			tt.edit(&cfg)
			c := newTestClient(t, cfg, reg)
			c.Send(seriesBatch(100, 1))
			c.Start()
			eventually(t, 5*time.Second, "a first attempt", func() bool { return down.attemptCount() > 0 })

			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Shutdown(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown did not return after its context ended")
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "100 samples") {
				t.Errorf("Shutdown error = %v, want the 100 undelivered samples and DeadlineExceeded", err)
			}
			ds := map[string]string{"downstream": "test"}
			if got := metricValue(t, reg, "cardinal_downstream_samples_dropped_total", map[string]string{"downstream": "test", "reason": "shutdown"}); got != 100 {
				t.Errorf("dropped = %v, want 100", got)
			}
			if got := metricValue(t, reg, "cardinal_downstream_queue_bytes", ds); got != 0 {
				t.Errorf("queue_bytes = %v after Shutdown, want 0", got)
			}
		})
	}
}

func TestRemoteWriteShutdownWithoutStart(t *testing.T) {
	c := newTestClient(t, testConfig("http://127.0.0.1:1/api/v1/write"), nil)
	if err := c.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of an idle client: %v", err)
	}
	c2 := newTestClient(t, testConfig("http://127.0.0.1:1/api/v1/write"), nil)
	c2.Send(seriesBatch(3, 1))
	if err := c2.Shutdown(context.Background()); err == nil || !strings.Contains(err.Error(), "3 samples") {
		t.Errorf("Shutdown of a never-started client holding data = %v, want an error counting 3 samples", err)
	}
}

func TestRemoteWriteLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		down := newTestDownstream(t, func(attempt int) reply {
			if attempt == 0 {
				return reply{reset: true}
			}
			return reply{code: 204}
		})
		defer down.srv.Close()
		cfg := testConfig(down.url())
		cfg.Queue.Shards = 8
		c, err := NewRemoteWrite(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		c.Send(seriesBatch(200, 1))
		eventually(t, 5*time.Second, "delivery", func() bool { return down.acceptedSamples() == 200 })
		if err := c.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}()
	eventually(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

func TestRemoteWriteNeverRevealsCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens: every attempt is a network error

	reg := prometheus.NewRegistry()
	logger, logs := newTestLogger()
	cfg := testConfig("http://alice:s3cr3tpw@" + addr + "/api/v1/write?api_key=k3y")
	cfg.Name = "secret-test"
	c, err := NewRemoteWrite(cfg, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	c.s.batchWait = time.Millisecond
	c.Start()
	c.Send(seriesBatch(1, 1))
	eventually(t, 5*time.Second, "a retry", func() bool {
		return metricValue(t, reg, "cardinal_downstream_samples_retried_total", map[string]string{"downstream": "secret-test"}) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	shutdownErr := c.Shutdown(ctx)

	out := logs.String() + fmt.Sprint(shutdownErr)
	if !strings.Contains(out, "sending to downstream failed") {
		t.Fatalf("expected the failure to be logged: %s", out)
	}
	for _, secret := range []string{"s3cr3tpw", "alice", "k3y"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q appears in logs or errors: %s", secret, out)
		}
	}

	_, err = NewRemoteWrite(testConfig("http://alice:s3cr3tpw@host:badport/"), nil, nil)
	if err == nil || strings.Contains(err.Error(), "s3cr3tpw") {
		t.Errorf("invalid URL error = %v: want an error without the password", err)
	}
}

// NewRemoteWrite refuses what `cardinal check config` refuses, with the same message: the
// constructor and the check both call RemoteWriteConfig.Validate.
func TestNewRemoteWriteRefusesWhatValidateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*RemoteWriteConfig)
		wantErr string
	}{
		{"no_url", func(c *RemoteWriteConfig) { c.URL = "" }, "remote_write: url is required"},
		{"not_http", func(c *RemoteWriteConfig) { c.URL = "ftp://host/x" }, "is not an http:// or https:// URL"},
		{"basic_auth_and_bearer_token", func(c *RemoteWriteConfig) {
			c.BasicAuth, c.BearerToken = &BasicAuth{Username: "u"}, "t"
		}, "mutually exclusive"},
		{"authorization_header", func(c *RemoteWriteConfig) { c.Headers = map[string]string{"authorization": "x"} }, "set Authorization with basic_auth"},
		{"reserved_header", func(c *RemoteWriteConfig) { c.Headers = map[string]string{"content-encoding": "zstd"} }, "Content-Encoding is set by cardinal"},
		{"zero_queue_size", func(c *RemoteWriteConfig) { c.Queue.MaxBytes = 0 }, "queue.max_bytes must be more than 0"},
		{"min_backoff_above_max", func(c *RemoteWriteConfig) {
			c.Queue.MinBackoff, c.Queue.MaxBackoff = setting.Duration(time.Second), setting.Duration(time.Millisecond)
		}, "queue.max_backoff 1ms is shorter than min_backoff 1s"},
		{"too_many_shards", func(c *RemoteWriteConfig) { c.Queue.Shards = 100000 }, "queue.shards must be at most 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://h/api/v1/write")
			tt.edit(&cfg)
			_, err := NewRemoteWrite(cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if want := cfg.Validate(); want == nil || err.Error() != want.Error() {
				t.Errorf("NewRemoteWrite says %q, Validate says %q", err, want)
			}
		})
	}
	t.Run("missing_bearer_token_file", func(t *testing.T) {
		cfg := testConfig("http://h/api/v1/write")
		cfg.BearerTokenFile = filepath.Join(t.TempDir(), "absent")
		if _, err := NewRemoteWrite(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "bearer_token_file") {
			t.Errorf("err = %v, want one naming bearer_token_file", err)
		}
	})
}

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A request never holds two samples of one series: were it acknowledged and sent again
// after a crash, Prometheus would refuse the older one, and the whole request with it.
func TestRemoteWriteSendsOneSamplePerSeriesPerRequest(t *testing.T) {
	down := newTestDownstream(t, nil)
	cfg := testConfig(down.url())
	cfg.Queue.MaxSamplesPerSend, cfg.Queue.Shards = 100, 1
	c := newTestClient(t, cfg, prometheus.NewRegistry())
	// With a WAL, as cardinal runs it: deliveries are tracked.
	c.TrackDelivery(&fakeDelivery{marks: map[uint64]int64{}})
	for ts := range int64(5) { // five windows closed by one flush
		c.Send(seriesBatch(30, ts))
	}
	c.Start()
	eventually(t, 10*time.Second, "all samples accepted", func() bool { return down.acceptedSamples() == 150 })

	down.mu.Lock()
	defer down.mu.Unlock()
	last := map[string]int64{}
	for i, req := range down.accepted {
		inRequest := map[string]bool{}
		for _, ts := range req {
			name := ts.Labels[0].Value
			if inRequest[name] || len(ts.Samples) != 1 {
				t.Fatalf("request %d holds series %s twice or with %d samples", i, name, len(ts.Samples))
			}
			inRequest[name] = true
			if prev, ok := last[name]; ok && ts.Samples[0].Timestamp <= prev {
				t.Errorf("series %s: %d after %d", name, ts.Samples[0].Timestamp, prev)
			}
			last[name] = ts.Samples[0].Timestamp
		}
	}
	if len(down.accepted) != 5 {
		t.Errorf("%d requests for 5 windows of 30 series: repeats should be looked past to fill each request with one window", len(down.accepted))
	}
}
