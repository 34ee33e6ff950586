package websecurity

import (
	"crypto/tls"
	"errors"
)

// errNoCertificate is returned to a TLS handshake when no certificate is loaded, which
// cannot happen once the server has started.
var errNoCertificate = errors.New("no TLS certificate loaded")

// tlsConfig returns the listener's TLS configuration: the certificate, the client
// certificate policy and the CAs that verify client certificates come from the current web
// config state at each handshake, so renewed files are used from the next connection on,
// without a restart.
func (w *Security) tlsConfig(minVersion uint16) *tls.Config {
	getCertificate := func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if st := w.refresh(); st.cert != nil {
			return st.cert, nil
		}
		return nil, errNoCertificate
	}
	return &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: getCertificate,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			st := w.refresh()
			auth := tls.NoClientCert
			if t := st.cfg.TLSServerConfig; t != nil {
				auth, _ = t.clientAuth() // checked when loaded
			}
			return &tls.Config{MinVersion: minVersion, GetCertificate: getCertificate, ClientAuth: auth, ClientCAs: st.clientCAs}, nil
		},
	}
}

// loadCertificate loads the key pair of t.
func loadCertificate(t *tlsServerConfig) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}
