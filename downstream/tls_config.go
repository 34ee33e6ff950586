package downstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// TLSConfig is the client side of TLS, as Prometheus's tls_config: a remote_write entry's
// tls_config, and a cluster's forward.tls towards its peers.
type TLSConfig struct {
	// CAFile verifies the server's certificate (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that require one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate is checked against, and sent in SNI
	// (default: the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns verification off.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate reports every problem of the settings alone, each as a *setting.Error at its key
// within the block, with a message that names the key: the caller prefixes both with where
// the block is.
func (t *TLSConfig) Validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return setting.At("cert_file").Errorf("cert_file and key_file go together")
	}
	return nil
}

// Client returns the TLS client of these settings. It reads the files now, and its errors
// (*setting.Error values at the keys of the files, as Validate's) are what start-up and
// `cardinal check config` report. Each new connection reads them again, so that a renewed
// certificate or CA (cert-manager replaces the files) is used without a restart; a file that
// cannot be read or parsed then leaves the last good one in use.
func (t *TLSConfig) Client() (*ClientTLS, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	c := &ClientTLS{base: &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}}
	var errs []error
	if t.CAFile != "" {
		c.roots = &rootsFile{path: t.CAFile}
		if _, err := c.roots.pool(); err != nil {
			errs = append(errs, setting.At("ca_file").Errorf("ca_file %s: %v", t.CAFile, err))
		}
	}
	if t.CertFile != "" {
		pair := &keyPairFiles{cert: t.CertFile, key: t.KeyFile}
		if _, err := pair.certificate(); err != nil {
			errs = append(errs, setting.At("cert_file").Errorf("cert_file %s and key_file %s: %v", t.CertFile, t.KeyFile, err))
		}
		c.base.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return pair.certificate()
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// ClientTLS makes the TLS configuration of each connection a client opens: crypto/tls
// verifies the server as usual, against the CA file's content at that moment.
type ClientTLS struct {
	base  *tls.Config
	roots *rootsFile // nil: the system's roots
}

// config returns the configuration of a connection to host, the name or address dialled,
// which the server's certificate is checked against unless server_name says another.
func (c *ClientTLS) config(host string) *tls.Config {
	cfg := c.base.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if c.roots != nil {
		cfg.RootCAs, _ = c.roots.pool() // the last good roots if the file broke since
	}
	return cfg
}

// DialTLS returns an http.Transport's DialTLSContext: it dials addr with d and makes the
// connection TLS configured by config(addr's host).
func (c *ClientTLS) DialTLS(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		td := tls.Dialer{NetDialer: d, Config: c.config(host)}
		return td.DialContext(ctx, network, addr)
	}
}

// rootsFile is a CA file read again at each connection, parsed only when its content changed.
type rootsFile struct {
	path string

	mu     sync.Mutex
	pem    []byte
	parsed *x509.CertPool
}

// pool returns the roots in the file now, or the last good ones with the error when the file
// cannot be read or holds no certificate.
func (r *rootsFile) pool() (*x509.CertPool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	raw, err := os.ReadFile(r.path)
	switch {
	case err != nil:
	case r.parsed != nil && bytes.Equal(raw, r.pem):
		return r.parsed, nil
	default:
		p := x509.NewCertPool()
		if p.AppendCertsFromPEM(raw) {
			r.pem, r.parsed = raw, p
			return p, nil
		}
		err = errors.New("no PEM certificate in it")
	}
	return r.parsed, err
}

// keyPairFiles is a client certificate and its key, read again at each handshake that asks
// for one and parsed only when either file changed.
type keyPairFiles struct {
	cert, key string

	mu              sync.Mutex
	certPEM, keyPEM []byte
	parsed          *tls.Certificate
}

// certificate returns the pair in the files now, or the last good one with the error when
// they cannot be read or do not make a pair (one file renewed before the other).
func (k *keyPairFiles) certificate() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	certPEM, err := os.ReadFile(k.cert)
	if err != nil {
		return k.last(err)
	}
	keyPEM, err := os.ReadFile(k.key)
	if err != nil {
		return k.last(err)
	}
	if k.parsed != nil && bytes.Equal(certPEM, k.certPEM) && bytes.Equal(keyPEM, k.keyPEM) {
		return k.parsed, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return k.last(err)
	}
	k.certPEM, k.keyPEM, k.parsed = certPEM, keyPEM, &pair
	return k.parsed, nil
}

// last is the last good pair, if any, in place of one that could not be read: a handshake
// goes on with it, and only the first read reports the error.
func (k *keyPairFiles) last(err error) (*tls.Certificate, error) {
	if k.parsed != nil {
		return k.parsed, nil
	}
	return nil, err
}
