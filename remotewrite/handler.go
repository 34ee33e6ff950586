package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// ErrUnavailable is what an Appender returns (wrapped) when it cannot take data now but will
// later, e.g. because a downstream queue is full. The receiver answers 503, which Prometheus
// senders retry; it never answers 429, which they drop by default.
var ErrUnavailable = errors.New("temporarily unavailable")

// ErrUnsupportedMediaType is returned (wrapped) for a body in a compression or message format
// the receiver does not speak, such as zstd. The receiver answers 415.
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// The paths Prometheus senders post to; mount the Handler on both.
const (
	WritePath = "/api/v1/write"
	PushPath  = "/api/v1/push"
)

// maxUpfrontBodyBytes is what a Handler allocates before the body arrives, whatever
// Content-Length claims.
const maxUpfrontBodyBytes = 1 << 20

// Appender takes the decoded, validated series of one request. body is the request's
// snappy-compressed body when req holds every series of it (none was refused), so an
// Appender that logs requests can keep the body instead of encoding req again; it is nil
// otherwise. The request, body and every string in them are valid only during the call: an
// Appender copies what it keeps. It returns an error wrapping ErrUnavailable for "retry
// later" (503), ErrInvalidSeries for data that will never be accepted (400); anything else is
// a 500.
type Appender interface {
	Append(ctx context.Context, req *prompb.WriteRequest, body []byte) error
}

// HandlerOptions tune a Handler.
type HandlerOptions struct {
	// MaxRequestBytes bounds a body both as sent and once snappy-decoded; larger requests get
	// 413. Zero means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// Limits bound the series of a request and their labels; zero fields mean no limit.
	Limits Limits
	// MemoryGuard, when set, is asked before each request is read: over its threshold the
	// request is refused with 503 without reading its body.
	MemoryGuard *MemoryGuard
}

// Handler is the remote-write receiver, 1.0 and 2.0 on one endpoint told apart by
// Content-Type: it decodes and validates requests, hands them to an Appender (2.0 as 1.0
// types) and answers with the Prometheus status-code contract (204, 400, 405, 408, 413,
// 415, 500, 503), with the X-Prometheus-Remote-Write-*-Written headers on every answer to
// a 2.0 request after negotiation. It is safe for concurrent use.
type Handler struct {
	app      Appender
	maxBytes int64
	limits   Limits
	memory   *MemoryGuard
	logger   *slog.Logger
	metrics  *receiverMetrics
	scratch  *scratchPool
}

// NewHandler returns a receiver that appends to app, registering its metrics with reg (none
// if nil) and logging to logger (discarded if nil).
func NewHandler(app Appender, opts HandlerOptions, reg prometheus.Registerer, logger *slog.Logger) *Handler {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		app:      app,
		maxBytes: opts.MaxRequestBytes,
		limits:   opts.Limits,
		memory:   opts.MemoryGuard,
		logger:   logger,
		metrics:  newReceiverMetrics(reg),
	}
	maxDecoded := int(min(opts.MaxRequestBytes, int64(^uint(0)>>1)))
	h.scratch = newScratchPool(func() *requestScratch {
		s := &requestScratch{dec: Decoder{maxDecodedBytes: maxDecoded}}
		s.dec.SetLimits(opts.Limits)
		return s
	})
	return h
}

// ServeHTTP handles one remote write request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code, reason, msg := h.handle(w, r)
	if code == http.StatusNoContent {
		w.WriteHeader(code)
	} else {
		http.Error(w, oneLine(msg), code)
		h.logger.Debug("remote write request refused", "code", code, "reason", oneLine(msg), "remote", r.RemoteAddr)
	}
	if reason != "" {
		h.metrics.rejectedRequests.WithLabelValues(reason).Inc()
	}
	h.metrics.observe(code, time.Since(start))
}

