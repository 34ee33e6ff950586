package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// recordingAppender keeps deep copies of what it is given and answers with err.
type recordingAppender struct {
	mu     sync.Mutex
	err    error
	series []prompb.TimeSeries
	calls  int
}

func (a *recordingAppender) Append(_ context.Context, req *prompb.WriteRequest, _ []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.err != nil {
		return a.err
	}
	for _, ts := range req.Timeseries {
		a.series = append(a.series, cloneSeries(ts))
	}
	return nil
}

func cloneSeries(ts prompb.TimeSeries) prompb.TimeSeries {
	c := prompb.TimeSeries{Samples: append([]prompb.Sample(nil), ts.Samples...)}
	for _, l := range ts.Labels {
		c.Labels = append(c.Labels, prompb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)})
	}
	return c
}

func encodeBody(t testing.TB, series ...prompb.TimeSeries) []byte {
	t.Helper()
	var e Encoder
	body, err := e.Encode(series)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(body)
}

func series(value float64, kv ...string) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: labels(kv...), Samples: []prompb.Sample{{Value: value, Timestamp: 1000}}}
}

func TestHandlerStatusCodes(t *testing.T) {
	valid := encodeBody(t, series(1, "__name__", "up", "job", "a"))
	rw1 := map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
	with := func(k, v string) map[string]string {
		h := map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	compressible := encodeBody(t, series(1, "__name__", "up", "big", strings.Repeat("a", 4<<10)))

	tests := []struct {
		name        string
		method      string
		headers     map[string]string
		body        io.Reader
		appenderErr error
		wantCode    int
		wantInBody  string
		wantAppends int
	}{
		{"valid_request_is_204", "POST", rw1, bytes.NewReader(valid), nil, 204, "", 1},
		{"missing_headers_mean_remote_write_1", "POST", nil, bytes.NewReader(valid), nil, 204, "", 1},
		{"explicit_rw1_proto_parameter_accepted", "POST", with("Content-Type", "application/x-protobuf;proto=prometheus.WriteRequest"), bytes.NewReader(valid), nil, 204, "", 1},
		{"encoding_name_is_case_insensitive", "POST", with("Content-Encoding", "Snappy"), bytes.NewReader(valid), nil, 204, "", 1},
		{"empty_request_is_204_without_append", "POST", rw1, bytes.NewReader(encodeBody(t)), nil, 204, "", 0},
		{"get_is_405", "GET", nil, nil, nil, 405, "POST", 0},
		{"put_is_405", "PUT", rw1, bytes.NewReader(valid), nil, 405, "POST", 0},
		{"zstd_is_415", "POST", with("Content-Encoding", "zstd"), bytes.NewReader(valid), nil, 415, "zstd", 0},
		{"gzip_is_415", "POST", with("Content-Encoding", "gzip"), bytes.NewReader(valid), nil, 415, "gzip", 0},
		{"unknown_proto_is_415", "POST", with("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v3.Request"), bytes.NewReader(valid), nil, 415, "protobuf message", 0},
		{"unknown_protobuf_message_is_415", "POST", with("Content-Type", "application/x-protobuf;proto=foo.Bar"), bytes.NewReader(valid), nil, 415, "foo.Bar", 0},
		{"json_is_415", "POST", with("Content-Type", "application/json"), bytes.NewReader(valid), nil, 415, "application/json", 0},
		{"unparsable_content_type_is_415", "POST", with("Content-Type", "application/x-protobuf;;=="), bytes.NewReader(valid), nil, 415, "Content-Type", 0},
		{"not_snappy_is_400", "POST", rw1, strings.NewReader("hello, world"), nil, 400, "snappy", 0},
		{"random_bytes_are_400", "POST", rw1, bytes.NewReader(randomBytes(7, 700)), nil, 400, "malformed", 0},
		{"truncated_snappy_is_400", "POST", rw1, bytes.NewReader(valid[:len(valid)-3]), nil, 400, "snappy", 0},
		{"nan_inf_and_stale_values_are_204", "POST", rw1, bytes.NewReader(encodeBody(t, prompb.TimeSeries{Labels: labels("__name__", "v"), Samples: []prompb.Sample{
			{Value: math.NaN(), Timestamp: 1}, {Value: math.Inf(1), Timestamp: 2}, {Value: math.Inf(-1), Timestamp: 3}, {Value: staleNaN, Timestamp: 4}}})), nil, 204, "", 1},
		{"timestamps_at_0_and_far_future_are_204", "POST", rw1, bytes.NewReader(encodeBody(t, prompb.TimeSeries{Labels: labels("__name__", "v"), Samples: []prompb.Sample{
			{Value: 1, Timestamp: 0}, {Value: 2, Timestamp: math.MaxInt64}}})), nil, 204, "", 1},
		{"snappy_but_not_protobuf_is_400", "POST", rw1, bytes.NewReader(snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0x0f})), nil, 400, "malformed", 0},
		{"declared_length_over_limit_is_413", "POST", rw1, bytes.NewReader(make([]byte, 2048)), nil, 413, "too large", 0},
		{"streamed_body_over_limit_is_413", "POST", rw1, io.MultiReader(bytes.NewReader(make([]byte, 4096))), nil, 413, "too large", 0},
		{"decoded_size_over_limit_is_413", "POST", rw1, bytes.NewReader(compressible), nil, 413, "decoded", 0},
		{"appender_unavailable_is_503", "POST", rw1, bytes.NewReader(valid), fmt.Errorf("queue full: %w", ErrUnavailable), 503, "queue full", 1},
		{"appender_invalid_series_is_400", "POST", rw1, bytes.NewReader(valid), fmt.Errorf("too old: %w", ErrInvalidSeries), 400, "too old", 1},
		{"appender_other_error_is_500", "POST", rw1, bytes.NewReader(valid), errors.New("disk on fire\nsecond line"), 500, "disk on fire second line", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &recordingAppender{err: tt.appenderErr}
			reg := prometheus.NewRegistry()
			h := NewHandler(app, HandlerOptions{MaxRequestBytes: 1024}, reg, nil)
			req := httptest.NewRequest(tt.method, WritePath, tt.body)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			body := rec.Body.String()
			if !strings.Contains(body, tt.wantInBody) {
				t.Errorf("body %q does not mention %q", body, tt.wantInBody)
			}
			if strings.Count(strings.TrimSuffix(body, "\n"), "\n") > 0 {
				t.Errorf("body is more than one line: %q", body)
			}
			if tt.wantCode == 405 && rec.Header().Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
			if app.calls != tt.wantAppends {
				t.Errorf("appender called %d times, want %d", app.calls, tt.wantAppends)
			}
			code := fmt.Sprint(tt.wantCode)
			if got := metricValue(t, reg, "cardinal_receiver_requests_total", map[string]string{"code": code}); got != 1 {
				t.Errorf("requests_total{code=%q} = %v, want 1", code, got)
			}
			if got := metricValue(t, reg, "cardinal_receiver_request_duration_seconds", nil); got != 1 {
				t.Errorf("request_duration_seconds count = %v, want 1", got)
			}
		})
	}
}

