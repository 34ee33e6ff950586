package remotewrite

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"
)

// ErrInvalidClientConfig is returned (wrapped, with the reason) by NewClient.
var ErrInvalidClientConfig = errors.New("invalid remote write client config")

// Defaults for ClientConfig's zero values.
const (
	DefaultClientTimeout     = 30 * time.Second
	DefaultMaxQueueBytes     = 64 << 20
	DefaultMaxSamplesPerSend = 2000
	DefaultShards            = 4
	DefaultMinBackoff        = 30 * time.Millisecond
	DefaultMaxBackoff        = 5 * time.Second
	DefaultBatchDeadline     = 50 * time.Millisecond
)

// maxShards bounds ClientConfig.Shards.
const maxShards = 1024

// isReservedHeader reports whether the Client sets header k itself, so that
// ClientConfig.Headers may not.
func isReservedHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Content-Encoding", "Content-Type", "Content-Length", "X-Prometheus-Remote-Write-Version",
		"User-Agent", "Host", "Connection":
		return true
	}
	return false
}

// BasicAuth holds HTTP basic-auth credentials.
type BasicAuth struct {
	Username string
	Password string
}

// ClientConfig configures a Client for one downstream. Zero values take the defaults above.
type ClientConfig struct {
	// Name identifies the downstream in metrics (label downstream) and logs; it must be
	// unique among live Clients. Default: the URL's host.
	Name string
	// URL is the downstream's remote write endpoint, e.g. http://prometheus:9090/api/v1/write.
	URL string
	// Headers are added to every request; protocol headers cannot be overridden.
	Headers map[string]string
	// BasicAuth and BearerToken (at most one) authenticate requests. Credentials in the
	// URL's userinfo are used when neither is set. None of them is ever logged.
	BasicAuth   *BasicAuth
	BearerToken string
	// Timeout bounds one request.
	Timeout time.Duration
	// MaxQueueBytes is the queue size at and above which Full reports true.
	MaxQueueBytes int64
	// MaxSamplesPerSend bounds the samples (floats and histograms) of one request.
	MaxSamplesPerSend int
	// Shards is the number of queues sending concurrently; a series always uses the same one.
	Shards int
	// MinBackoff and MaxBackoff bound the exponential, jittered waits between retries.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// BatchDeadline is how long a shard waits for a batch to fill before sending what it has.
	BatchDeadline time.Duration
	// UserAgent defaults to cardinal/<module version>.
	UserAgent string
}

// parseDownstreamURL checks that raw is an absolute http(s) URL. Its errors never repeat the
// URL, which may hold credentials.
func parseDownstreamURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: URL does not parse: %v", ErrInvalidClientConfig, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: URL scheme must be http or https, not %q", ErrInvalidClientConfig, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: URL has no host", ErrInvalidClientConfig)
	}
	return u, nil
}

// redactURL renders u for logs: no userinfo, and the query (which may carry tokens) elided.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := r.String()
	if u.RawQuery != "" {
		s += "?<redacted>"
	}
	return s
}

func applyClientDefaults(cfg *ClientConfig) error {
	if cfg.Timeout < 0 || cfg.MaxQueueBytes < 0 || cfg.MaxSamplesPerSend < 0 || cfg.Shards < 0 ||
		cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.BatchDeadline < 0 {
		return fmt.Errorf("%w: durations and sizes must not be negative", ErrInvalidClientConfig)
	}
	setDefault(&cfg.Timeout, DefaultClientTimeout)
	setDefault(&cfg.MaxQueueBytes, DefaultMaxQueueBytes)
	setDefault(&cfg.MaxSamplesPerSend, DefaultMaxSamplesPerSend)
	setDefault(&cfg.Shards, DefaultShards)
	setDefault(&cfg.MinBackoff, DefaultMinBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	setDefault(&cfg.BatchDeadline, DefaultBatchDeadline)
	if cfg.UserAgent == "" {
		cfg.UserAgent = defaultUserAgent()
	}
	if cfg.Shards > maxShards {
		return fmt.Errorf("%w: %d shards, at most %d", ErrInvalidClientConfig, cfg.Shards, maxShards)
	}
	if cfg.MinBackoff > cfg.MaxBackoff {
		return fmt.Errorf("%w: min backoff %v exceeds max backoff %v", ErrInvalidClientConfig, cfg.MinBackoff, cfg.MaxBackoff)
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// requestHeader builds the headers of every request: the protocol's, authentication and
// cfg.Headers.
func requestHeader(cfg ClientConfig) (http.Header, error) {
	h := http.Header{}
	for k, v := range cfg.Headers {
		if isReservedHeader(k) {
			return nil, fmt.Errorf("%w: header %s is set by the client and cannot be configured", ErrInvalidClientConfig, http.CanonicalHeaderKey(k))
		}
		h.Set(k, v)
	}
	if cfg.BasicAuth != nil && cfg.BearerToken != "" {
		return nil, fmt.Errorf("%w: basic auth and bearer token are mutually exclusive", ErrInvalidClientConfig)
	}
	if (cfg.BasicAuth != nil || cfg.BearerToken != "") && h.Get("Authorization") != "" {
		return nil, fmt.Errorf("%w: an Authorization header conflicts with basic auth or bearer token", ErrInvalidClientConfig)
	}
	switch {
	case cfg.BasicAuth != nil:
		r := http.Request{Header: h}
		r.SetBasicAuth(cfg.BasicAuth.Username, cfg.BasicAuth.Password)
	case cfg.BearerToken != "":
		h.Set("Authorization", "Bearer "+cfg.BearerToken)
	}
	h.Set("Content-Encoding", "snappy")
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	h.Set("User-Agent", cfg.UserAgent)
	return h, nil
}

// defaultUserAgent is cardinal/<version of the main module>, or cardinal/dev.
func defaultUserAgent() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "cardinal/" + bi.Main.Version
	}
	return "cardinal/dev"
}
