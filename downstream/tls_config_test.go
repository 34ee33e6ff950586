package downstream

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/internal/testcert"
)

// tlsServer is an HTTPS server that requires a client certificate, serving the certificate
// in its directory's files as they are at each handshake, as a renewing server does.
type tlsServer struct {
	URL     string
	mu      sync.Mutex
	clients []int64 // serial numbers of the client certificates presented, in order
}

func startTLSServer(t *testing.T, dir string) *tlsServer {
	t.Helper()
	s := &tlsServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.URL = "https://" + ln.Addr().String()
	// Not httptest's StartTLS: its own certificate would win over GetCertificate for a
	// client that sends no server name (one dialling an IP address).
	srv := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ErrorLog: log.New(io.Discard, "", 0), // the refused handshakes the tests cause
		TLSConfig: &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				pair, err := tls.LoadX509KeyPair(filepath.Join(dir, testcert.CertFile), filepath.Join(dir, testcert.KeyFile))
				return &pair, err
			},
			ClientAuth: tls.RequireAnyClientCert,
			VerifyConnection: func(cs tls.ConnectionState) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.clients = append(s.clients, cs.PeerCertificates[0].SerialNumber.Int64())
				return nil
			},
		},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// lastClient is the serial number of the last client certificate presented (0: none yet).
func (s *tlsServer) lastClient() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) == 0 {
		return 0
	}
	return s.clients[len(s.clients)-1]
}

// get makes one request on a new connection dialled as a remote_write sender dials it; it
// returns the serial number of the certificate the server presented.
func get(t *testing.T, c *ClientTLS, url string) (int64, error) {
	t.Helper()
	tr := &http.Transport{DialTLSContext: c.DialTLS(&net.Dialer{})}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// A client built from tls_config trusts the server through ca_file and presents its
// certificate; both files are read again at the next connection, so a renewed server
// certificate (a new CA file with it) and a renewed client certificate are used without
// building the client again. A file that breaks later leaves the last good one in use.
func TestTLSConfigReadsItsFilesAgainAtEachConnection(t *testing.T) {
	serverDir, clientDir := t.TempDir(), t.TempDir()
	caFile := filepath.Join(clientDir, "ca.pem") // a copy of the server's self-signed certificate
	trust := func() {
		t.Helper()
		pem, err := os.ReadFile(filepath.Join(serverDir, testcert.CertFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caFile, pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testcert.Write(t, serverDir, 1)
	trust()
	testcert.Write(t, clientDir, 101)
	srv := startTLSServer(t, serverDir)
	cfg, err := (&TLSConfig{
		CAFile:   caFile,
		CertFile: filepath.Join(clientDir, testcert.CertFile),
		KeyFile:  filepath.Join(clientDir, testcert.KeyFile),
	}).Client()
	if err != nil {
		t.Fatal(err)
	}
	if served, err := get(t, cfg, srv.URL); err != nil || served != 1 || srv.lastClient() != 101 {
		t.Fatalf("first connection: served %d, client %d, %v; want 1, 101", served, srv.lastClient(), err)
	}

	testcert.Write(t, serverDir, 2) // a new key and certificate, which the old CA file does not verify
	trust()
	testcert.Write(t, clientDir, 102)
	if served, err := get(t, cfg, srv.URL); err != nil || served != 2 || srv.lastClient() != 102 {
		t.Fatalf("after renewal: served %d, client %d, %v; want 2, 102", served, srv.lastClient(), err)
	}

	for _, f := range []string{caFile, filepath.Join(clientDir, testcert.KeyFile)} {
		if err := os.WriteFile(f, []byte("not PEM"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if served, err := get(t, cfg, srv.URL); err != nil || served != 2 || srv.lastClient() != 102 {
		t.Fatalf("with broken files: served %d, client %d, %v; want the last good ones: 2, 102", served, srv.lastClient(), err)
	}
}

// A server certificate the CA file does not hold, or one for another name, fails the
// handshake: moving verification out of crypto/tls (to read the CA file each time) does not
// turn it off.
func TestTLSConfigRefusesWhatItsCAFileDoesNotVerify(t *testing.T) {
	serverDir, otherDir, clientDir := t.TempDir(), t.TempDir(), t.TempDir()
	testcert.Write(t, serverDir, 1)
	testcert.Write(t, otherDir, 3)
	testcert.Write(t, clientDir, 101)
	srv := startTLSServer(t, serverDir)
	client := TLSConfig{CertFile: filepath.Join(clientDir, testcert.CertFile), KeyFile: filepath.Join(clientDir, testcert.KeyFile)}

	other := client
	other.CAFile = filepath.Join(otherDir, testcert.CertFile)
	cfg, err := other.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, srv.URL); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("a CA file without the server's CA: %v, want an unknown authority", err)
	}

	wrongName := client
	wrongName.CAFile, wrongName.ServerName = filepath.Join(serverDir, testcert.CertFile), "prometheus.example"
	if cfg, err = wrongName.Client(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, srv.URL); err == nil || !strings.Contains(err.Error(), "prometheus.example") {
		t.Errorf("server_name the certificate is not for: %v, want a name mismatch", err)
	}

	skip := other
	skip.InsecureSkipVerify = true
	if cfg, err = skip.Client(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, srv.URL); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
}

// The files' problems are reported at their keys when the client is built.
func TestTLSConfigReportsItsFilesAtTheirKeys(t *testing.T) {
	dir := t.TempDir()
	testcert.Write(t, dir, 1)
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := (&TLSConfig{CAFile: notPEM, CertFile: filepath.Join(dir, testcert.CertFile), KeyFile: filepath.Join(dir, "missing.pem")}).Client()
	var keys []string
	for _, e := range setting.Errors(err) {
		keys = append(keys, e.Key[0].(string)+": "+e.Msg)
	}
	want := []string{
		"ca_file: ca_file " + notPEM + ": no PEM certificate in it",
		"cert_file: cert_file " + filepath.Join(dir, testcert.CertFile) + " and key_file " + filepath.Join(dir, "missing.pem") + ": open " + filepath.Join(dir, "missing.pem") + ": no such file or directory",
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	if _, err := (&TLSConfig{CertFile: "c.pem"}).Client(); err == nil || err.Error() != "cert_file and key_file go together" {
		t.Errorf("cert_file alone: %v", err)
	}
}
