package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// A client that trusts the returned certificate completes a handshake with a server that
// loaded the written files, and a second Write replaces both files with a new serial.
func TestWrittenPairServesAVerifiedHandshake(t *testing.T) {
	dir := t.TempDir()
	for _, serial := range []int64{1, 2} {
		ca := Write(t, dir, serial)
		if got := ca.SerialNumber.Int64(); got != serial {
			t.Fatalf("serial %d, want %d", got, serial)
		}
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
		if err != nil {
			t.Fatalf("the written files are not a key pair: %v", err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		srv.StartTLS()
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := client.Get(srv.URL)
		if err != nil {
			srv.Close()
			t.Fatalf("serial %d: handshake: %v", serial, err)
		}
		served := resp.TLS.PeerCertificates[0].SerialNumber.Int64()
		resp.Body.Close()
		srv.Close()
		if served != serial {
			t.Errorf("served serial %d, want %d", served, serial)
		}
	}
}
