package downstream

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PeerEndpoint is a member of a cardinal cluster that series are forwarded to: a remote-write
// receiver like any other, reached through a transport of the cluster's (its TLS settings,
// and a dialer that finds the member's current address by its name).
type PeerEndpoint struct {
	// Name labels the peer's metrics as a downstream.
	Name string
	// URL is where requests go; DisplayURL is what logs show.
	URL, DisplayURL string
	// Header holds the cluster's headers and authentication; the protocol's are added.
	Header http.Header
	// Timeout bounds one request.
	Timeout time.Duration
	// Transport carries the requests; the sink owns it from now on.
	Transport *http.Transport
}

// NewPeerRemoteWrite returns a sink that forwards series to a peer, with the queue, backoff
// and overflow policy of every remote-write downstream (see Sink), registering its metrics
// with reg under downstream=ep.Name.
func NewPeerRemoteWrite(ep PeerEndpoint, q QueueConfig, reg prometheus.Registerer, logger *slog.Logger) *RemoteWrite {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	header := ep.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	protocolHeaders(header)
	e := endpoint{url: ep.URL, displayURL: ep.DisplayURL, header: header, timeout: ep.Timeout}
	queue := NewQueue(int64(q.MaxBytes), q.Shards)
	bo := Backoff{Min: time.Duration(q.MinBackoff), Max: time.Duration(q.MaxBackoff)}
	s := newSenderWith(ep.Transport, e, queue, q.MaxSamplesPerSend, bo, newSenderMetrics(reg, ep.Name),
		logger.With("peer", ep.Name, "url", ep.DisplayURL))
	return &RemoteWrite{s: s}
}
