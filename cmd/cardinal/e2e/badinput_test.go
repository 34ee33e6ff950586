package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// biWindow is the window length of the bad-input test's rule.
const biWindow = 15 * time.Second

// badRequest is one request the receiver must refuse, or accept without counting it.
type badRequest struct {
	name     string
	body     []byte
	headers  map[string]string // replacing the Remote Write 1.0 headers; "" removes one
	wantCode int
}

// rwBody marshals and snappy-encodes series as a Remote Write 1.0 body.
func rwBody(t testing.TB, series ...prompb.TimeSeries) []byte {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// postRaw posts body to url with the Remote Write 1.0 headers changed by headers and returns
// the status code and the answer's first line.
func postRaw(t testing.TB, url string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	line, _, _ := strings.Cut(string(b), "\n")
	return resp.StatusCode, line
}

// badRequests are every kind of bad input of the receiver contract, each with the status
// it must get. pod0 and pod1 are pods of the aggregated counter that exist by the time these
// are sent: the samples aimed at them must change nothing.
func badRequests(t testing.TB, now time.Time) []badRequest {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 40)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = 0x10 // a small decoded length, so the body is refused as corrupt, not as too large
	valid := rwBody(t, prompb.TimeSeries{Labels: labelSet("bi_unmatched", "k", "v"), Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}}})
	one := func(v float64, ts int64, ls ...prompb.Label) []byte {
		return rwBody(t, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}})
	}
	counter := func(pairs ...string) []prompb.Label { return labelSet("bi_requests_total", pairs...) }
	var tooMany []prompb.TimeSeries
	for i := range 101 {
		tooMany = append(tooMany, prompb.TimeSeries{Labels: counter("job", "api", "pod", fmt.Sprint("x", i)), Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}}})
	}
	wide := []string{"job", "api", "pod", "wide"}
	for i := range 9 {
		wide = append(wide, fmt.Sprintf("extra%d", i), "v")
	}
	ms := now.UnixMilli()
	return []badRequest{
		{"random_bytes", random, nil, 400},
		{"truncated_snappy", valid[:len(valid)-4], nil, 400},
		{"snappy_of_invalid_protobuf", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0x0f}), nil, 400},
		{"invalid_utf8_label_value", one(1, ms, counter("job", "api", "pod", "p\xff")...), nil, 400},
		{"empty_label_name", one(1, ms, append(counter("job", "api"), prompb.Label{Name: "", Value: "x"})...), nil, 400},
		{"duplicate_label_name", one(1, ms, append(counter("job", "api", "pod", "dup"), prompb.Label{Name: "pod", Value: "dup2"})...), nil, 400},
		{"sample_without_metric_name", one(1, ms, prompb.Label{Name: "job", Value: "api"}, prompb.Label{Name: "pod", Value: "nameless"}), nil, 400},
		{"nan_value_is_accepted_and_ignored", one(math.NaN(), ms, counter("job", "api", "pod", "pod0")...), nil, 204},
		{"inf_values_are_accepted_and_forwarded", rwBody(t, prompb.TimeSeries{Labels: labelSet("bi_odd_values", "k", "v"),
			Samples: []prompb.Sample{{Value: math.Inf(1), Timestamp: ms - 2000}, {Value: math.Inf(-1), Timestamp: ms - 1000}}}), nil, 204},
		{"timestamp_far_in_the_future_is_accepted_and_dropped", one(1e9, now.Add(time.Hour).UnixMilli(), counter("job", "api", "pod", "pod0")...), nil, 204},
		{"timestamp_zero_is_accepted_and_dropped", one(1e9, 0, counter("job", "api", "pod", "pod1")...), nil, 204},
		{"zstd_encoding", valid, map[string]string{"Content-Encoding": "zstd"}, 415},
		{"gzip_encoding", valid, map[string]string{"Content-Encoding": "gzip"}, 415},
		{"json_content_type", valid, map[string]string{"Content-Type": "application/json"}, 415},
		{"unknown_protobuf_message", valid, map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"}, 415},
		{"body_over_the_limit", bytes.Repeat([]byte{0x0a}, 80<<10), nil, 413},
		{"too_many_series", rwBody(t, tooMany...), nil, 413},
		{"too_many_labels", one(1, ms, counter(wide...)...), nil, 400},
		{"label_value_too_long", one(1, ms, counter("job", "api", "pod", strings.Repeat("p", 129))...), nil, 400},
	}
}

