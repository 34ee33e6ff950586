package downstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
// cannot be read or parsed then leaves the last good one in use, and report (when not nil)
// is told once per broken content.
func (t *TLSConfig) Client(report func(error)) (*ClientTLS, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if report == nil {
		report = func(error) {}
	}
	c := &ClientTLS{base: &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}}
	var errs []error
	if t.CAFile != "" && !t.InsecureSkipVerify {
		c.roots = &rootsFile{path: t.CAFile, report: report}
		if _, err := c.roots.pool(); err != nil {
			errs = append(errs, setting.At("ca_file").Errorf("ca_file: %v", err))
		}
	}
	if t.CertFile != "" {
		pair := &keyPairFiles{cert: t.CertFile, key: t.KeyFile, report: report}
		if _, key, err := pair.load(); err != nil {
			at := setting.At("cert_file")
			if key {
				at = setting.At("key_file")
			}
			errs = append(errs, at.Errorf("%s: %v", at[0], err))
		}
		c.base.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return pair.certificate(), nil
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// ClientTLS makes the TLS configuration of the connections of a client, with the CA file's
// and the client certificate's content at the moment each one is opened.
type ClientTLS struct {
	base  *tls.Config
	roots *rootsFile // nil: the system's roots (or no verification)
}

// ForServer returns the configuration of connections to the server named name (the host of
// a downstream's URL, unless server_name says another), for an http.Transport's
// TLSClientConfig, which serves through a proxy too. With a CA file, crypto/tls's check of
// the server's chain and name is made here, as crypto/tls makes it, against the roots in
// the file when the connection is opened.
func (c *ClientTLS) ForServer(name string) *tls.Config {
	cfg := c.base.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = name
	}
	if c.roots != nil {
		serverName := cfg.ServerName
		cfg.InsecureSkipVerify = true // verified below, not skipped
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return c.roots.verify(cs, serverName) }
	}
	return cfg
}

// DialTLS returns an http.Transport's DialTLSContext for a client of many servers (a
// cluster's peers): it dials addr with d and makes the connection TLS, checking the server
// against addr's host unless server_name says another. It does not go through a proxy.
func (c *ClientTLS) DialTLS(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		td := tls.Dialer{NetDialer: d, Config: c.ForServer(host)}
		return td.DialContext(ctx, network, addr)
	}
}

// rootsFile is a CA file read again at each connection, parsed only when its content changed.
type rootsFile struct {
	path   string
	report func(error)

	mu       sync.Mutex
	pem      []byte
	parsed   *x509.CertPool
	reported string // the last error reported, so that a broken file is reported once
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
			r.pem, r.parsed, r.reported = raw, p, ""
			return p, nil
		}
		err = fmt.Errorf("%s: no PEM certificate in it", r.path)
	}
	if r.parsed != nil && err.Error() != r.reported {
		r.reported = err.Error()
		r.report(fmt.Errorf("ca_file: %w; the last good CA certificates stay in use", err))
	}
	return r.parsed, err
}

// current is pool for a connection: the last good roots, never nil once Client succeeded.
func (r *rootsFile) current() *x509.CertPool {
	p, _ := r.pool()
	return p
}

// verify checks the server's chain against the file's roots and serverName, as crypto/tls
// does with RootCAs and ServerName set.
func (r *rootsFile) verify(cs tls.ConnectionState, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: r.current(), DNSName: serverName, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// keyPairFiles is a client certificate and its key, read again at each handshake that asks
// for one and parsed only when either file changed.
type keyPairFiles struct {
	cert, key string
	report    func(error)

	mu              sync.Mutex
	certPEM, keyPEM []byte
	parsed          *tls.Certificate
	reported        string
}

// load returns the pair in the files now, or the last good one with the error when they
// cannot be read or do not make a pair (one file renewed before the other); key says the
// error is the key file's.
func (k *keyPairFiles) load() (_ *tls.Certificate, key bool, _ error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	certPEM, err := os.ReadFile(k.cert)
	if err != nil {
		return k.last(err, false)
	}
	keyPEM, err := os.ReadFile(k.key)
	if err != nil {
		return k.last(err, true)
	}
	if k.parsed != nil && bytes.Equal(certPEM, k.certPEM) && bytes.Equal(keyPEM, k.keyPEM) {
		return k.parsed, false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return k.last(fmt.Errorf("%s and %s: %w", k.cert, k.key, err), false)
	}
	k.certPEM, k.keyPEM, k.parsed, k.reported = certPEM, keyPEM, &pair, ""
	return k.parsed, false, nil
}

// last is the last good pair, if any, in place of one that could not be loaded; a new
// error is reported once.
func (k *keyPairFiles) last(err error, key bool) (*tls.Certificate, bool, error) {
	if k.parsed != nil && err.Error() != k.reported {
		k.reported = err.Error()
		k.report(fmt.Errorf("client certificate: %w; the last good one stays in use", err))
	}
	return k.parsed, key, err
}

// certificate is the pair to present at a handshake: the files' now, or the last good one.
func (k *keyPairFiles) certificate() *tls.Certificate {
	c, _, _ := k.load()
	return c
}
