package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// fuzzMaxRequestBytes is FuzzHandler's body limit.
const fuzzMaxRequestBytes = 1 << 16

// fuzzLimits are small so that the fuzzer reaches every limit.
func fuzzLimits() Limits {
	return Limits{MaxSeriesPerRequest: 32, MaxLabelsPerSeries: 12, MaxLabelNameLength: 40, MaxLabelValueLength: 80}
}

// FuzzHandler drives the whole receiver path (headers, body limit, snappy, decoding, limits,
// validation, the appender) with arbitrary bodies and headers. It checks that the status code
// is one of the contract's and is the right one, and, differentially against
// prompb.WriteRequest.Unmarshal plus validation, that exactly the valid series of a decodable
// request reach the appender, sorted and within the limits.
// body is sent as it is, or snappy-encoded first when wrap is set, so the fuzzer can work on
// protobuf directly. Seeds: testdata/fuzz/FuzzHandler, one per bad input of the receiver
// contract (kept small: the fuzzer minimises every new input it finds).
func FuzzHandler(f *testing.F) {
	// Headers chosen by index: what senders really send, and what they must not.
	encodings := []string{"snappy", "", "SNAPPY", "gzip", "zstd", "snappy, gzip"}
	contentTypes := []string{
		"application/x-protobuf", "", "application/x-protobuf;proto=prometheus.WriteRequest",
		"application/x-protobuf;proto=io.prometheus.write.v2.Request", "application/json",
		"application/x-protobuf;;==", "text/plain; charset=\xff",
	}
	app := &fuzzAppender{}
	h := NewHandler(app, HandlerOptions{MaxRequestBytes: fuzzMaxRequestBytes, Limits: fuzzLimits()}, nil, nil)
	f.Fuzz(func(t *testing.T, body []byte, wrap bool, enc, ct uint8) {
		sent := body
		if wrap {
			sent = snappy.Encode(nil, body)
		}
		encoding := encodings[int(enc)%len(encodings)]
		contentType := contentTypes[int(ct)%len(contentTypes)]
		req := httptest.NewRequest("POST", WritePath, bytes.NewReader(sent))
		setHeader(req.Header, "Content-Encoding", encoding)
		setHeader(req.Header, "Content-Type", contentType)
		app.reset()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		code := rec.Code
		if !slices.Contains([]int{204, 400, 413, 415}, code) {
			t.Fatalf("status %d (%q) is not in the receiver contract for a POST", code, rec.Body)
		}
		if strings.Count(strings.TrimSuffix(rec.Body.String(), "\n"), "\n") > 0 {
			t.Fatalf("answer is more than one line: %q", rec.Body)
		}
		accepted, v2 := acceptedHeaders(encoding, contentType)
		if (code == 415) != !accepted {
			t.Fatalf("encoding %q, content type %q: status %d", encoding, contentType, code)
		}
		if code == 415 {
			return
		}
		if hasWritten := rec.Header().Get(HeaderSamplesWritten) != ""; hasWritten != v2 {
			t.Fatalf("content type %q: -Written headers present: %v", contentType, hasWritten)
		}
		if len(sent) > fuzzMaxRequestBytes {
			if code != 413 {
				t.Fatalf("%d byte body over the %d byte limit: status %d", len(sent), fuzzMaxRequestBytes, code)
			}
			return
		}
		want, wantCode, ok := expectedOutcome(sent, v2)
		if !ok {
			return // the one input the Decoder refuses and gogo reads on from (see errPackedOverrun)
		}
		if code != wantCode {
			t.Fatalf("status %d (%q), want %d", code, rec.Body, wantCode)
		}
		if diff := diffRequests(want, app.series); diff != "" {
			t.Fatalf("appended series differ from gogo's valid series: %s", diff)
		}
		if v2 {
			c := countWritten(want)
			for h, n := range map[string]int{HeaderSamplesWritten: c.samples, HeaderHistogramsWritten: c.histograms, HeaderExemplarsWritten: c.exemplars} {
				if got := rec.Header().Get(h); got != fmt.Sprint(n) {
					t.Fatalf("%s: %q, want %d (status %d)", h, got, n, code)
				}
			}
		}
	})
}

// expectedOutcome decodes a body with snappy and gogo/protobuf, validates it as the Handler
// should, and returns the valid series and the status code. ok is false for the one input
// where the Decoder is deliberately stricter than gogo.
func expectedOutcome(sent []byte, v2 bool) (valid []prompb.TimeSeries, code int, ok bool) {
	n, err := snappy.DecodedLen(sent)
	if err != nil {
		return nil, 400, true
	}
	if n > fuzzMaxRequestBytes {
		return nil, 413, true
	}
	raw, err := snappy.Decode(nil, sent)
	if err != nil {
		return nil, 400, true
	}
	var req prompb.WriteRequest
	if v2 {
		if req, _, err = referenceV2(raw); err != nil {
			return nil, 400, true
		}
		if err := NewDecoder(0).UnmarshalV2(raw, &prompb.WriteRequest{}); err != nil && strings.Contains(err.Error(), "packed field element") {
			return nil, 0, false
		}
	} else {
		if err := req.Unmarshal(raw); err != nil {
			return nil, 400, true
		}
		if err := NewDecoder(0).Unmarshal(raw, &prompb.WriteRequest{}); errors.Is(err, errPackedOverrun) {
			return nil, 0, false
		}
	}
	limits := fuzzLimits()
	if len(req.Timeseries) > limits.MaxSeriesPerRequest {
		return nil, 413, true
	}
	code = 204
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		if v2 {
			if err := validateV2Series(ts); err != nil {
				code = 400
				continue
			}
		}
		if err := validateSeries(ts, limits.bounds()); err != nil {
			code = 400
			continue
		}
		valid = append(valid, *ts)
	}
	return valid, code, true
}

// acceptedHeaders reports whether the receiver must accept these headers, and whether as
// Remote Write 2.0.
func acceptedHeaders(encoding, contentType string) (ok, v2 bool) {
	if encoding != "" && !strings.EqualFold(encoding, "snappy") {
		return false, false
	}
	switch contentType {
	case "", "application/x-protobuf", "application/x-protobuf;proto=prometheus.WriteRequest":
		return true, false
	case "application/x-protobuf;proto=io.prometheus.write.v2.Request":
		return true, true
	}
	return false, false
}

func setHeader(h map[string][]string, k, v string) {
	if v != "" {
		h[k] = []string{v}
	}
}

// fuzzAppender keeps deep copies of what it is given.
type fuzzAppender struct {
	mu     sync.Mutex
	series []prompb.TimeSeries
}

func (a *fuzzAppender) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.series = nil
}

func (a *fuzzAppender) Append(_ context.Context, req *prompb.WriteRequest, _ []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ts := range req.Timeseries {
		a.series = append(a.series, deepCopySeries(ts))
	}
	return nil
}

// deepCopySeries copies every field of ts that the Handler passes on, out of the Decoder's
// buffers.
func deepCopySeries(ts prompb.TimeSeries) prompb.TimeSeries {
	var b []byte
	var err error
	if b, err = ts.Marshal(); err != nil {
		panic(err)
	}
	var c prompb.TimeSeries
	if err := c.Unmarshal(b); err != nil {
		panic(err)
	}
	return c
}
