package downstream

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// connectProxy is an HTTP proxy that tunnels CONNECT requests, as HTTPS_PROXY names one.
// The test fails if it tunnelled nothing.
func connectProxy(t *testing.T) *url.URL {
	t.Helper()
	var tunnels atomic.Int64
	t.Cleanup(func() {
		if tunnels.Load() == 0 {
			t.Error("the proxy tunnelled no connection")
		}
	})
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tunnels.Add(1)
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		go func() { _, _ = io.Copy(upstream, buf); upstream.Close() }()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
	}))
	t.Cleanup(p.Close)
	u, _ := url.Parse(p.URL)
	return u
}

// A transport of each kind a ClientTLS makes: a peer's (DialTLS), a downstream's
// (ForServer), and a downstream's through a proxy.
var clientKinds = []struct {
	name      string
	transport func(t *testing.T, c *ClientTLS, serverURL string) *http.Transport
}{
	{"dial", func(_ *testing.T, c *ClientTLS, _ string) *http.Transport {
		return &http.Transport{DialTLSContext: c.DialTLS(&net.Dialer{})}
	}},
	{"server", func(_ *testing.T, c *ClientTLS, serverURL string) *http.Transport {
		u, _ := url.Parse(serverURL)
		return &http.Transport{TLSClientConfig: c.ForServer(u.Hostname())}
	}},
	{"proxy", func(t *testing.T, c *ClientTLS, serverURL string) *http.Transport {
		u, _ := url.Parse(serverURL)
		return &http.Transport{TLSClientConfig: c.ForServer(u.Hostname()), Proxy: http.ProxyURL(connectProxy(t))}
	}},
}

// get makes one request on a new connection of tr; it returns the serial number of the
// certificate the server presented.
func get(tr *http.Transport, url string) (int64, error) {
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
// building the client again. A file that breaks later leaves the last good one in use, and
// is reported once.
func TestTLSConfigReadsItsFilesAgainAtEachConnection(t *testing.T) {
	for _, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
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
			var reported []string
			c, err := (&TLSConfig{
				CAFile:   caFile,
				CertFile: filepath.Join(clientDir, testcert.CertFile),
				KeyFile:  filepath.Join(clientDir, testcert.KeyFile),
			}).Client(func(err error) { reported = append(reported, err.Error()) })
			if err != nil {
				t.Fatal(err)
			}
			if served, err := get(kind.transport(t, c, srv.URL), srv.URL); err != nil || served != 1 || srv.lastClient() != 101 {
				t.Fatalf("first connection: served %d, client %d, %v; want 1, 101", served, srv.lastClient(), err)
			}

			testcert.Write(t, serverDir, 2) // a new key and certificate, which the old CA file does not verify
			trust()
			testcert.Write(t, clientDir, 102)
			if served, err := get(kind.transport(t, c, srv.URL), srv.URL); err != nil || served != 2 || srv.lastClient() != 102 {
				t.Fatalf("after renewal: served %d, client %d, %v; want 2, 102", served, srv.lastClient(), err)
			}

			for _, f := range []string{caFile, filepath.Join(clientDir, testcert.KeyFile)} {
				if err := os.WriteFile(f, []byte("not PEM"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if served, err := get(kind.transport(t, c, srv.URL), srv.URL); err != nil || served != 2 || srv.lastClient() != 102 {
					t.Fatalf("with broken files: served %d, client %d, %v; want the last good ones: 2, 102", served, srv.lastClient(), err)
				}
			}
			if len(reported) != 2 || !strings.HasPrefix(reported[0], "ca_file: ") || !strings.HasPrefix(reported[1], "client certificate: ") {
				t.Errorf("reported %q, want the CA file and the client certificate once each", reported)
			}
		})
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
	wrongName := client
	wrongName.CAFile, wrongName.ServerName = filepath.Join(serverDir, testcert.CertFile), "prometheus.example"
	skip := other
	skip.InsecureSkipVerify = true
	for _, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, tt := range []struct {
				name    string
				cfg     TLSConfig
				wantErr string // "" for a connection
			}{
				{"a CA file without the server's CA", other, "certificate signed by unknown authority"},
				{"server_name the certificate is not for", wrongName, "prometheus.example"},
				{"insecure_skip_verify", skip, ""},
			} {
				c, err := tt.cfg.Client(nil)
				if err != nil {
					t.Fatal(err)
				}
				_, err = get(kind.transport(t, c, srv.URL), srv.URL)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
				}
			}
		})
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
	cert, missing := filepath.Join(dir, testcert.CertFile), filepath.Join(dir, "missing.pem")
	for _, tt := range []struct {
		cfg  TLSConfig
		want []string
	}{
		{TLSConfig{CAFile: notPEM, CertFile: cert, KeyFile: missing}, []string{
			"ca_file: ca_file: " + notPEM + ": no PEM certificate in it",
			"key_file: key_file: open " + missing + ": no such file or directory",
		}},
		{TLSConfig{CAFile: missing, CertFile: missing, KeyFile: cert}, []string{
			"ca_file: ca_file: open " + missing + ": no such file or directory",
			"cert_file: cert_file: open " + missing + ": no such file or directory",
		}},
		{TLSConfig{CertFile: cert, KeyFile: cert}, []string{
			"cert_file: cert_file: " + cert + " and " + cert + ": tls: found a certificate rather than a key in the PEM for the private key",
		}},
	} {
		_, err := tt.cfg.Client(nil)
		var got []string
		for _, e := range setting.Errors(err) {
			got = append(got, e.Key[0].(string)+": "+e.Msg)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	if _, err := (&TLSConfig{CertFile: "c.pem"}).Client(nil); err == nil || err.Error() != "cert_file and key_file go together" {
		t.Errorf("cert_file alone: %v", err)
	}
}

// A remote_write entry with tls_config sends over TLS verified by its ca_file and presents
// its client certificate, directly and through a proxy (HTTPS_PROXY's kind).
func TestRemoteWriteSendsWithItsTLSConfig(t *testing.T) {
	for _, proxied := range []bool{false, true} {
		t.Run(fmt.Sprintf("proxied=%v", proxied), func(t *testing.T) {
			serverDir, clientDir := t.TempDir(), t.TempDir()
			testcert.Write(t, serverDir, 1)
			testcert.Write(t, clientDir, 101)
			srv := startTLSServer(t, serverDir)
			cfg := testConfig(srv.URL + "/api/v1/write")
			cfg.TLSConfig = &TLSConfig{
				CAFile:   filepath.Join(serverDir, testcert.CertFile),
				CertFile: filepath.Join(clientDir, testcert.CertFile),
				KeyFile:  filepath.Join(clientDir, testcert.KeyFile),
			}
			c := newTestClient(t, cfg, nil)
			if proxied {
				c.s.transport.Proxy = http.ProxyURL(connectProxy(t))
			}
			c.Start()
			c.Send(seriesBatch(1, 1))
			eventually(t, 5*time.Second, "a request with the client certificate", func() bool { return srv.lastClient() == 101 })
		})
	}
}
