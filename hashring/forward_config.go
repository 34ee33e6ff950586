package hashring

import (
	"errors"
	"net/http"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream"
)

// ForwardConfig is the cluster's forward section: how a member sends the series it does not
// own to their owners. Peers receive on their ordinary remote-write endpoint, so TLS and
// authentication are the receiver's (--web.config.file) seen from the client side.
type ForwardConfig struct {
	// Queue bounds and shapes the queue to each peer (default: a remote-write downstream's,
	// with 256MiB a peer: a peer's queue holds what arrives while it restarts).
	Queue downstream.QueueConfig `yaml:"queue"`
	// Timeout bounds one request to a peer (default 10s).
	Timeout setting.Duration `yaml:"timeout"`
	// TLS, when set, makes peer requests HTTPS. Without server_name a peer's certificate is
	// checked against the host of its address, as the probes that found it check it (they
	// know no name yet), not against the member name.
	TLS *downstream.TLSConfig `yaml:"tls"`
	// BasicAuth or BearerTokenFile authenticate peer requests; at most one is set.
	BasicAuth       *downstream.BasicAuth `yaml:"basic_auth"`
	BearerTokenFile string                `yaml:"bearer_token_file"`
}

// DefaultForwardConfig is the forward section's defaults.
func DefaultForwardConfig() ForwardConfig {
	q := downstream.DefaultRemoteWriteConfig().Queue
	q.MaxBytes = 256 << 20
	return ForwardConfig{Queue: q, Timeout: setting.Duration(10 * time.Second)}
}

// plainForward has no methods, so decoding into it does not recurse.
type plainForward ForwardConfig

// UnmarshalYAML fills the defaults, then the keys present.
func (c *ForwardConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultForwardConfig()
	return unmarshal((*plainForward)(c))
}

// Validate reports every problem of the section, each as a *setting.Error at its key.
func (c *ForwardConfig) Validate() error {
	var errs []error
	for _, e := range setting.Errors(c.Queue.Validate()) {
		errs = append(errs, &setting.Error{Key: append(setting.At("queue"), e.Key...), Msg: "cluster.forward." + e.Msg})
	}
	if c.Timeout <= 0 {
		errs = append(errs, setting.At("timeout").Errorf("cluster.forward.timeout must be positive, not %s", c.Timeout))
	}
	if c.BasicAuth != nil && c.BearerTokenFile != "" {
		errs = append(errs, setting.At("bearer_token_file").Errorf("cluster.forward: basic_auth and bearer_token_file are mutually exclusive"))
	}
	if c.BasicAuth != nil {
		if c.BasicAuth.Username == "" {
			errs = append(errs, setting.At("basic_auth", "username").Errorf("cluster.forward.basic_auth.username is required"))
		}
		if c.BasicAuth.Password != "" && c.BasicAuth.PasswordFile != "" {
			errs = append(errs, setting.At("basic_auth", "password_file").Errorf("cluster.forward.basic_auth: password and password_file are mutually exclusive"))
		}
	}
	if t := c.TLS; t != nil {
		if err := setting.Within(t.Validate(), "tls", "cluster.forward.tls: "); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckFiles reads the files the section names (certificates, keys, password and token
// files) as start-up does, and reports what it cannot use, each as a *setting.Error at its
// key. It is separate from Validate, which looks at the settings alone: `cardinal check
// config --syntax-only` skips it.
func (c *ForwardConfig) CheckFiles() error {
	var errs []error
	if t := c.TLS; t != nil && t.Validate() == nil {
		if _, err := c.clientTLS(nil); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := authHeader(*c); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// clientTLS builds the TLS client configuration of peer requests (nil without tls), which
// tells report of files that break later. Its errors are *setting.Error values at the keys
// of the files.
func (c *ForwardConfig) clientTLS(report func(error)) (*downstream.ClientTLS, error) {
	if c.TLS == nil {
		return nil, nil
	}
	cfg, err := c.TLS.Client(report)
	return cfg, setting.Within(err, "tls", "cluster.forward.tls: ")
}

// authHeader reads the credentials of peer requests. Its errors are *setting.Error values
// at the key of the file it could not read.
func authHeader(cfg ForwardConfig) (http.Header, error) {
	h := http.Header{}
	if err := downstream.SetAuthorization(h, cfg.BasicAuth, "", cfg.BearerTokenFile); err != nil {
		return nil, downstream.AuthorizationFileKey(cfg.BasicAuth).Errorf("cluster.forward.%v", err)
	}
	return h, nil
}
