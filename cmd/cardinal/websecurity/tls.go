package websecurity

import (
	"crypto/tls"
	"errors"
)

// errNoCertificate is returned to a TLS handshake when no certificate is loaded, which
// cannot happen once the server has started.
var errNoCertificate = errors.New("no TLS certificate loaded")

// tlsConfig returns the listener's TLS configuration: the certificate, the minimum version,
// the client certificate policy and the CAs that verify client certificates come from one
// current web config state at each handshake, so renewed files and a changed policy are
// used from the next connection on, without a restart.
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
			t := st.cfg.TLSServerConfig
			if t == nil || st.cert == nil { // TLS turned off by a reload: the base serves
				return nil, nil
			}
			auth, _ := t.clientAuth() // checked when loaded
			return &tls.Config{
				MinVersion:     t.minTLSVersion(),
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return st.cert, nil },
				ClientAuth:     auth,
				ClientCAs:      st.clientCAs,
			}, nil
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