func TestHandlerAppendsValidSeriesOfARequestWithInvalidOnes(t *testing.T) {
	app := &recordingAppender{}
	reg := prometheus.NewRegistry()
	h := NewHandler(app, HandlerOptions{}, reg, nil)
	body := encodeBody(t,
		series(1, "__name__", "good_1"),
		series(2, "job", "nameless"),
		series(3, "__name__", "good_2", "a", "1", "a", "2"),
		series(4, "__name__", "good_3"),
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", PushPath, bytes.NewReader(body)))

	if rec.Code != 400 {
		t.Fatalf("status %d, want 400", rec.Code)
	}
	if msg := rec.Body.String(); !strings.Contains(msg, `job="nameless"`) || !strings.Contains(msg, "1 more invalid series") {
		t.Errorf("body %q should name the first invalid series and count the others", msg)
	}
	var names []string
	for _, ts := range app.series {
		names = append(names, ts.Labels[0].Value)
	}
	if fmt.Sprint(names) != "[good_1 good_3]" {
		t.Errorf("appended %v, want [good_1 good_3]", names)
	}
	for reason, want := range map[string]float64{"missing_metric_name": 1, "duplicate_label_name": 1} {
		if got := metricValue(t, reg, "cardinal_receiver_rejected_series_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("rejected{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got := metricValue(t, reg, "cardinal_receiver_samples_total", nil); got != 2 {
		t.Errorf("samples_total = %v, want 2", got)
	}
}

func TestHandlerSortsUnsortedLabels(t *testing.T) {
	app := &recordingAppender{}
	h := NewHandler(app, HandlerOptions{}, nil, nil)
	body := encodeBody(t, series(1, "zone", "eu", "__name__", "up", "instance", "i", "job", "j"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", WritePath, bytes.NewReader(body)))
	if rec.Code != 204 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := labels("__name__", "up", "instance", "i", "job", "j", "zone", "eu")
	if diff := diffRequests(want, app.series[0].Labels); diff != "" {
		t.Errorf("labels not sorted: %s (%v)", diff, app.series[0].Labels)
	}
}

// checkingAppender fails the test when a request's series do not all carry the request's own
// id, which would happen if pooled buffers were shared between concurrent requests.
type checkingAppender struct {
	t     *testing.T
	mu    sync.Mutex
	total int
}

func (a *checkingAppender) Append(_ context.Context, req *prompb.WriteRequest, _ []byte) error {
	id := req.Timeseries[0].Labels[1].Value
	for _, ts := range req.Timeseries {
		if ts.Labels[1].Value != id || fmt.Sprint(ts.Samples[0].Value) != id {
			a.t.Errorf("request %s holds series %v=%v", id, ts.Labels, ts.Samples)
		}
	}
	a.mu.Lock()
	a.total += len(req.Timeseries)
	a.mu.Unlock()
	return nil
}

func TestHandlerConcurrentRequestsDoNotShareBuffers(t *testing.T) {
	app := &checkingAppender{t: t}
	srv := httptest.NewServer(NewHandler(app, HandlerOptions{}, prometheus.NewRegistry(), nil))
	defer srv.Close()

	const workers, perWorker, seriesPerRequest = 8, 25, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range perWorker {
				id := fmt.Sprint(w*perWorker + r)
				var ss []prompb.TimeSeries
				for i := range seriesPerRequest + r { // sizes vary so buffers get reused at different lengths
					ss = append(ss, series(float64(w*perWorker+r), "__name__", fmt.Sprintf("m%d", i), "req", id))
				}
				resp, err := http.Post(srv.URL+WritePath, "application/x-protobuf", bytes.NewReader(encodeBody(t, ss...)))
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != 204 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	want := 0
	for r := range workers * perWorker {
		want += seriesPerRequest + r%perWorker
	}
	if app.total != want {
		t.Errorf("appended %d series, want %d", app.total, want)
	}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// countingReader is an endless body that counts what was read of it.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	clear(p)
	r.n += int64(len(p))
	return len(p), nil
}

// A body over the limit is refused with 413 after reading about the limit, not all of it:
// here it would never end.
func TestHandlerStopsReadingABodyOverTheLimit(t *testing.T) {
	const limit = 64 << 10
	body := &countingReader{}
	h := NewHandler(&recordingAppender{}, HandlerOptions{MaxRequestBytes: limit}, nil, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", WritePath, body))
	if rec.Code != 413 {
		t.Fatalf("status %d, want 413", rec.Code)
	}
	if body.n > 2*limit {
		t.Errorf("read %d bytes of an endless body with a %d byte limit", body.n, limit)
	}
}

// Lengths a client claims (Content-Length, the snappy header, a protobuf length prefix) must
// not make the receiver allocate them: a small hostile request costs a small, bounded amount.
func TestHandlerHostileLengthsDoNotAllocate(t *testing.T) {
	protobuf2GiB := append([]byte{0x0a}, appendVarint(nil, 2<<30)...)
	tests := []struct {
		name          string
		body          []byte
		contentLength int64
		wantCode      int
	}{
		{"content_length_claims_30MiB_of_a_tiny_body", []byte("tiny"), 30 << 20, 400},
		{"content_length_claims_2GiB", []byte("tiny"), 2 << 30, 413},
		{"snappy_header_claims_2GiB", append(appendVarint(nil, 2<<30), 0x00, 0x01), 0, 413},
		{"protobuf_length_prefix_claims_2GiB", snappy.Encode(nil, protobuf2GiB), 0, 400},
	}
	h := NewHandler(&recordingAppender{}, HandlerOptions{}, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			allocated := bytesAllocated(func() {
				req := httptest.NewRequest("POST", WritePath, bytes.NewReader(tt.body))
				if tt.contentLength > 0 {
					req.ContentLength = tt.contentLength
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				code = rec.Code
			})
			if code != tt.wantCode {
				t.Errorf("status %d, want %d", code, tt.wantCode)
			}
			// At most the 1MiB set aside for a declared length (plus the race detector's
			// overhead): nothing near what the request claims.
			if allocated > 4<<20 {
				t.Errorf("allocated %d bytes for a %d byte request", allocated, len(tt.body))
			}
		})
	}
}
