package downstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// RemoteWrite is the sink of one remote_write entry: it sends series to a Remote Write 1.0
// or 2.0 receiver (Prometheus, Mimir, Thanos, VictoriaMetrics) from a byte-bounded, sharded
// Queue.
type RemoteWrite struct {
	s *sender
}

// NewRemoteWrite validates cfg as `cardinal check config` does, reads its credential files and
// returns a sink for its receiver, registering metrics with reg (none if nil) under the label
// downstream=cfg.Name and logging to logger (discarded if nil). Call Start to begin sending
// and Shutdown to stop.
func NewRemoteWrite(cfg RemoteWriteConfig, reg prometheus.Registerer, logger *slog.Logger) (*RemoteWrite, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err // Validate has parsed it already
	}
	header, err := requestHeader(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsConfig, err := cfg.clientTLS(func(err error) {
		logger.Warn("remote_write tls_config: a file could not be used", "downstream", cfg.Name, "err", err)
	})
	if err != nil {
		return nil, err
	}
	ep := endpoint{
		url:        u.String(),
		displayURL: redactURL(u),
		header:     header,
		timeout:    time.Duration(cfg.Timeout),
		v2:         cfg.ProtobufMessage == MessageV2,
	}
	q := NewQueue(int64(cfg.Queue.MaxBytes), cfg.Queue.Shards)
	bo := Backoff{Min: time.Duration(cfg.Queue.MinBackoff), Max: time.Duration(cfg.Queue.MaxBackoff)}
	s := newSender(ep, q, cfg.Queue.MaxSamplesPerSend, bo, newSenderMetrics(reg, cfg.Name),
		logger.With("downstream", cfg.Name, "url", ep.displayURL))
	if tlsConfig != nil {
		s.transport.TLSClientConfig = tlsConfig.ForServer(u.Hostname())
	}
	s.metadataCfg, s.metadataMetrics = cfg.MetadataConfig, newMetadataMetrics(reg, cfg.Name)
	return &RemoteWrite{s: s}, nil
}

// Send queues series for the receiver; see Sink for who owns them. It never blocks.
func (r *RemoteWrite) Send(series []prompb.TimeSeries) { r.s.send(series) }

// Pending implements Snapshotter.
func (r *RemoteWrite) Pending() []prompb.TimeSeries { return r.s.queue.Snapshot() }

// Full reports whether the queued and in-flight series hold queue.max_bytes or more.
func (r *RemoteWrite) Full() bool { return r.s.queue.Full() }

// TrackDelivery makes the sink tell d of every batch the receiver acknowledges and leave out
// of its requests the samples d says the receiver already has. Call it before Start and
// before the series of a checkpoint are sent again.
func (r *RemoteWrite) TrackDelivery(d Delivery) { r.s.delivery = d }

// Start starts one sending goroutine per queue shard.
func (r *RemoteWrite) Start() { r.s.start() }

// Shutdown sends what is queued until ctx is done, then drops and counts the rest and returns
// an error saying how many samples were not delivered.
func (r *RemoteWrite) Shutdown(ctx context.Context) error { return r.s.shutdown(ctx) }

// requestHeader builds the headers of every request: the configured ones, authentication
// (reading bearer_token_file or password_file) and the protocol's.
func requestHeader(cfg RemoteWriteConfig) (http.Header, error) {
	h := http.Header{}
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	if err := SetAuthorization(h, cfg.BasicAuth, cfg.BearerToken, cfg.BearerTokenFile); err != nil {
		return nil, err
	}
	protocolHeaders(h, cfg.ProtobufMessage == MessageV2)
	return h, nil
}

// SetAuthorization sets h's Authorization from at most one of basic auth, an inline bearer
// token and a bearer token file, reading the password or token file now. Its errors name
// the setting (basic_auth.password_file, bearer_token_file).
func SetAuthorization(h http.Header, basic *BasicAuth, bearerToken setting.Secret, bearerTokenFile string) error {
	switch {
	case basic != nil:
		pw := string(basic.Password)
		if f := basic.PasswordFile; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("basic_auth.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		r := http.Request{Header: h}
		r.SetBasicAuth(basic.Username, pw)
	case bearerTokenFile != "":
		b, err := os.ReadFile(bearerTokenFile)
		if err != nil {
			return fmt.Errorf("bearer_token_file: %w", err)
		}
		h.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	case bearerToken != "":
		h.Set("Authorization", "Bearer "+string(bearerToken))
	}
	return nil
}

// AuthorizationFileKey is the key of the file SetAuthorization reads, given the same basic
// auth: basic_auth.password_file, else bearer_token_file.
func AuthorizationFileKey(basic *BasicAuth) setting.Key {
	if basic != nil {
		return setting.At("basic_auth", "password_file")
	}
	return setting.At("bearer_token_file")
}

// protocolHeaders sets the headers of Remote Write 1.0, or 2.0, and cardinal's user agent.
func protocolHeaders(h http.Header, v2 bool) {
	h.Set("Content-Encoding", "snappy")
	if v2 {
		h.Set("Content-Type", "application/x-protobuf;proto="+MessageV2)
		h.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	} else {
		h.Set("Content-Type", "application/x-protobuf")
		h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	h.Set("User-Agent", userAgent())
}

// userAgent is cardinal/<version of the main module>, or cardinal/dev.
func userAgent() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "cardinal/" + bi.Main.Version
	}
	return "cardinal/dev"
}
