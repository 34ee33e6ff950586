package downstream

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// lateReadingTransport answers every request at once and reads its body a moment later, as
// net/http does when a receiver answers before reading the whole body (or a request times
// out while its body is being written). It records the series of each body it read.
type lateReadingTransport struct {
	mu      sync.Mutex
	bodies  [][]string // per request, its series' names
	corrupt int
}

func (l *lateReadingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	go func() {
		time.Sleep(30 * time.Millisecond)
		b, _ := io.ReadAll(req.Body)
		req.Body.Close()
		var wr prompb.WriteRequest
		raw, err := snappy.Decode(nil, b)
		if err == nil {
			err = wr.Unmarshal(raw)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.corrupt++
			return
		}
		var names []string
		for _, ts := range wr.Timeseries {
			names = append(names, ts.Labels[0].Value)
		}
		l.bodies = append(l.bodies, names)
	}()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// TestTheNextBatchDoesNotOverwriteABodyStillBeingSent: the sender reuses its encoder's
// buffer from batch to batch. When the transport still reads a request's body after the
// response came, the next batch must not be encoded into that buffer: the receiver would get
// a corrupt body, or the next batch's series in place of this one's (some lost, some twice).
// The cluster test saw "snappy: corrupt input" at Prometheus under load.
func TestTheNextBatchDoesNotOverwriteABodyStillBeingSent(t *testing.T) {
	tr := &lateReadingTransport{}
	cfg := testConfig("http://receiver.invalid/api/v1/write")
	cfg.Queue.MaxSamplesPerSend, cfg.Queue.Shards = 10, 1
	c := newTestClient(t, cfg, prometheus.NewRegistry())
	c.s.httpClient = &http.Client{Transport: tr}
	c.Send(seriesBatch(50, 1)) // five batches of ten, sent back to back
	c.Start()
	var got []string
	eventually(t, 10*time.Second, "five bodies read", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.bodies)+tr.corrupt == 5
	})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.corrupt > 0 {
		t.Errorf("%d of 5 bodies did not decode", tr.corrupt)
	}
	for _, names := range tr.bodies {
		got = append(got, names...)
	}
	slices.Sort(got)
	var want []string
	for _, ts := range seriesBatch(50, 1) {
		want = append(want, ts.Labels[0].Value)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the receiver read series %v, want each of %v once", got, want)
	}
}