// newBIHistory is the good traffic: a counter over three pods (values are integers, so sums
// are exact), one more pod that ends with a stale marker, steps scrapes step apart.
func newBIHistory(start time.Time, step time.Duration, steps int) *syntheticHistory {
	h := newSyntheticHistory(start, step)
	for i := range steps {
		h.scrape()
		for p := range 4 {
			v := float64(100*p + i*(p+1))
			if p == 3 {
				if i > steps/2 {
					continue
				}
				if i == steps/2 {
					v = staleMarker
				}
			}
			h.counter(labelSet("bi_requests_total", "job", "api", "pod", fmt.Sprintf("pod%d", p)), v)
		}
	}
	return h
}

// TestBadInput_every_bad_request_gets_its_status_and_the_aggregate_stays_exact runs the real
// binary with a real Prometheus downstream and interleaves every kind of bad request of the
// receiver contract (and a slow-loris client) with good history. Each bad request must get
// its pinned status code, cardinal must keep serving, and the aggregated counter downstream
// must equal, at every window end, exactly what the good samples add up to.
func TestBadInput_every_bad_request_gets_its_status_and_the_aggregate_stays_exact(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
server:
  read_timeout: 2s
  max_request_bytes: 64KiB
  limits:
    max_series_per_request: 100
    max_labels_per_series: 10
    max_label_name_length: 64
    max_label_value_length: 128
aggregator:
  flush_interval: %s
  flush_delay: 2s
  unmatched: forward
downstream:
  remote_write:
    - url: %s
      name: downstream
      queue:
        min_backoff: 50ms
        max_backoff: 500ms
rules:
  - metric_name: bi_requests_total
    type: counter
    drop_labels: [pod]
`, biWindow, prom.WriteURL), "--aggregator.flush-tick=100ms")

	const (
		steps = 72
		step  = 5 * time.Second
	)
	now := time.Now()
	start := now.Truncate(biWindow).Add(-8 * time.Minute)
	h := newBIHistory(start, step, steps)
	bad := badRequests(t, now)

	// A slow-loris client: headers and half a body, then nothing. The server's read timeout
	// (2s) must end it while the good traffic below goes on.
	slow := startSlowLoris(t, card.WriteURL, rwBody(t, prompb.TimeSeries{Labels: labelSet("bi_requests_total", "job", "api", "pod", "slow"), Samples: []prompb.Sample{{Value: 1e6, Timestamp: now.UnixMilli()}}}))
	// And one that never finishes its headers.
	slowHeaders := startSlowHeaders(t, card.WriteURL)

	codes := map[string]int{}
	for i, req := range h.requests {
		if code, body, err := postRW(card.WriteURL, req); err != nil || code != http.StatusNoContent {
			t.Fatalf("good request %d: %d %q %v, want 204", i, code, body, err)
		}
		// From the third step on every pod has a baseline, so samples aimed at pod0 and pod1
		// meet existing series.
		if i >= 2 && i-2 < len(bad) {
			b := bad[i-2]
			code, msg := postRaw(t, card.WriteURL, b.body, b.headers)
			codes[b.name] = code
			if code != b.wantCode {
				t.Errorf("%s: status %d (%s), want %d", b.name, code, msg, b.wantCode)
			}
		}
	}
	if len(codes) != len(bad) {
		t.Fatalf("sent %d of %d bad requests: lengthen the history", len(codes), len(bad))
	}
	if code, line := slow.answer(t, 20*time.Second); code != http.StatusRequestTimeout {
		t.Errorf("slow-loris body: %d %q, want 408 once the 2s read timeout passed", code, line)
	}
	slowHeaders.waitClosed(t, 20*time.Second)

	// A body declaring 1GiB is refused from its headers, without cardinal reading it.
	if code := declareHugeBody(t, card.WriteURL); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body declaring 1GiB: %d, want 413 before the body is sent", code)
	}

	lastWindowEnd := ceilTime(h.lastScrape(), biWindow)
	eventually(t, 60*time.Second, "the last window downstream", func() (bool, error) {
		v := query(t, prom.URL, `min(timestamp(bi_requests_total))`, lastWindowEnd.Add(time.Minute))
		return v["{}"] >= float64(lastWindowEnd.Unix()), fmt.Errorf("newest aggregated sample at %v", v)
	})
	firstEmitted := ceilTime(start, biWindow).Add(biWindow)
	got := queryRange(t, prom.URL, `bi_requests_total`, firstEmitted, lastWindowEnd, biWindow)
	key := seriesKey(map[string]string{"__name__": "bi_requests_total", "job": "api"})
	if len(got) != 1 || got[key] == nil {
		t.Fatalf("aggregated series downstream: %v, want only %s (no series of a bad request may appear)", keys(got), key)
	}
	points := got[key]
	if want := int(lastWindowEnd.Sub(firstEmitted)/biWindow) + 1; len(points) != want {
		t.Errorf("%d window ends downstream, want %d", len(points), want)
	}
	for _, p := range points {
		if w := h.totalAt(p.T, ofMetric("bi_requests_total")); p.V != w {
			t.Errorf("at %s: %v, want %v", time.UnixMilli(p.T).UTC().Format(time.TimeOnly), p.V, w)
		}
	}
	eventually(t, 30*time.Second, "the forwarded +Inf and -Inf samples downstream", func() (bool, error) {
		odd := query(t, prom.URL, `count_over_time(bi_odd_values[1h])`, now)
		return odd[seriesKey(map[string]string{"k": "v"})] == 2, fmt.Errorf("count_over_time: %v, want 2", odd)
	})

	// cardinal kept serving and counted every refusal by its reason.
	if code, _, _ := httpGet(t, card.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready after the bad input: %d", code)
	}
	ms := scrapeCardinal(t, card.URL)
	counts := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cardinal_receiver_rejected_requests_total", []string{"reason", "malformed"}, 3},
		{"cardinal_receiver_rejected_requests_total", []string{"reason", "unsupported_media_type"}, 4},
		{"cardinal_receiver_rejected_requests_total", []string{"reason", "too_large"}, 2},
		{"cardinal_receiver_rejected_requests_total", []string{"reason", "too_many_series"}, 1},
		{"cardinal_receiver_rejected_requests_total", []string{"reason", "read_timeout"}, 1},
		{"cardinal_receiver_rejected_series_total", []string{"reason", "invalid_utf8"}, 1},
		{"cardinal_receiver_rejected_series_total", []string{"reason", "empty_label_name"}, 1},
		{"cardinal_receiver_rejected_series_total", []string{"reason", "duplicate_label_name"}, 1},
		{"cardinal_receiver_rejected_series_total", []string{"reason", "missing_metric_name"}, 1},
		{"cardinal_receiver_rejected_series_total", []string{"reason", "too_many_labels"}, 1},
		{"cardinal_receiver_rejected_series_total", []string{"reason", "label_value_too_long"}, 1},
		{"cardinal_aggregator_samples_dropped_total", []string{"reason", "nan"}, 1},
		{"cardinal_aggregator_samples_dropped_total", []string{"reason", "future"}, 1},
		{"cardinal_aggregator_samples_dropped_total", []string{"reason", "duplicate"}, 1},
		{"cardinal_downstream_samples_failed_total", nil, 0},
	}
	for _, c := range counts {
		if v, n := metricValue(ms, c.name, c.labels...); n == 0 || v != c.want {
			t.Errorf("%s%v = %v (%d series), want %v", c.name, c.labels, v, n, c.want)
		}
	}
}

// slowLoris is a client that sent headers and part of a body and then stalls.
type slowLoris struct {
	conn net.Conn
}

// startSlowLoris opens a connection to url's host and sends a POST with half of body.
func startSlowLoris(t testing.TB, url string, body []byte) *slowLoris {
	t.Helper()
	conn := dialURL(t, url)
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: cardinal\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := conn.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	return &slowLoris{conn: conn}
}

// answer reads the status line the server sent the slow client, waiting at most timeout.
func (s *slowLoris) answer(t testing.TB, timeout time.Duration) (int, string) {
	t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		t.Fatalf("slow client: no answer within %s: %v", timeout, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// slowHeaders is a client that never finishes its request headers.
type slowHeaders struct {
	conn net.Conn
}

func startSlowHeaders(t testing.TB, url string) *slowHeaders {
	t.Helper()
	conn := dialURL(t, url)
	if _, err := io.WriteString(conn, "POST /api/v1/write HTTP/1.1\r\nHost: cardinal\r\nContent-Type: applic"); err != nil {
		t.Fatal(err)
	}
	return &slowHeaders{conn: conn}
}

// waitClosed waits at most timeout for the server to close the connection.
func (s *slowHeaders) waitClosed(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, s.conn)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client that never finishes its headers still holds its connection after %s", timeout)
	}
}

// declareHugeBody sends headers declaring a 1GiB body and a few bytes of it, and returns the
// status of the answer.
func declareHugeBody(t testing.TB, url string) int {
	t.Helper()
	conn := dialURL(t, url)
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: cardinal\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\nabc", 1<<30)
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a body declaring 1GiB: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dialURL opens a TCP connection to the host of an http:// URL, closed when the test ends.
func dialURL(t testing.TB, url string) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	host, _, _ = strings.Cut(host, "/")
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestLimits_rule_cardinality_explosion_drops_only_that_rules_new_series: a rule with
// max_input_series: 2 sees three more pods appear. Only their samples are dropped (counted,
// and one log line names the rule); the two existing pods keep aggregating exactly, and
// another rule is untouched.
func TestLimits_rule_cardinality_explosion_drops_only_that_rules_new_series(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: 2s
downstream:
  remote_write:
    - url: %s
      queue: {min_backoff: 50ms, max_backoff: 500ms}
rules:
  - name: limited
    metric_name: rl_requests_total
    type: counter
    drop_labels: [pod]
    max_input_series: 2
  - name: free
    metric_name: rl_other_total
    type: counter
    drop_labels: [pod]
`, biWindow, prom.WriteURL), "--aggregator.flush-tick=100ms")

	const (
		steps     = 40
		step      = 5 * time.Second
		explosion = 10 // pods 2..4 of the limited rule appear at this step
	)
	h := newSyntheticHistory(time.Now().Truncate(biWindow).Add(-5*time.Minute), step)
	for i := range steps {
		h.scrape()
		for p := range 5 {
			if p >= 2 && i < explosion {
				continue
			}
			h.counter(labelSet("rl_requests_total", "job", "api", "pod", fmt.Sprint(p)), float64(10*p+i*(p+1)))
		}
		for p := range 3 {
			h.counter(labelSet("rl_other_total", "job", "api", "pod", fmt.Sprint(p)), float64(i*2))
		}
	}
	for i, req := range h.requests {
		if code, body, err := postRW(card.WriteURL, req); err != nil || code != http.StatusNoContent {
			t.Fatalf("request %d: %d %q %v, want 204: a rule's limit is no reason to refuse the request", i, code, body, err)
		}
	}
	// The limited rule aggregates only the two pods it saw before the explosion.
	admitted := map[string]func(counterSample) bool{
		"rl_requests_total": func(s counterSample) bool {
			return ofMetric("rl_requests_total")(s) && (s.labels["pod"] == "0" || s.labels["pod"] == "1")
		},
		"rl_other_total": ofMetric("rl_other_total"),
	}

	lastWindowEnd := ceilTime(h.lastScrape(), biWindow)
	eventually(t, 60*time.Second, "the last window of both rules downstream", func() (bool, error) {
		a := query(t, prom.URL, `min(timestamp(rl_requests_total))`, lastWindowEnd.Add(time.Minute))
		b := query(t, prom.URL, `min(timestamp(rl_other_total))`, lastWindowEnd.Add(time.Minute))
		end := float64(lastWindowEnd.Unix())
		return a["{}"] >= end && b["{}"] >= end, fmt.Errorf("newest aggregated samples at %v and %v", a, b)
	})
	firstEmitted := ceilTime(h.start, biWindow).Add(biWindow)
	for name, keep := range admitted {
		got := queryRange(t, prom.URL, name, firstEmitted, lastWindowEnd, biWindow)
		points := got[seriesKey(map[string]string{"__name__": name, "job": "api"})]
		if len(points) == 0 {
			t.Fatalf("%s: nothing downstream (%v)", name, keys(got))
		}
		for _, p := range points {
			if w := h.totalAt(p.T, keep); p.V != w {
				t.Errorf("%s at %s: %v, want %v", name, time.UnixMilli(p.T).UTC().Format(time.TimeOnly), p.V, w)
			}
		}
	}

	ms := scrapeCardinal(t, card.URL)
	if v, _ := metricValue(ms, "cardinal_aggregator_samples_dropped_total", "rule", "limited", "reason", "limit"); v != 3*(steps-explosion) {
		t.Errorf("limited rule's limit drops = %v, want %d (every sample of the three new pods)", v, 3*(steps-explosion))
	}
	if v, _ := metricValue(ms, "cardinal_aggregator_samples_dropped_total", "rule", "free", "reason", "limit"); v != 0 {
		t.Errorf("the other rule's limit drops = %v, want 0", v)
	}
	if v, _ := metricValue(ms, "cardinal_aggregator_input_series", "rule", "limited"); v != 2 {
		t.Errorf("limited rule's input series = %v, want 2", v)
	}
	eventually(t, 30*time.Second, "a log line naming the limited rule", func() (bool, error) {
		return strings.Contains(card.Log(), "rule cardinality limit reached"), nil
	})
	if n := strings.Count(card.Log(), "rule cardinality limit reached"); n != 1 || !strings.Contains(card.Log(), "rule=limited") {
		t.Errorf("%d limit log lines, want exactly 1 naming rule=limited within the minute:\n%s", n, grepLines(card.Log(), "limit"))
	}
}