// handle does the work of ServeHTTP and returns the status code and, for errors, the reason
// counted in cardinal_receiver_rejected_requests_total (empty when the request was taken,
// even if some of its series were not) and a one-line message.
func (h *Handler) handle(w http.ResponseWriter, r *http.Request) (code int, reason, msg string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return http.StatusMethodNotAllowed, reasonMethod, fmt.Sprintf("method %s not allowed: remote write uses POST", r.Method)
	}
	proto, err := checkContentHeaders(r.Header)
	if err != nil {
		return http.StatusUnsupportedMediaType, reasonMediaType, err.Error()
	}
	// A 2.0 sender reads what was written from headers on every answer after negotiation;
	// a 2xx without them means a 1.0 receiver, and its data not written.
	var written writtenCounts
	if proto == protoV2 {
		defer func() { written.set(w.Header()) }()
	}
	if r.ContentLength > h.maxBytes {
		return http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("%v: body is %d bytes, limit is %d", ErrRequestTooLarge, r.ContentLength, h.maxBytes)
	}
	if h.memory != nil {
		if err := h.memory.Check(); err != nil {
			return http.StatusServiceUnavailable, reasonMemory, err.Error()
		}
	}

	s := h.scratch.get()
	defer h.scratch.put(s)

	body, err := readBody(http.MaxBytesReader(w, r.Body, h.maxBytes), s.body[:0], r.ContentLength)
	s.body = body
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("%v: body exceeds %d bytes", ErrRequestTooLarge, h.maxBytes)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The server's read timeout ended a client that sends too slowly.
			return http.StatusRequestTimeout, reasonReadTimeout, fmt.Sprintf("reading body: %v", err)
		}
		return http.StatusBadRequest, reasonReadError, fmt.Sprintf("reading body: %v", err)
	}
	decode := s.dec.Decode
	if proto == protoV2 {
		decode = s.dec.DecodeV2
	}
	if err := decode(body, &s.req); err != nil {
		switch {
		case errors.Is(err, ErrTooManySeries):
			return http.StatusRequestEntityTooLarge, reasonTooManySeries, err.Error()
		case errors.Is(err, ErrRequestTooLarge):
			return http.StatusRequestEntityTooLarge, reasonTooLarge, err.Error()
		}
		return http.StatusBadRequest, reasonMalformed, err.Error()
	}

	var firstInvalid error
	facts := decodedFacts{labels: s.dec.facts, raw: s.dec.raw}
	if proto == protoV2 {
		facts.v2 = true
	}
	invalid, samples := removeInvalid(&s.req, h.limits, facts, func(err error) {
		if firstInvalid == nil {
			firstInvalid = err
		}
		h.metrics.rejectedSeries.WithLabelValues(rejectReason(err)).Inc()
	})

	if len(s.req.Timeseries) > 0 || len(s.req.Metadata) > 0 {
		whole := body
		if invalid > 0 || proto == protoV2 {
			whole = nil // the Appender re-encodes what it keeps as 1.0
		}
		ctx := r.Context()
		if proto != protoV2 {
			ctx = withRawSeries(ctx, s.dec.raw[:len(s.req.Timeseries)])
		}
		if err := h.app.Append(ctx, &s.req, whole); err != nil {
			switch {
			case errors.Is(err, ErrUnavailable):
				return http.StatusServiceUnavailable, reasonUnavailable, err.Error()
			case errors.Is(err, ErrInvalidSeries):
				return http.StatusBadRequest, reasonAppendRefused, err.Error()
			default:
				h.logger.Error("appending remote write request", "err", err)
				return http.StatusInternalServerError, reasonInternal, err.Error()
			}
		}
		h.metrics.samples.Add(float64(samples))
		if proto == protoV2 {
			written = countWritten(s.req.Timeseries)
		}
	}
	if invalid > 0 {
		msg := firstInvalid.Error()
		if invalid > 1 {
			msg += fmt.Sprintf(" (and %d more invalid series)", invalid-1)
		}
		return http.StatusBadRequest, "", msg
	}
	return http.StatusNoContent, "", ""
}

// protocol is the remote-write message a request carries.
type protocol int

const (
	protoV1 protocol = iota // prometheus.WriteRequest
	protoV2                 // io.prometheus.write.v2.Request
)

// checkContentHeaders tells Remote Write 1.0 (application/x-protobuf with no proto
// parameter or proto=prometheus.WriteRequest; a missing Content-Type is taken to mean the
// same, as Prometheus does) from 2.0 (proto=io.prometheus.write.v2.Request), both snappy
// (a missing Content-Encoding too), and refuses everything else with
// ErrUnsupportedMediaType: the one answer, 415, for what the receiver does not speak.
func checkContentHeaders(hdr http.Header) (protocol, error) {
	if enc := hdr.Get("Content-Encoding"); enc != "" && !strings.EqualFold(strings.TrimSpace(enc), "snappy") {
		return 0, fmt.Errorf("%w: Content-Encoding %s; remote write bodies are snappy block-compressed", ErrUnsupportedMediaType, quoteHeader(enc))
	}
	ct := hdr.Get("Content-Type")
	if ct == "" || ct == "application/x-protobuf" {
		return protoV1, nil
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("%w: Content-Type %s: %v", ErrUnsupportedMediaType, quoteHeader(ct), err)
	}
	if mediaType != "application/x-protobuf" {
		return 0, fmt.Errorf("%w: Content-Type %s; remote write uses application/x-protobuf", ErrUnsupportedMediaType, quoteHeader(ct))
	}
	switch proto := params["proto"]; proto {
	case "", "prometheus.WriteRequest":
		return protoV1, nil
	case "io.prometheus.write.v2.Request":
		return protoV2, nil
	default:
		return 0, fmt.Errorf("%w: protobuf message %s; remote write is prometheus.WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)", ErrUnsupportedMediaType, quoteHeader(proto))
	}
}

// readBody reads r to its end, appending to buf. It sets aside at most maxUpfrontBodyBytes
// for the declared length and grows as data actually arrives, so a false Content-Length
// cannot make it allocate.
func readBody(r io.Reader, buf []byte, declared int64) ([]byte, error) {
	if declared > 0 {
		buf = slices.Grow(buf, int(min(declared, maxUpfrontBodyBytes))+bytesMinRead)
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(bytesMinRead, cap(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// bytesMinRead is the room readBody leaves after the expected data, so that the final read
// sees EOF without growing the buffer.
const bytesMinRead = 512

// CountSamples is the number of float and histogram samples in series, what the protocol's
// limits, counters and -Written headers count.
func CountSamples(series []prompb.TimeSeries) int {
	n := 0
	for i := range series {
		n += len(series[i].Samples) + len(series[i].Histograms)
	}
	return n
}

// oneLine keeps a message to the single line the protocol's error bodies are.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// quoteHeader quotes a client-supplied header value for a message, bounded in length.
func quoteHeader(v string) string {
	const maxLen = 64
	if len(v) > maxLen {
		return fmt.Sprintf("%q…", v[:maxLen])
	}
	return fmt.Sprintf("%q", v)
}
