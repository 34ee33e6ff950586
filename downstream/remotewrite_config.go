package downstream

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// MaxShards bounds queue.shards: each shard is a goroutine with its own connection.
const MaxShards = 1024

// RemoteWriteConfig is one remote-write receiver and its send queue (an entry of
// downstream.remote_write).
type RemoteWriteConfig struct {
	// Name labels the downstream in metrics (default: the URL's host[:port]).
	Name string `yaml:"name"`
	// URL is the receiver's write endpoint (http or https).
	URL string `yaml:"url"`
	// Headers are sent with every request; protocol headers cannot be overridden.
	Headers map[string]string `yaml:"headers"`
	// BasicAuth, BearerToken and BearerTokenFile authenticate requests; at most one is set.
	BasicAuth   *BasicAuth     `yaml:"basic_auth"`
	BearerToken setting.Secret `yaml:"bearer_token"`
	// BearerTokenFile is read when the sender is built; relative paths are resolved against
	// the config file's directory.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// TLSConfig verifies an https:// receiver against a CA of its own and presents a client
	// certificate (default: the system's roots, no client certificate).
	TLSConfig *TLSConfig `yaml:"tls_config"`
	// Timeout bounds one request (default 30s).
	Timeout setting.Duration `yaml:"timeout"`
	// Queue bounds and shapes what is waiting to be sent.
	Queue QueueConfig `yaml:"queue"`
	// ProtobufMessage is the message sent, as Prometheus names it: prometheus.WriteRequest
	// (Remote Write 1.0, the default) or io.prometheus.write.v2.Request (2.0).
	ProtobufMessage string `yaml:"protobuf_message"`
	// MetadataConfig sends the outputs' metadata (type, unit, help), as Prometheus's
	// metadata_config does.
	MetadataConfig MetadataConfig `yaml:"metadata_config"`
}

// MetadataConfig says whether and how a remote_write entry sends metadata: Remote Write 1.0
// in metadata-only requests every SendInterval, 2.0 inline with every series.
type MetadataConfig struct {
	// Send turns it on (default true).
	Send bool `yaml:"send"`
	// SendInterval is how often 1.0 sends every output family's metadata (default 1m).
	SendInterval setting.Duration `yaml:"send_interval"`
	// MaxSamplesPerSend caps the families of one 1.0 metadata request (default 500).
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
}

// The protobuf messages a remote_write entry can send.
const (
	MessageV1 = "prometheus.WriteRequest"
	MessageV2 = "io.prometheus.write.v2.Request"
)

// BasicAuth is HTTP basic authentication; the password comes inline or from a file.
type BasicAuth struct {
	// Username is required.
	Username string `yaml:"username"`
	// Password is the inline password; PasswordFile the alternative.
	Password setting.Secret `yaml:"password"`
	// PasswordFile is resolved against the config file's directory when relative.
	PasswordFile string `yaml:"password_file"`
}

// QueueConfig shapes a remote-write send queue.
type QueueConfig struct {
	// MaxBytes bounds the queued data (default 64MiB); when full, the receiver answers 503.
	MaxBytes setting.ByteSize `yaml:"max_bytes"`
	// MaxSamplesPerSend caps one request (default 2000).
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// Shards is the number of concurrent senders (default 4, at most MaxShards).
	Shards int `yaml:"shards"`
	// MinBackoff and MaxBackoff bound the retry backoff (default 30ms and 5s).
	MinBackoff setting.Duration `yaml:"min_backoff"`
	MaxBackoff setting.Duration `yaml:"max_backoff"`
}

// DefaultRemoteWriteConfig is a remote_write entry with only its URL to fill in.
func DefaultRemoteWriteConfig() RemoteWriteConfig {
	return RemoteWriteConfig{
		Timeout: setting.Duration(30 * time.Second),
		MetadataConfig: MetadataConfig{
			Send:              true,
			SendInterval:      setting.Duration(time.Minute),
			MaxSamplesPerSend: 500,
		},
		Queue: QueueConfig{
			MaxBytes:          64 << 20,
			MaxSamplesPerSend: 2000,
			Shards:            4,
			MinBackoff:        setting.Duration(30 * time.Millisecond),
			MaxBackoff:        setting.Duration(5 * time.Second),
		},
	}
}

// plainRemoteWrite has no methods, so decoding into it does not recurse.
type plainRemoteWrite RemoteWriteConfig

// UnmarshalYAML fills the defaults, then the keys present. (The decoder's older Unmarshaler
// interface keeps its strict unknown-key checking, which decoding a yaml.Node would not.)
func (c *RemoteWriteConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultRemoteWriteConfig()
	return unmarshal((*plainRemoteWrite)(c))
}

// ReservedHeaders are the headers the remote-write protocol and the HTTP client own, which
// headers: may not set (as in Prometheus).
func ReservedHeaders() []string {
	return []string{
		"Host", "Content-Encoding", "Content-Length", "Content-Type", "User-Agent", "Connection",
		"Keep-Alive", "Proxy-Authorization", "Accept-Encoding",
		"X-Prometheus-Remote-Write-Version",
	}
}

