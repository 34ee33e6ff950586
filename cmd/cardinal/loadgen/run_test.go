package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// receiver is an httptest remote-write endpoint that decodes and counts what it gets.
type receiver struct {
	*httptest.Server
	status func(n int) int // status for the n-th request (from 1); nil: 204

	mu         sync.Mutex
	requests   int
	samples    int
	timestamps map[int64]int // samples per timestamp
	badHeaders int
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{status: status, timestamps: map[int64]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" ||
		r.Header.Get("Content-Type") != "application/x-protobuf" {
		rc.badHeaders++
	}
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			rc.samples++
			rc.timestamps[s.Timestamp]++
		}
	}
	rc.mu.Unlock()
	code := http.StatusNoContent
	if rc.status != nil {
		code = rc.status(n)
	}
	if code/100 != 2 {
		http.Error(w, "refused by test", code)
		return
	}
	w.WriteHeader(code)
}

// runJSON runs loadgen with args plus --url and --output json and decodes the report.
func runJSON(t *testing.T, url string, now func() time.Time, args ...string) (Report, error) {
	t.Helper()
	cfg := mustConfig(t, append(args, "--url="+url+"/api/v1/write", "--output=json")...)
	var out bytes.Buffer
	err := run(t.Context(), cfg, &out, now, "/proc")
	var rep Report
	if out.Len() > 0 {
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("report is not JSON: %v\n%s", jerr, out.String())
		}
	}
	return rep, err
}

func TestRun_rate_limit_bounds_the_samples_sent(t *testing.T) {
	rc := newReceiver(t, nil)
	const rate, perReq = 20000, 200
	rep, err := runJSON(t, rc.URL, time.Now, "--rate=20000", "--samples-per-request=200",
		"--duration=500ms", "--concurrency=4", "--metrics=2", "--series=500")
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	// A request is released only once the samples before it are due: within 0.5 s at most
	// rate·0.5 samples plus the one request that starts at the boundary.
	if upper := rate/2 + perReq; rc.samples > upper {
		t.Errorf("receiver got %d samples in a 0.5 s run at %d/s, want at most %d", rc.samples, rate, upper)
	}
	if lower := rate / 8; rc.samples < lower {
		t.Errorf("receiver got %d samples, want at least %d: the pacer starves the run", rc.samples, lower)
	}
	if rep.Samples != int64(rc.samples) || rep.Requests != int64(rc.requests) {
		t.Errorf("report says %d samples in %d requests, receiver counted %d in %d", rep.Samples, rep.Requests, rc.samples, rc.requests)
	}
	if rc.badHeaders > 0 {
		t.Errorf("%d requests without the remote-write 1.0 headers", rc.badHeaders)
	}
}

func TestRun_requests_bound_stops_after_exactly_that_many(t *testing.T) {
	rc := newReceiver(t, nil)
	rep, err := runJSON(t, rc.URL, time.Now, "--requests=7", "--samples-per-request=100", "--metrics=3", "--series=100", "--concurrency=3")
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 7 || rc.samples != 700 || rep.Samples != 700 {
		t.Fatalf("receiver got %d requests / %d samples, report %d samples; want 7 / 700", rc.requests, rc.samples, rep.Samples)
	}
	// 300 series per round in 3 requests: 7 requests are rounds 0, 1 and one request of round 2.
	if rep.Rounds != 3 || len(rc.timestamps) != 3 {
		t.Fatalf("rounds %d, distinct timestamps %d; want 3", rep.Rounds, len(rc.timestamps))
	}
}

func TestRun_history_sends_each_round_from_the_past_up_to_now(t *testing.T) {
	rc := newReceiver(t, nil)
	now := time.UnixMilli(testStartMs)
	rep, err := runJSON(t, rc.URL, func() time.Time { return now }, "--history=10m", "--interval=1m",
		"--metrics=2", "--series=50", "--samples-per-request=30", "--concurrency=4")
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.timestamps) != 11 {
		t.Fatalf("%d distinct timestamps, want 11 (10m of history at 1m, both ends)", len(rc.timestamps))
	}
	for k := range int64(11) {
		ts := testStartMs - 10*60_000 + k*60_000
		if rc.timestamps[ts] != 100 {
			t.Errorf("timestamp %d: %d samples, want 100", ts, rc.timestamps[ts])
		}
	}
	if rep.FirstTimestampMs != testStartMs-600_000 || rep.LastTimestampMs != testStartMs {
		t.Errorf("report timestamps %d..%d, want %d..%d", rep.FirstTimestampMs, rep.LastTimestampMs, testStartMs-600_000, testStartMs)
	}
}

func TestRun_counts_errors_by_status_code(t *testing.T) {
	rc := newReceiver(t, func(n int) int {
		switch {
		case n%5 == 0:
			return http.StatusServiceUnavailable
		case n%7 == 0:
			return http.StatusBadRequest
		}
		return http.StatusNoContent
	})
	rep, err := runJSON(t, rc.URL, time.Now, "--requests=35", "--samples-per-request=10", "--metrics=1", "--series=10", "--concurrency=1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors["503"] != 7 || rep.Errors["400"] != 4 || len(rep.Errors) != 2 {
		t.Fatalf("errors %v, want 503: 7 and 400: 4", rep.Errors)
	}
	if rep.Samples != (35-11)*10 || rep.SamplesAttempted != 350 {
		t.Fatalf("samples %d of %d attempted, want 240 of 350", rep.Samples, rep.SamplesAttempted)
	}
	if rep.ErrorExamples["503"] != "refused by test" {
		t.Errorf("503 example %q", rep.ErrorExamples["503"])
	}
}

func TestRun_fails_when_nothing_is_acknowledged(t *testing.T) {
	rc := newReceiver(t, func(int) int { return http.StatusInternalServerError })
	rep, err := runJSON(t, rc.URL, time.Now, "--requests=3", "--metrics=1", "--series=5")
	if !errors.Is(err, errNothingAccepted) {
		t.Fatalf("err = %v, want errNothingAccepted", err)
	}
	if rep.Errors["500"] != 3 {
		t.Fatalf("errors %v, want 500: 3", rep.Errors)
	}
}

func TestRun_reports_the_receiver_process(t *testing.T) {
	rc := newReceiver(t, nil)
	// The receiver is this test process: its CPU time and RSS are real and positive.
	rep, err := runJSON(t, rc.URL, time.Now, "--requests=200", "--metrics=10", "--series=1000",
		"--churn=0.1", "--interval=1m", "--pid="+strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Receiver
	if r == nil || r.RSSBytes <= 0 || r.PeakRSSBytes < r.RSSBytes {
		t.Fatalf("receiver report %+v: want RSS > 0 and peak >= RSS", r)
	}
	// 200 requests of 2000 samples = 40 rounds of 10k series. Each round replaces 100 pods x 10
	// metrics; the series replaced in the last 5 rounds (5 minutes at 1m) are not stale yet.
	if want := int64(10000 + 5*100*10); r.ActiveSeries != want {
		t.Fatalf("active series %d, want %d", r.ActiveSeries, want)
	}
}

func TestRun_refuses_remote_targets(t *testing.T) {
	for _, url := range []string{"http://10.1.2.3:9091/api/v1/write", "http://example.com/api/v1/write", "https://192.168.1.1/"} {
		err := Run(context.Background(), []string{"--url=" + url, "--requests=1"}, io.Discard)
		if !errors.Is(err, errRemoteTarget) {
			t.Errorf("%s: err = %v, want errRemoteTarget", url, err)
		}
	}
}
