package websecurity

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/cardinal-proxy/cardinal/internal/testcert"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestWebConfigErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	testcert.Write(t, dir, 1)
	writeFile(t, filepath.Join(dir, "empty-token"), "\n")
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" for valid
	}{
		{"tls_and_users_valid", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: " + bcryptHash(t, "pw") + "\n", ""},
		{"unknown_key", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  ca: x\n", "web.yml:4: field ca is not a key of tlsServerConfig"},
		{"unknown_top_level_key", "http_server_config:\n  http2: false\n", "web.yml:1: field http_server_config is not a key of webConfig"},
		{"cert_without_key", "tls_server_config:\n  cert_file: cert.pem\n", "web.yml:1: tls_server_config needs both cert_file and key_file"},
		{"missing_cert_file", "tls_server_config:\n  cert_file: nope.pem\n  key_file: key.pem\n", "web.yml:1: tls_server_config: loading the certificate"},
		{"bad_min_version", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: SSL3\n", "web.yml:4: tls_server_config.min_version"},
		{"password_not_bcrypt", "basic_auth_users:\n  alice: hunter2\n", "web.yml:2: basic_auth_users: the password of \"alice\" is not a bcrypt hash"},
		{"empty_token_file", "bearer_token_file: empty-token\n", "web.yml:1: bearer_token_file"},
		{"not_yaml", "basic_auth_users: [\n", "web.yml:"},
		{"older_name_of_require_any", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireClientCert\n", ""},
		{"client_certificates_valid", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: cert.pem\n", ""},
		{"bad_client_auth_type", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: Required\n", "web.yml:4: tls_server_config.client_auth_type must be NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert, not \"Required\""},
		{"client_ca_without_policy", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_ca_file: cert.pem\n", "web.yml:4: tls_server_config.client_ca_file is set but client_auth_type is NoClientCert"},
		{"missing_client_ca_file", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n", "web.yml:5: tls_server_config.client_ca_file: open " + filepath.Join(dir, "ca.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "web.yml")
			writeFile(t, path, tt.yaml)
			_, err := loadWebConfig(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error reveals the configured password: %v", err)
			}
		})
	}
}

// Without --web.config.file the server is plain HTTP and open: New returns nil, and a nil
// Security neither turns TLS on nor asks for credentials.
func TestNoWebConfigMeansPlainHTTPWithoutAuthentication(t *testing.T) {
	w, err := New("", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil || w != nil {
		t.Fatalf("New(\"\") = %v, %v; want nil, nil", w, err)
	}
	if cfg, ok := w.TLS(); ok || cfg != nil {
		t.Errorf("TLS() = %v, %v; want nil, false", cfg, ok)
	}
	h := w.Protect(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(204) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/write", nil))
	if rec.Code != 204 {
		t.Errorf("status %d without credentials, want 204", rec.Code)
	}
}

func TestAuthenticationOfRequests(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), "t0ken-value\n")
	path := filepath.Join(dir, "web.yml")
	writeFile(t, path, "basic_auth_users:\n  alice: "+bcryptHash(t, "s3cret")+"\nbearer_token_file: token\n")
	reg := prometheus.NewRegistry()
	w, err := New(path, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := w.Protect(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(204) }))

	tests := []struct {
		name     string
		path     string
		auth     func(*http.Request)
		wantCode int
	}{
		{"right_password", "/api/v1/write", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, 204},
		{"right_password_again_from_the_cache", "/api/v1/write", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, 204},
		{"right_token", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer t0ken-value") }, 204},
		{"wrong_password", "/api/v1/write", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret!") }, 401},
		{"unknown_user", "/", func(r *http.Request) { r.SetBasicAuth("bob", "s3cret") }, 401},
		{"wrong_token", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer t0ken") }, 401},
		{"no_credentials", "/", func(*http.Request) {}, 401},
		{"other_scheme", "/-/reload", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, 401},
		{"health_needs_none", "/-/healthy", func(*http.Request) {}, 204},
		{"readiness_needs_none", "/-/ready", func(*http.Request) {}, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tt.path, nil)
			tt.auth(r)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantCode == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without a WWW-Authenticate challenge")
			}
		})
	}
	if n := len(w.verified.keys); n != 1 {
		t.Errorf("%d verified credentials cached, want 1", n)
	}
}

// listenerOnAClock loads the web config at path, with TLS on, and returns the listener's
// TLS configuration and the clock it reads: moved by webConfigCheckInterval, the files are
// checked again at the next handshake.
func listenerOnAClock(t *testing.T, path string, reg *prometheus.Registry) (*tls.Config, *time.Time) {
	t.Helper()
	w, err := New(path, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clk := time.Unix(1000, 0)
	w.now = func() time.Time { return clk }
	w.next.Store(0)
	cfg, ok := w.TLS()
	if !ok {
		t.Fatal("TLS is off")
	}
	return cfg, &clk
}

// The certificate served changes when the files are replaced, without a restart; a broken
// pair keeps the previous one in service.
func TestCertificateReloadsWhenItsFilesChange(t *testing.T) {
	dir := t.TempDir()
	testcert.Write(t, dir, 1)
	path := filepath.Join(dir, "web.yml")
	writeFile(t, path, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")
	reg := prometheus.NewRegistry()
	cfg, clk := listenerOnAClock(t, path, reg)
	served := func() int64 {
		t.Helper()
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	if s := served(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	testcert.Write(t, dir, 2)
	if s := served(); s != 1 {
		t.Fatalf("serial %d within the check interval, want still 1", s)
	}
	*clk = clk.Add(webConfigCheckInterval)
	if s := served(); s != 2 {
		t.Fatalf("serial %d after the files changed, want 2", s)
	}
	writeFile(t, filepath.Join(dir, "key.pem"), "not a key")
	*clk = clk.Add(webConfigCheckInterval)
	if s := served(); s != 2 {
		t.Fatalf("serial %d after a broken key was written, want the previous certificate (2)", s)
	}
	if v := gaugeValue(t, reg, "cardinal_web_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful = %v after a failed reload, want 0", v)
	}
	testcert.Write(t, dir, 3)
	*clk = clk.Add(webConfigCheckInterval)
	if s := served(); s != 3 {
		t.Fatalf("serial %d after a good pair was written again, want 3", s)
	}
	if v := gaugeValue(t, reg, "cardinal_web_config_last_reload_successful"); v != 1 {
		t.Errorf("last_reload_successful = %v, want 1", v)
	}
}

func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// With client_auth_type RequireAndVerifyClientCert the listener takes only clients whose
// certificate client_ca_file verifies; a CA file renewed in place is used once the files
// are checked again, and the old client certificate is then refused.
func TestClientCertificatesAreVerifiedAgainstTheClientCAFile(t *testing.T) {
	dir, clients, stranger := t.TempDir(), t.TempDir(), t.TempDir()
	testcert.Write(t, dir, 1)
	testcert.Write(t, clients, 101) // self-signed: the client CA file is the certificate itself
	testcert.Write(t, stranger, 201)
	path := filepath.Join(dir, "web.yml")
	writeFile(t, path, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: "+filepath.Join(clients, testcert.CertFile)+"\n")
	cfg, clk := listenerOnAClock(t, path, prometheus.NewRegistry())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(204) }))
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	// get connects anew, trusting the server's certificate, presenting the pair in certDir
	// ("" for none).
	get := func(certDir string) error {
		t.Helper()
		ca, err := os.ReadFile(filepath.Join(dir, testcert.CertFile))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca)
		tc := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		if certDir != "" {
			pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, testcert.CertFile), filepath.Join(certDir, testcert.KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(clients); err != nil {
		t.Fatalf("a client certificate the CA file verifies: %v", err)
	}
	if err := get(""); err == nil {
		t.Error("a client without a certificate was let in")
	}
	if err := get(stranger); err == nil {
		t.Error("a client certificate the CA file does not verify was let in")
	}
	old := t.TempDir() // the pair the CA file held until now
	for _, f := range []string{testcert.CertFile, testcert.KeyFile} {
		b, err := os.ReadFile(filepath.Join(clients, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(old, f), string(b))
	}
	testcert.Write(t, clients, 102)
	*clk = clk.Add(webConfigCheckInterval)
	if err := get(clients); err != nil {
		t.Fatalf("the renewed client certificate after the CA file was renewed: %v", err)
	}
	if err := get(old); err == nil {
		t.Error("the certificate the CA file held before its renewal was let in: the old CA still counts")
	}
}

// A min_version written into the web config holds from the next handshake on, as the
// certificate does.
func TestMinVersionFollowsTheWebConfig(t *testing.T) {
	dir := t.TempDir()
	testcert.Write(t, dir, 1)
	path := filepath.Join(dir, "web.yml")
	writeFile(t, path, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS12\n")
	cfg, clk := listenerOnAClock(t, path, prometheus.NewRegistry())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(204) }))
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	tls12 := func() error {
		conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}) // only the version matters
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := tls12(); err != nil {
		t.Fatalf("TLS 1.2 with min_version TLS12: %v", err)
	}
	writeFile(t, path, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS13\n")
	*clk = clk.Add(webConfigCheckInterval)
	if err := tls12(); err == nil {
		t.Error("TLS 1.2 accepted after min_version became TLS13")
	}
}
