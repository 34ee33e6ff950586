package websecurity

import (
	"crypto/tls"
	"errors"
)

// errNoCertificate is returned to a TLS handshake when no certificate is loaded, which
// cannot happen once the server has started.
var errNoCertificate = errors.New("no TLS certificate loaded")

// tlsConfig returns the listener's TLS configuration: the certificate comes from the current
// web config state at each handshake, so a renewed certificate and key written over the
// files is served from the next connection on, without a restart.
func (w *Security) tlsConfig(minVersion uint16) *tls.Config {
	return &tls.Config{
		MinVersion: minVersion,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if st := w.refresh(); st.cert != nil {
				return st.cert, nil
			}
			return nil, errNoCertificate
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