// Validate reports every problem of the entry, each as a *setting.Error at its key.
func (c *RemoteWriteConfig) Validate() error {
	var errs []error
	add := func(e *setting.Error) { errs = append(errs, e) }
	if c.URL == "" {
		add(setting.At("url").Errorf("remote_write: url is required"))
	} else if err := CheckHTTPURL(c.URL); err != nil {
		add(setting.At("url").Errorf("remote_write url: %v", err))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		at := setting.At("headers", name)
		switch value := c.Headers[name]; {
		case !validHeaderName(name):
			add(at.Errorf("headers: %q is not a valid HTTP header name", name))
		case strings.EqualFold(name, "Authorization"):
			add(at.Errorf("headers: set Authorization with basic_auth, bearer_token or bearer_token_file"))
		case slices.Contains(ReservedHeaders(), http.CanonicalHeaderKey(name)):
			add(at.Errorf("headers: %s is set by cardinal's remote-write client and cannot be overridden", http.CanonicalHeaderKey(name)))
		case strings.ContainsAny(value, "\r\n"):
			add(at.Errorf("headers: the value of %s contains a line break", name))
		}
	}
	auths := 0
	for _, set := range []bool{c.BasicAuth != nil, c.BearerToken != "", c.BearerTokenFile != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		add(setting.At().Errorf("remote_write: basic_auth, bearer_token and bearer_token_file are mutually exclusive"))
	}
	if ba := c.BasicAuth; ba != nil {
		if ba.Username == "" {
			add(setting.At("basic_auth", "username").Errorf("basic_auth: username is required"))
		}
		if ba.Password != "" && ba.PasswordFile != "" {
			add(setting.At("basic_auth", "password_file").Errorf("basic_auth: password and password_file are mutually exclusive"))
		}
	}
	if t := c.TLSConfig; t != nil {
		if err := setting.Within(t.Validate(), "tls_config", "remote_write tls_config: "); err != nil {
			errs = append(errs, err)
		}
		if u, err := url.Parse(c.URL); err == nil && u.Scheme == "http" {
			add(setting.At("tls_config").Errorf("remote_write: tls_config is set but the url is http://; use https://"))
		}
	}
	if c.Timeout <= 0 {
		add(setting.At("timeout").Errorf("remote_write: timeout must be more than 0"))
	}
	if m := c.ProtobufMessage; m != "" && m != MessageV1 && m != MessageV2 {
		add(setting.At("protobuf_message").Errorf("remote_write: protobuf_message must be %s (Remote Write 1.0, the default) or %s (2.0), not %q", MessageV1, MessageV2, m))
	}
	if m := c.MetadataConfig; m.Send && m.SendInterval <= 0 {
		add(setting.At("metadata_config", "send_interval").Errorf("remote_write: metadata_config.send_interval must be more than 0"))
	}
	if m := c.MetadataConfig; m.Send && m.MaxSamplesPerSend <= 0 {
		add(setting.At("metadata_config", "max_samples_per_send").Errorf("remote_write: metadata_config.max_samples_per_send must be more than 0"))
	}
	for _, e := range setting.Errors(c.Queue.Validate()) {
		add(&setting.Error{Key: append(setting.At("queue"), e.Key...), Msg: e.Msg})
	}
	return errors.Join(errs...)
}

// CheckFiles reads the files the entry names (password or token, certificates and keys), as
// start-up does, and reports each it cannot use as a *setting.Error at its key. It is
// separate from Validate, which looks at the settings alone: `cardinal check config
// --syntax-only` skips it.
func (c *RemoteWriteConfig) CheckFiles() error {
	var errs []error
	if err := SetAuthorization(http.Header{}, c.BasicAuth, c.BearerToken, c.BearerTokenFile); err != nil {
		errs = append(errs, AuthorizationFileKey(c.BasicAuth).Errorf("remote_write: %v", err))
	}
	if c.TLSConfig != nil && c.TLSConfig.Validate() == nil {
		if _, err := c.clientTLS(nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clientTLS builds the entry's TLS client configuration (nil without tls_config), which tells
// report of files that break later; its errors are *setting.Error values at the keys of the
// files it could not use.
func (c *RemoteWriteConfig) clientTLS(report func(error)) (*ClientTLS, error) {
	if c.TLSConfig == nil {
		return nil, nil
	}
	cfg, err := c.TLSConfig.Client(report)
	return cfg, setting.Within(err, "tls_config", "remote_write tls_config: ")
}

// Validate reports every problem of the queue settings.
func (q *QueueConfig) Validate() error {
	var errs []error
	if q.MaxBytes <= 0 {
		errs = append(errs, setting.At("max_bytes").Errorf("queue.max_bytes must be more than 0"))
	}
	if q.MaxSamplesPerSend <= 0 {
		errs = append(errs, setting.At("max_samples_per_send").Errorf("queue.max_samples_per_send must be more than 0"))
	}
	switch {
	case q.Shards <= 0:
		errs = append(errs, setting.At("shards").Errorf("queue.shards must be more than 0"))
	case q.Shards > MaxShards:
		errs = append(errs, setting.At("shards").Errorf("queue.shards must be at most %d, not %d", MaxShards, q.Shards))
	}
	if q.MinBackoff <= 0 {
		errs = append(errs, setting.At("min_backoff").Errorf("queue.min_backoff must be more than 0"))
	}
	if q.MaxBackoff < q.MinBackoff {
		errs = append(errs, setting.At("max_backoff").Errorf("queue.max_backoff %s is shorter than min_backoff %s", q.MaxBackoff, q.MinBackoff))
	}
	return errors.Join(errs...)
}

// CheckHTTPURL accepts an absolute http or https URL with a host. Its errors never repeat
// the URL's userinfo or query, which may hold credentials.
func CheckHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("URL does not parse: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", redactURL(u))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has port %s, which is not 1 to 65535", redactURL(u), p)
		}
	}
	return nil
}

// redactURL renders u for logs and errors: no userinfo, and the query (which may carry
// tokens) elided.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, Opaque: u.Opaque}
	s := r.String()
	if u.RawQuery != "" {
		s += "?<redacted>"
	}
	return s
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
