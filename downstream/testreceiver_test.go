package downstream

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// reply is how the test downstream answers one request.
type reply struct {
	code   int
	header map[string]string
	body   string
	reset  bool // close the connection without answering
	hang   bool // answer nothing until the client gives up
}

// testDownstream is a remote write receiver whose answers a test scripts. It records the
// series of every request it accepts (2xx), in arrival order.
type testDownstream struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(attempt int) reply
	stop    chan struct{} // closed at the end of the test: hanging handlers return

	mu       sync.Mutex
	attempts int
	samples  []int // samples per request received, accepted or not
	accepted [][]prompb.TimeSeries
	headers  []http.Header
}

func newTestDownstream(t *testing.T, respond func(attempt int) reply) *testDownstream {
	d := &testDownstream{t: t, respond: respond, stop: make(chan struct{})}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	t.Cleanup(func() { close(d.stop) }) // runs first
	return d
}

func (d *testDownstream) url() string { return d.srv.URL + remotewrite.WritePath }

func (d *testDownstream) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	attempt := d.attempts
	d.attempts++
	d.headers = append(d.headers, r.Header.Clone())
	d.mu.Unlock()

	rep := reply{code: http.StatusNoContent}
	if d.respond != nil {
		rep = d.respond(attempt)
	}
	switch {
	case rep.reset:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			d.t.Error(err)
			return
		}
		_ = conn.Close()
		return
	case rep.hang:
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done():
		case <-d.stop:
		}
		return
	}

	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		d.t.Errorf("body is not snappy: %v", err)
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		d.t.Errorf("body is not a WriteRequest: %v", err)
	}
	d.mu.Lock()
	d.samples = append(d.samples, remotewrite.CountSamples(req.Timeseries))
	if rep.code/100 == 2 {
		d.accepted = append(d.accepted, req.Timeseries)
	}
	d.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.code)
	_, _ = io.WriteString(w, rep.body)
}

// acceptedSamples returns how many samples the downstream accepted.
func (d *testDownstream) acceptedSamples() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, req := range d.accepted {
		n += remotewrite.CountSamples(req)
	}
	return n
}

func (d *testDownstream) attemptCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attempts
}

// acceptedBySeries returns the timestamps the downstream accepted per series (by metric name),
// in arrival order.
func (d *testDownstream) acceptedBySeries() map[string][]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string][]int64{}
	for _, req := range d.accepted {
		for _, ts := range req {
			name := ts.Labels[0].Value
			for _, s := range ts.Samples {
				out[name] = append(out[name], s.Timestamp)
			}
		}
	}
	return out
}

// eventually polls cond until it holds, failing the test after timeout. It waits for a state,
// never asserts on how long something took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// lockedBuffer is an io.Writer safe for the concurrent writes of a logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
