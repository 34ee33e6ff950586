package hashring

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
)

// TestAForwardedRingIsCheckedBeforeItIsBuilt: a request whose headers name a ring other
// than the one in force makes the owner build that ring (SenderView). The receiver refuses,
// with 400, a ring whose version is not that of its members (which would file a ring under
// another's version) and one of more than MaxMembers members (which New cannot hold), and
// passes a consistent one, in any order, to the appender.
func TestAForwardedRingIsCheckedBeforeItIsBuilt(t *testing.T) {
	f, err := NewForwarder("a", DefaultForwardConfig(), time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Shutdown(context.Background()) }()
	f.SetMembers([]Member{{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: "127.0.0.1:2"}})
	var views []View
	h := f.Receiver(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		fi, _ := ForwardInfoFrom(r.Context())
		v, _ := f.SenderView(fi)
		views = append(views, v)
	}))
	post := func(hdr http.Header) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write", strings.NewReader(""))
		for k, v := range hdr {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	other := forwardHeader("c", New([]Member{{Name: "a"}, {Name: "b"}, {Name: "c"}}))
	other.Set(HeaderRingMembers, "c,a,b") // the order a sender gives does not matter
	if code, body := post(other); code != http.StatusOK || len(views) != 1 || views[0].ring.Len() != 3 {
		t.Fatalf("a consistent ring of 3: %d %s, %d views", code, body, len(views))
	}
	forged := other.Clone()
	forged.Set(HeaderRingMembers, "a,b,c,d")
	if code, body := post(forged); code != http.StatusBadRequest || !strings.Contains(body, "members make") {
		t.Errorf("a version that is not its members': %d %s, want 400", code, body)
	}
	names := make([]string, MaxMembers+1)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	huge := other.Clone()
	huge.Set(HeaderRingMembers, strings.Join(names, ","))
	if code, body := post(huge); code != http.StatusBadRequest || !strings.Contains(body, "at most") {
		t.Errorf("%d members: %d %s, want 400", len(names), code, body)
	}
	if len(views) != 1 {
		t.Errorf("%d requests reached the appender, want the consistent one only", len(views))
	}
}

// TestPeerLabelsAreBounded: the peer label of what is counted by a sender's name is the
// name for the first maxPeerLabels names and "other" after them, whoever sends.
func TestPeerLabelsAreBounded(t *testing.T) {
	var p peerLabels
	for i := range maxPeerLabels {
		if n := fmt.Sprintf("node-%d", i); p.label(n) != n {
			t.Fatalf("name %d of %d labelled %q", i, maxPeerLabels, p.label(n))
		}
	}
	if got := p.label("node-new"); got != "other" {
		t.Errorf("a name past the bound labelled %q, want other", got)
	}
	if got := p.label("node-7"); got != "node-7" {
		t.Errorf("a name seen before the bound labelled %q", got)
	}
}

// TestARequestRoutedAsTheRingChangesIsStillSent: a request takes its outbox from the ring
// in force, and the ring changes before it sends. The old ring's queues wait for it before
// they drain, so its series reach their owner rather than a closed queue.
func TestARequestRoutedAsTheRingChangesIsStillSent(t *testing.T) {
	got := make(chan int, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- int(r.ContentLength)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	f, err := NewForwarder("a", DefaultForwardConfig(), time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := f.metrics
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.Shutdown(ctx)
	}()
	addr := strings.TrimPrefix(srv.URL, "http://")
	f.SetMembers([]Member{{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: addr}})
	ob := f.Outbox()
	b := ob.ring.Index("b")
	ob.Forward(b, &prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1}}}, 0)
	f.SetMembers([]Member{{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: addr}, {Name: "c", Addr: "127.0.0.1:1"}})
	time.Sleep(20 * time.Millisecond) // the old ring's drain has begun
	ob.Send(1)
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the series routed by the old ring never reached its owner")
	}
	if dropped := testutil.ToFloat64(m.forwardDropped.WithLabelValues("b")); dropped != 0 {
		t.Errorf("%v samples dropped", dropped)
	}
}

// TestWhatAReplacedRingCouldNotDeliverIsRoutedAgain: an owner stops answering and the ring
// changes without it. What the old ring's queue to it still holds after the drain timeout
// (the batch in flight, and the rest) goes to OnUndelivered, decoded, to be routed again by
// the ring in force, and is counted rerouted, not dropped.
func TestWhatAReplacedRingCouldNotDeliverIsRoutedAgain(t *testing.T) {
	hang := make(chan struct{})
	srv := holdingServer(hang)
	defer srv.Close()
	defer close(hang)
	f, err := NewForwarder("a", DefaultForwardConfig(), time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.drainTimeout = 100 * time.Millisecond
	defer func() { _ = f.Shutdown(context.Background()) }()
	got := make(chan []prompb.TimeSeries, 1)
	f.OnUndelivered(func(series []prompb.TimeSeries) { got <- series })
	addr := strings.TrimPrefix(srv.URL, "http://")
	f.SetMembers([]Member{{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: addr}})
	for r := range 3 {
		ob := f.Outbox()
		for i := range 10 {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "i", Value: fmt.Sprint(r*10 + i)}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
			ob.Forward(ob.ring.Index("b"), &ts, i)
		}
		ob.Send(1)
		time.Sleep(30 * time.Millisecond) // the first request is in flight before the others come
	}
	f.SetMembers([]Member{{Name: "a", Addr: "127.0.0.1:1"}})
	select {
	case series := <-got:
		seen := map[string]bool{}
		for _, ts := range series {
			seen[ts.Labels[1].Value] = true
		}
		if len(series) != 30 || len(seen) != 30 {
			t.Errorf("%d series routed again (%d distinct), want the 30 queued", len(series), len(seen))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was routed again")
	}
	eventually(t, func() bool { return testutil.ToFloat64(f.metrics.forwardRerouted.WithLabelValues("b")) == 30 })
	if dropped := testutil.ToFloat64(f.metrics.forwardDropped.WithLabelValues("b")); dropped != 0 {
		t.Errorf("%v samples dropped", dropped)
	}
}
