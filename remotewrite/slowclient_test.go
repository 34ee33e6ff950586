package remotewrite

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A client that sends its headers and then trickles (here: stops sending) the body is cut off
// by the server's read timeout: the receiver answers 408 and counts it, and other clients are
// served meanwhile.
func TestHandlerAnswers408WhenTheReadTimeoutEndsASlowBody(t *testing.T) {
	app := &recordingAppender{}
	reg := prometheus.NewRegistry()
	srv := httptest.NewUnstartedServer(NewHandler(app, HandlerOptions{}, reg, nil))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := encodeBody(t, series(1, "__name__", "slow"))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", WritePath, len(body))
	if _, err := conn.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}

	// Another client is served while the slow one holds its connection.
	resp, err := http.Post(srv.URL+WritePath, "application/x-protobuf", bytes.NewReader(encodeBody(t, series(1, "__name__", "fast"))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("concurrent good request: status %d, want 204", resp.StatusCode)
	}

	// Bounded: the answer must come once the read timeout has passed, not never.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to the slow client: %v", err)
	}
	if !strings.Contains(status, " 408 ") {
		t.Fatalf("slow client got %q, want 408", strings.TrimSpace(status))
	}
	if got := metricValue(t, reg, "cardinal_receiver_rejected_requests_total", map[string]string{"reason": "read_timeout"}); got != 1 {
		t.Errorf("rejected_requests_total{reason=read_timeout} = %v, want 1", got)
	}
	if len(app.series) != 1 || app.series[0].Labels[0].Value != "fast" {
		t.Errorf("appended %v, want only the fast client's series", app.series)
	}
}
