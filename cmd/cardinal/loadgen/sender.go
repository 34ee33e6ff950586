package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sender hands out requests (round r, template k) in order to its workers and posts them.
// A template is patched and sent for round r+1 only after its round r request has completed,
// so every time series receives its samples in timestamp order and no body is shared by two
// requests in flight.
type sender struct {
	client      *http.Client
	url         string
	plan        *plan
	templates   []*requestTemplate
	turns       []turn
	pacer       *pacer
	maxRequests int64 // 0: unlimited
	maxRounds   int64 // 0: unlimited
	next        atomic.Int64
	abort       context.CancelCauseFunc // ends the run on an error of the generator itself
}

// turn serialises the rounds of one template.
type turn struct {
	mu    sync.Mutex
	cond  sync.Cond
	round int64 // the next round this template sends
}

// workerStats is what one worker saw; merged into the report at the end.
type workerStats struct {
	latencies []time.Duration // of requests that got a response
	codes     map[int]int64   // by HTTP status; 0 for transport errors
	examples  map[int]string  // first error body or message per status
	requests  int64           // requests attempted
	samples   int64           // samples attempted
	okSamples int64           // samples in 2xx requests
	maxRound  int64           // newest round attempted, -1 if none
}

// newSender prepares a sender over the templates of p.
func newSender(client *http.Client, url string, p *plan, templates []*requestTemplate, pc *pacer, maxRequests, maxRounds int64, abort context.CancelCauseFunc) *sender {
	s := &sender{
		client: client, url: url, plan: p, templates: templates, pacer: pc,
		maxRequests: maxRequests, maxRounds: maxRounds, abort: abort,
		turns: make([]turn, len(templates)),
	}
	for i := range s.turns {
		s.turns[i].cond.L = &s.turns[i].mu
	}
	return s
}

// work claims and sends requests until stop is done or the run's bound is reached. Requests
// themselves run under reqCtx, so that those in flight when the duration ends still complete.
func (s *sender) work(stop, reqCtx context.Context) *workerStats {
	st := &workerStats{codes: map[int]int64{}, examples: map[int]string{}, maxRound: -1}
	perRound := int64(len(s.templates))
	for stop.Err() == nil {
		n := s.next.Add(1) - 1
		if s.maxRequests > 0 && n >= s.maxRequests {
			break
		}
		r, k := n/perRound, n%perRound
		if s.maxRounds > 0 && r >= s.maxRounds {
			break
		}
		// Every claimed request takes its turn, sent or skipped, so that no later round of
		// the same template waits forever.
		tu := &s.turns[k]
		tu.mu.Lock()
		for tu.round != r {
			tu.cond.Wait()
		}
		s.send(stop, reqCtx, s.templates[k], r, st)
		tu.round++
		tu.cond.Broadcast()
		tu.mu.Unlock()
	}
	return st
}

// send paces, patches and posts template t for round r, unless the run is stopping.
func (s *sender) send(stop, reqCtx context.Context, t *requestTemplate, r int64, st *workerStats) {
	if s.pacer.wait(stop, len(t.samples)) != nil {
		return
	}
	if err := t.patch(s.plan, r); err != nil {
		s.abort(err)
		return
	}
	st.requests++
	st.samples += int64(len(t.samples))
	st.maxRound = max(st.maxRound, r)
	begin := time.Now()
	code, example := s.post(reqCtx, t.body)
	if code != 0 {
		st.latencies = append(st.latencies, time.Since(begin))
	}
	if code >= 200 && code < 300 {
		st.okSamples += int64(len(t.samples))
		return
	}
	st.codes[code]++
	if _, seen := st.examples[code]; !seen {
		st.examples[code] = example
	}
}

// maxExampleBytes bounds the error text kept per status code.
const maxExampleBytes = 200

// post sends one Remote Write 1.0 request; it returns the status code (0 when no response
// arrived) and, for failures, the start of the response body or the error.
func (s *sender) post(ctx context.Context, body []byte) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "cardinal-loadgen")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var example []byte
	if resp.StatusCode/100 != 2 {
		example, _ = io.ReadAll(io.LimitReader(resp.Body, maxExampleBytes))
	}
	_, _ = io.Copy(io.Discard, resp.Body) // drain so the connection is reused
	return resp.StatusCode, string(bytes.TrimSpace(example))
}

// newHTTPClient is a keep-alive client for concurrency connections that, unless allowRemote,
// dials loopback addresses only and never follows redirects.
func newHTTPClient(concurrency int, timeout time.Duration, allowRemote bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowRemote {
		dialer.Control = loopbackOnly
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
