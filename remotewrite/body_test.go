package remotewrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestABodyIsPostedWithItsLength: the body of NewRequest goes with a Content-Length, as a
// bytes.Reader body does, never chunked (some receivers refuse chunked remote write).
func TestABodyIsPostedWithItsLength(t *testing.T) {
	payload := bytes.Repeat([]byte("cardinal"), 1000)
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		switch {
		case err != nil:
			got <- err
		case r.ContentLength != int64(len(payload)) || len(r.TransferEncoding) > 0:
			got <- fmt.Errorf("content length %d, transfer encoding %v; want %d, none", r.ContentLength, r.TransferEncoding, len(payload))
		case !bytes.Equal(b, payload):
			got <- io.ErrUnexpectedEOF
		default:
			got <- nil
		}
	}))
	defer srv.Close()
	req, body, err := NewRequest(context.Background(), srv.URL, payload)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !body.Wait(time.Second) {
		t.Error("the transport did not close the body of a request that ended")
	}
}

// lateReader is a transport that answers at once and reads the request body afterwards, as
// net/http does when a receiver answers before it has read the body: after the response is
// returned, it waits for release, then reads the body and closes it.
type lateReader struct {
	release chan struct{}
	read    chan []byte
}

func (l *lateReader) RoundTrip(req *http.Request) (*http.Response, error) {
	go func() {
		<-l.release
		b, _ := io.ReadAll(req.Body)
		req.Body.Close()
		l.read <- b
	}()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// TestWaitWaitsForTheTransportToCloseTheBody: Client.Do returns while the transport has
// not read the body yet. Wait reports the buffer busy until the transport closes the body,
// and only then free to write again.
func TestWaitWaitsForTheTransportToCloseTheBody(t *testing.T) {
	tr := &lateReader{release: make(chan struct{}), read: make(chan []byte, 1)}
	payload := []byte("the first batch")
	req, body, err := NewRequest(context.Background(), "http://receiver.invalid/api/v1/write", payload)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if body.Wait(20 * time.Millisecond) {
		t.Fatal("Wait reported the body free while the transport had not read it")
	}
	var waited atomic.Bool
	done := make(chan struct{})
	go func() {
		waited.Store(body.Wait(10 * time.Second))
		close(done)
	}()
	close(tr.release)
	if got := <-tr.read; !bytes.Equal(got, payload) {
		t.Errorf("the transport read %q, want %q", got, payload)
	}
	<-done
	if !waited.Load() {
		t.Error("Wait did not see the transport close the body")
	}
}

// TestWaitWaitsForEveryReplayOfTheBody: a transport that replays the request on a new
// connection (GetBody) reads a second reader of the same buffer; Wait waits for it too.
func TestWaitWaitsForEveryReplayOfTheBody(t *testing.T) {
	req, body, err := NewRequest(context.Background(), "http://receiver.invalid/", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	req.Body.Close() // the first attempt failed before writing
	replay, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if body.Wait(20 * time.Millisecond) {
		t.Fatal("Wait reported the body free while its replay was open")
	}
	replay.Close()
	if !body.Wait(time.Second) {
		t.Error("Wait did not see the replay closed")
	}
}

// TestNewRequestRefusesABadURL: a URL net/http cannot parse is an error, not a panic.
func TestNewRequestRefusesABadURL(t *testing.T) {
	if _, _, err := NewRequest(context.Background(), "http://[::1", []byte("x")); err == nil {
		t.Error("NewRequest took an unparsable URL")
	}
}
