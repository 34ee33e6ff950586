package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// errorLogInterval is the least time between two logs of failed sends of one Client.
	errorLogInterval = 10 * time.Second
	// maxErrorBodyBytes bounds how much of a refusal's body is read for the log.
	maxErrorBodyBytes = 512
	// maxDrainBytes bounds how much of a response body is read to reuse the connection.
	maxDrainBytes = 64 << 10
)

// sendBatch takes one batch from s and sends it until the downstream answers for good or the
// Client gives up.
func (c *Client) sendBatch(s *shard) {
	batch, entries, held := s.queue.take(s.batch[:0], c.maxSamples)
	samples := countSamples(batch)
	defer func() {
		clear(batch)
		s.batch = batch[:0]
		c.level.bytes.Add(-held)
		c.level.series.Add(-int64(entries))
		c.metrics.publishQueue(&c.level)
	}()

	body, err := s.enc.Encode(batch)
	if err != nil {
		c.metrics.dropEncode.Add(float64(samples))
		c.logLimiter.log(c.logger, slog.LevelError, "dropping batch that cannot be encoded", "samples", samples, "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		res := c.post(body)
		switch res.outcome {
		case sendOK:
			c.metrics.sent.Add(float64(samples))
			return
		case sendRefused:
			c.metrics.failed.Add(float64(samples))
			c.logLimiter.log(c.logger, slog.LevelWarn, "downstream refused samples; dropping them",
				"status", res.status, "samples", samples, "response", res.detail)
			return
		case sendAborted:
			c.dropUndelivered(samples)
			return
		}
		c.metrics.retried.Add(float64(samples))
		// A positive Retry-After replaces the backoff; zero would have every shard retry at once.
		wait := res.retryAfter
		if wait <= 0 {
			wait = c.backoff.delay(attempt)
		}
		c.logLimiter.log(c.logger, slog.LevelWarn, "sending to downstream failed; retrying",
			"status", res.status, "err", res.detail, "samples", samples, "attempt", attempt+1, "wait", wait)
		if !sleepCtx(c.abortCtx, wait) {
			c.dropUndelivered(samples)
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
}

// post sends body once.
func (c *Client) post(body []byte) sendResult {
	ctx, cancel := context.WithTimeout(c.abortCtx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return sendResult{outcome: sendRefused, detail: c.redactError(err)}
	}
	req.Header = c.header.Clone()
	start := time.Now()
	resp, err := c.httpClient.Do(req)
	c.metrics.sendDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		if c.abortCtx.Err() != nil {
			return sendResult{outcome: sendAborted}
		}
		return sendResult{outcome: sendRetry, detail: c.redactError(err)}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		_ = resp.Body.Close()
	}()

	res := sendResult{status: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code/100 == 2:
		res.outcome = sendOK
	case code == http.StatusTooManyRequests || code/100 == 5:
		res.outcome = sendRetry
		res.detail = firstLine(resp.Body)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.retryAfter, _ = retryAfter(resp.Header, time.Now())
		}
	default:
		res.outcome = sendRefused
		res.detail = firstLine(resp.Body)
	}
	return res
}

// redactError renders a request error without the URL it carries, which may hold credentials.
func (c *Client) redactError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s %s: %v", ue.Op, c.displayURL, ue.Err)
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
