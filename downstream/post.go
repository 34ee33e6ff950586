package downstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

const (
	// errorLogInterval is the least time between two logs of failed sends of one sender.
	errorLogInterval = 10 * time.Second
	// maxErrorBodyBytes bounds how much of a refusal's body is read for the log.
	maxErrorBodyBytes = 512
	// maxDrainBytes bounds how much of a response body is read to reuse the connection.
	maxDrainBytes = 64 << 10
)

// sendBatch takes one batch from shard, leaves out what the receiver already has (see
// Delivery) and sends the rest until the receiver answers for good or the sender gives up.
// When deliveries are tracked (with a WAL), a request holds at most one sample of a series
// (Queue.TakeDistinct), so that the only batch a crash can make the next process send again
// carries each series' newest sample, which a receiver accepts again; without tracking,
// batches are taken whole (Queue.Take), which costs less per series.
func (s *sender) sendBatch(shard int, b *batchBuffers) {
	var batch Batch
	if s.delivery != nil {
		batch = s.queue.TakeDistinct(shard, b.taken[:0], b.takenHashes, s.maxSamples)
	} else {
		batch = s.queue.Take(shard, b.taken[:0], s.maxSamples)
	}
	b.taken, b.takenHashes = batch.Series, batch.Hashes
	series, hashes := batch.Series, batch.Hashes
	defer func() {
		s.queue.Release(batch) // first: until then a Snapshot may read the batch
		clear(b.taken)         // the batch's own slots: the queued series are not modified
		clear(b.send)
		s.metrics.publishQueue(s.queue)
	}()
	if s.delivery != nil {
		b.marks = slices.Grow(b.marks[:0], len(hashes))[:len(hashes)]
		s.delivery.Marks(hashes, b.marks)
		var dropped int
		b.send, b.sendHashes, dropped = dropDelivered(b.send[:0], b.sendHashes[:0], batch, b.marks)
		series, hashes = b.send, b.sendHashes
		s.metrics.alreadyDelivered.Add(float64(dropped))
		if len(series) == 0 {
			return
		}
	}
	samples := remotewrite.CountSamples(series)

	body, err := b.enc.Encode(series)
	if err != nil {
		s.metrics.dropEncode.Add(float64(samples))
		s.logLimiter.log(s.logger, slog.LevelError, "dropping batch that cannot be encoded", "samples", samples, "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		res := s.post(body)
		if res.bodyBusy {
			b.enc.LetGo() // retries only read body; the next batch needs a buffer of its own
		}
		if res.outcome == sendOK && s.endpoint.v2 {
			res = s.checkWritten(res, series)
		}
		switch res.outcome {
		case sendOK:
			s.metrics.sent.Add(float64(samples - res.unwritten))
			if res.unwritten > 0 {
				s.metrics.failed.Add(float64(res.unwritten))
				s.logLimiter.log(s.logger, slog.LevelWarn, "downstream acknowledged a 2.0 request but wrote fewer samples than sent; the rest are lost",
					"samples", samples, "unwritten", res.unwritten, "written", res.detail)
			}
			s.noteDelivered(series, hashes)
			return
		case sendRefused:
			s.metrics.failed.Add(float64(samples))
			s.logLimiter.log(s.logger, slog.LevelWarn, "downstream refused samples; dropping them",
				"status", res.status, "samples", samples, "response", res.detail)
			return
		case sendAborted:
			s.dropUndelivered(samples)
			return
		}
		s.metrics.retried.Add(float64(samples))
		wait := s.backoff.Delay(attempt, res.retryAfter)
		s.logLimiter.log(s.logger, slog.LevelWarn, "sending to downstream failed; retrying",
			"status", res.status, "err", res.detail, "samples", samples, "attempt", attempt+1, "wait", wait)
		if !sleepCtx(s.abortCtx, wait) {
			s.dropUndelivered(samples)
			return
		}
	}
}

// noteDelivered tells the Delivery of an acknowledged batch, retrying with backoff while it
// fails (a full write-ahead log frees space at the next checkpoint), so that no newer sample
// of these series is sent before the note is durable. It gives up only when Shutdown does.
func (s *sender) noteDelivered(series []prompb.TimeSeries, hashes []uint64) {
	if s.delivery == nil {
		return
	}
	for attempt := 0; ; attempt++ {
		err := s.delivery.Delivered(series, hashes)
		if err == nil {
			return
		}
		wait := s.backoff.Delay(attempt, 0)
		s.logLimiter.log(s.logger, slog.LevelError, "noting a delivered batch failed; retrying before the next batch",
			"err", err, "attempt", attempt+1, "wait", wait)
		if !sleepCtx(s.abortCtx, wait) {
			return
		}
	}
}

// sendOutcome classifies one request's result.
type sendOutcome int

const (
	sendOK      sendOutcome = iota // 2xx
	sendRetry                      // 5xx, 429, network error, timeout
	sendRefused                    // other 4xx (and anything else unexpected): dropped
	sendAborted                    // Shutdown gave up while the request was in flight
)

// sendResult is what post learned from one request.
type sendResult struct {
	outcome    sendOutcome
	status     int
	detail     string        // first line of a refusal's body, or the network error; no credentials
	retryAfter time.Duration // from a 429 or 503's Retry-After header, or 0
	// written holds a 2.0 receiver's X-Prometheus-Remote-Write-*-Written headers: samples,
	// histograms, and whether any of the three was there.
	written    [2]int64
	hasWritten bool
	// unwritten is what a 2xx said was not written (2.0 only).
	unwritten int
	// bodyBusy is true when the transport still read the body after the request ended
	// (remotewrite.Body): its buffer must not be written again.
	bodyBusy bool
}

// checkWritten judges a 2xx to a 2.0 request by what the receiver says it wrote: without
// any -Written header it is a 1.0 receiver that took the body for an empty 1.0 request, and
// nothing was written (refused, as Prometheus does: the entry must send 1.0); with them,
// the samples and histograms it did not write are lost (a 2.0 receiver must not answer 2xx
// to a partial write, so this is the receiver's fault, logged and counted).
func (s *sender) checkWritten(res sendResult, series []prompb.TimeSeries) sendResult {
	var floats, hists int64
	for i := range series {
		floats += int64(len(series[i].Samples))
		hists += int64(len(series[i].Histograms))
	}
	if !res.hasWritten {
		if floats+hists == 0 {
			return res
		}
		res.outcome = sendRefused
		res.detail = "a 2xx without X-Prometheus-Remote-Write-*-Written headers: the receiver does not speak Remote Write 2.0; set protobuf_message: " + MessageV1
		return res
	}
	res.unwritten = int(max(0, floats-res.written[0]) + max(0, hists-res.written[1]))
	res.detail = fmt.Sprintf("samples %d of %d, histograms %d of %d", res.written[0], floats, res.written[1], hists)
	return res
}

// post sends body once.
func (s *sender) post(body []byte) (res sendResult) {
	ctx, cancel := context.WithTimeout(s.abortCtx, s.endpoint.timeout)
	defer cancel()
	req, rb, err := remotewrite.NewRequest(ctx, s.endpoint.url, body)
	if err != nil {
		return sendResult{outcome: sendRefused, detail: s.redactError(err)}
	}
	req.Header = s.endpoint.header.Clone()
	start := time.Now()
	resp, err := s.httpClient.Do(req)
	s.metrics.sendDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		res := sendResult{outcome: sendRetry, detail: s.redactError(err), bodyBusy: !rb.Wait(remotewrite.BodyWait)}
		if s.abortCtx.Err() != nil {
			res.outcome = sendAborted
		}
		return res
	}
	defer func() { res.bodyBusy = !rb.Wait(remotewrite.BodyWait) }() // once the answer is drained
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		_ = resp.Body.Close()
	}()

	res = sendResult{status: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code/100 == 2:
		res.outcome = sendOK
		res.written, res.hasWritten = writtenHeaders(resp.Header)
	case code == http.StatusTooManyRequests || code/100 == 5:
		res.outcome = sendRetry
		res.detail = firstLine(resp.Body)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.retryAfter, _ = RetryAfter(resp.Header, time.Now())
		}
	default:
		res.outcome = sendRefused
		res.detail = firstLine(resp.Body)
	}
	return res
}

// writtenHeaders reads a 2.0 receiver's -Samples-Written and -Histograms-Written headers
// (a missing or unreadable one counts 0) and reports whether any of the three was sent.
func writtenHeaders(h http.Header) (written [2]int64, any bool) {
	for i, name := range []string{remotewrite.HeaderSamplesWritten, remotewrite.HeaderHistogramsWritten, remotewrite.HeaderExemplarsWritten} {
		v := h.Get(name)
		if v == "" {
			continue
		}
		any = true
		if i < 2 {
			written[i], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return written, any
}

// redactError renders a request error without the URL it carries, which may hold credentials.
func (s *sender) redactError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s %s: %v", ue.Op, s.endpoint.displayURL, ue.Err)
	}
	return err.Error()
}

// firstLine returns the first line of r, bounded in length and made valid UTF-8.
func firstLine(r io.Reader) string {
	buf := make([]byte, maxErrorBodyBytes)
	n, _ := io.ReadFull(r, buf)
	line := buf[:n]
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	return strings.ToValidUTF8(string(line), "\uFFFD")
}
