package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"golang.org/x/crypto/bcrypt"

	"github.com/cardinal-proxy/cardinal/internal/testcert"
)

// Secrets of the security test; none may ever show in cardinal's log, status page or metrics.
const (
	secUserPassword   = "s3cret-user-pa55"
	secWrongPassword  = "wrong-guess-pa55"
	secWebToken       = "web-b3arer-t0ken"
	secDSBearer       = "ds-b3arer-t0ken"
	secDSBasic        = "ds-basic-pa55"
	secDSURLPassword  = "url-pa55"
	secDSWrongBasic   = "eve-wr0ng-pa55"
	secDSExpectedEves = "eve-right-pa55"
)

// authDownstream is a remote-write receiver in the test that requires one Authorization
// header value, and counts what it accepted and refused.
type authDownstream struct {
	URL        string
	srv        *httptest.Server
	mu         sync.Mutex
	accepted   int // samples
	refused    int // requests
	wantHeader string
}

func startAuthDownstream(t testing.TB, wantHeader string) *authDownstream {
	t.Helper()
	d := &authDownstream{wantHeader: wantHeader}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if r.Header.Get("Authorization") != d.wantHeader {
			d.refused++
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		var req prompb.WriteRequest
		if err == nil {
			err = req.Unmarshal(raw)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, ts := range req.Timeseries {
			d.accepted += len(ts.Samples)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	d.URL = d.srv.URL + "/api/v1/write"
	t.Cleanup(d.srv.Close)
	return d
}

func (d *authDownstream) counts() (accepted, refused int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted, d.refused
}

func basicHeader(user, password string) string {
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// secureCardinal is a cardinal process serving HTTPS.
type secureCardinal struct {
	URL    string // https://127.0.0.1:PORT
	client *http.Client
	proc   *process
}

// startSecureCardinal runs cardinal on configYAML with --web.config.file=webConfigPath and
// waits until GET /-/ready answers 200 over HTTPS, trusting only ca.
func startSecureCardinal(t testing.TB, dir, configYAML, webConfigPath string, ca *x509.Certificate, extraFlags ...string) *secureCardinal {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return startSecureCardinalAt(t, dir, addr, "cardinal.yaml", configYAML, webConfigPath, ca, append([]string{"--log.level=debug"}, extraFlags...)...)
}

// startSecureCardinalAt is startSecureCardinal listening on addr, with its configuration in
// dir/configName; its log is named after the configuration (several may share dir).
func startSecureCardinalAt(t testing.TB, dir, addr, configName, configYAML, webConfigPath string, ca *x509.Certificate, extraFlags ...string) *secureCardinal {
	t.Helper()
	configPath := filepath.Join(dir, configName)
	if err := os.WriteFile(configPath, []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config.file=" + configPath, "--web.listen-address=" + addr, "--web.config.file=" + webConfigPath}, extraFlags...)
	name := strings.TrimSuffix(configName, filepath.Ext(configName))
	c := &secureCardinal{URL: "https://" + addr, proc: newProcess(t, dir, name, buildCardinal(t), args...), client: tlsClient(ca)}
	c.proc.start()
	eventually(t, readyTimeout, "cardinal ready over HTTPS", func() (bool, error) {
		if !c.proc.running() {
			t.Fatalf("cardinal exited (code %d); log:\n%s", c.proc.exitCode(), c.proc.logTail(logTailBytes))
		}
		code, _, err := c.do("GET", "/-/ready", nil, "")
		return code == http.StatusOK, fmt.Errorf("status %d: %v", code, err)
	})
	return c
}

// tlsClient trusts only ca, and opens a new connection for every request so that each one
// sees the certificate served at that moment.
func tlsClient(ca *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}}
}

// do sends a request with the given Authorization header ("" for none) and returns the
// status code and body.
func (c *secureCardinal) do(method, path string, body []byte, authorization string) (int, string, error) {
	req, err := http.NewRequest(method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// servedSerial connects and returns the serial number of the certificate cardinal serves.
func (c *secureCardinal) servedSerial(t testing.TB) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(c.URL, "https://"), &tls.Config{InsecureSkipVerify: true}) // only the serial is read
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestSecurity_tls_auth_and_secrets runs cardinal with --web.config.file (TLS with a
// certificate generated here, basic auth users with bcrypt hashes, a bearer token) and
// downstreams that require credentials. It pins that every endpoint but the probes needs
// credentials, that the lifecycle and pprof endpoints need their flags, that a replaced
// certificate is served without a restart, that each downstream gets its own credentials,
// and that no credential ever shows in the log (at debug level), the status page or /metrics.
func TestSecurity_tls_auth_and_secrets(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.Write(t, dir, 1)
	hash, err := bcrypt.GenerateFromPassword([]byte(secUserPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web-token"), []byte(secWebToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: %s\nbearer_token_file: web-token\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ds-password"), []byte(secDSBasic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	bearerDS := startAuthDownstream(t, "Bearer "+secDSBearer)
	basicDS := startAuthDownstream(t, basicHeader("carol", secDSBasic))
	urlDS := startAuthDownstream(t, basicHeader("dave", secDSURLPassword))
	wrongDS := startAuthDownstream(t, basicHeader("eve", secDSExpectedEves))
	urlWithPassword := strings.Replace(urlDS.URL, "http://", "http://dave:"+secDSURLPassword+"@", 1)
	card := startSecureCardinal(t, dir, fmt.Sprintf(`
aggregator:
  unmatched: forward
downstream:
  remote_write:
    - url: %s
      name: bearer
      bearer_token: %s
      queue: {min_backoff: 20ms, max_backoff: 100ms}
    - url: %s
      name: basic
      basic_auth: {username: carol, password_file: ds-password}
      queue: {min_backoff: 20ms, max_backoff: 100ms}
    - url: %s
      name: userinfo
      queue: {min_backoff: 20ms, max_backoff: 100ms}
    - url: %s
      name: wrong
      basic_auth: {username: eve, password: %s}
      queue: {min_backoff: 20ms, max_backoff: 100ms}
rules:
  - metric_name: sec_unused_total
    type: counter
    drop_labels: [pod]
`, bearerDS.URL, secDSBearer, basicDS.URL, urlWithPassword, wrongDS.URL, secDSWrongBasic), webConfig, ca)

	alice := basicHeader("alice", secUserPassword)
	body := rwBody(t, prompb.TimeSeries{Labels: labelSet("sec_requests", "job", "api"), Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}})
	requests := []struct {
		name     string
		method   string
		path     string
		body     []byte
		auth     string
		wantCode int
	}{
		{"write_with_password", "POST", "/api/v1/write", body, alice, 204},
		{"write_with_token", "POST", "/api/v1/push", body, "Bearer " + secWebToken, 204},
		{"write_without_credentials", "POST", "/api/v1/write", body, "", 401},
		{"write_with_wrong_password", "POST", "/api/v1/write", body, basicHeader("alice", secWrongPassword), 401},
		{"write_as_unknown_user", "POST", "/api/v1/write", body, basicHeader("mallory", secUserPassword), 401},
		{"write_with_wrong_token", "POST", "/api/v1/write", body, "Bearer " + secWrongPassword, 401},
		{"metrics_need_credentials", "GET", "/metrics", nil, "", 401},
		{"metrics_with_credentials", "GET", "/metrics", nil, alice, 200},
		{"status_page_needs_credentials", "GET", "/", nil, "", 401},
		{"status_page_with_credentials", "GET", "/", nil, alice, 200},
		{"health_needs_none", "GET", "/-/healthy", nil, "", 200},
		{"readiness_needs_none", "GET", "/-/ready", nil, "", 200},
		{"reload_needs_credentials", "POST", "/-/reload", nil, "", 401},
		{"reload_needs_the_lifecycle_flag", "POST", "/-/reload", nil, alice, 403},
		{"pprof_needs_credentials", "GET", "/debug/pprof/", nil, "", 401},
		{"pprof_needs_its_flag", "GET", "/debug/pprof/", nil, alice, 404},
	}
	for _, r := range requests {
		code, answer, err := card.do(r.method, r.path, r.body, r.auth)
		if err != nil || code != r.wantCode {
			t.Errorf("%s: %s %s: %d %.200q %v, want %d", r.name, r.method, r.path, code, answer, err, r.wantCode)
		}
	}

	// Plain HTTP on the TLS port gets no data in.
	plain := "http://" + strings.TrimPrefix(card.URL, "https://") + "/api/v1/write"
	if code, _, err := postRW(plain, []prompb.TimeSeries{{Labels: labelSet("sec_plain", "job", "api"), Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}}}); err == nil && code/100 == 2 {
		t.Errorf("plain HTTP write to the TLS port: %d, want it refused", code)
	}

	// Each downstream got the two accepted samples with its own credentials; the one with
	// wrong credentials refused them, and cardinal counted that as a failure, not a retry.
	eventually(t, 30*time.Second, "the samples at every downstream with credentials", func() (bool, error) {
		a1, _ := bearerDS.counts()
		a2, _ := basicDS.counts()
		a3, _ := urlDS.counts()
		_, r4 := wrongDS.counts()
		return a1 == 2 && a2 == 2 && a3 == 2 && r4 > 0, fmt.Errorf("accepted bearer %d, basic %d, userinfo %d; refused with wrong credentials %d", a1, a2, a3, r4)
	})
	_, metrics, _ := card.do("GET", "/metrics", nil, alice)
	if !strings.Contains(metrics, `cardinal_downstream_samples_failed_total{downstream="wrong"} 2`) {
		t.Errorf("the downstream refusing cardinal's credentials should count 2 failed samples")
	}
	if !strings.Contains(metrics, `cardinal_web_auth_failures_total{reason="invalid"} 3`) ||
		!strings.Contains(metrics, `cardinal_web_auth_failures_total{reason="missing"} 5`) {
		t.Errorf("auth failures not counted as 3 invalid and 5 missing:\n%s", grepLines(metrics, "cardinal_web_auth_failures_total"))
	}

	// A certificate written over the files is served from the next connection on.
	if s := card.servedSerial(t); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}
	renewed := testcert.Write(t, dir, 2)
	eventually(t, 30*time.Second, "the renewed certificate served", func() (bool, error) {
		s := card.servedSerial(t)
		return s == 2, fmt.Errorf("serving serial %d", s)
	})
	card.client = tlsClient(renewed)
	if code, _, err := card.do("POST", "/api/v1/write", body, alice); err != nil || code != http.StatusNoContent {
		t.Errorf("write after the certificate was renewed: %d %v", code, err)
	}

	// No credential anywhere cardinal shows things.
	_, status, _ := card.do("GET", "/", nil, alice)
	_, metrics, _ = card.do("GET", "/metrics", nil, alice)
	secrets := []string{secUserPassword, string(hash), secWrongPassword, secWebToken, secDSBearer, secDSBasic, secDSURLPassword, secDSWrongBasic}
	for where, text := range map[string]string{"log": card.proc.log(), "status page": status, "/metrics": metrics} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s shows the credential %q", where, s)
			}
		}
	}
	if !strings.Contains(card.proc.log(), "unauthorized request") {
		t.Error("refused requests should be logged (at debug level, without credentials)")
	}
}

// TestSecurity_lifecycle_and_pprof_flags_open_their_endpoints pins that --web.enable-lifecycle
// and --web.enable-pprof open /-/reload and /debug/pprof/, still behind authentication.
func TestSecurity_lifecycle_and_pprof_flags_open_their_endpoints(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.Write(t, dir, 7)
	hash, err := bcrypt.GenerateFromPassword([]byte(secUserPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: %s\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}
	card := startSecureCardinal(t, dir, "downstream:\n  file: {path: out.prom}\n", webConfig, ca, "--web.enable-lifecycle", "--web.enable-pprof")
	alice := basicHeader("alice", secUserPassword)
	for _, r := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/-/reload", alice, 200},
		{"POST", "/-/reload", "", 401},
		{"GET", "/debug/pprof/", alice, 200},
		{"GET", "/debug/pprof/", "", 401},
	} {
		if code, body, err := card.do(r.method, r.path, nil, r.auth); err != nil || code != r.want {
			t.Errorf("%s %s (credentials %v): %d %.200q %v, want %d", r.method, r.path, r.auth != "", code, body, err, r.want)
		}
	}
}

// TestSecurity_plain_http_keeps_lifecycle_and_pprof_closed pins the defaults without a web
// config: /-/reload is 403 and pprof is not served.
func TestSecurity_plain_http_keeps_lifecycle_and_pprof_closed(t *testing.T) {
	card := startCardinal(t, "downstream:\n  file: {path: out.prom}\n")
	if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusForbidden {
		t.Errorf("POST /-/reload without --web.enable-lifecycle: %d %q, want 403", code, body)
	}
	if code, _, _ := httpGet(t, card.URL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without --web.enable-pprof: %d, want 404", code)
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSecurity_agent_with_a_client_certificate runs cardinal with client_auth_type
// VerifyClientCertIfGiven and a bearer token, the setting the README gives for Kubernetes
// (the kubelet's probes present no certificate), and a real Prometheus agent whose
// remote_write presents a client certificate that client_ca_file verifies, with the token.
// The agent's samples arrive; a client presenting a certificate the CA file does not
// verify is refused at the handshake; one presenting none gets past TLS to the probes, and
// to a 401 anywhere else.
func TestSecurity_agent_with_a_client_certificate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not starting Prometheus and cardinal")
	}
	dir, agentDir, stranger := t.TempDir(), t.TempDir(), t.TempDir()
	ca := testcert.Write(t, dir, 1)
	testcert.Write(t, agentDir, 101)
	testcert.Write(t, stranger, 201)
	if err := os.WriteFile(filepath.Join(dir, "web-token"), []byte(secWebToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: %s\nbearer_token_file: web-token\n",
		filepath.Join(agentDir, testcert.CertFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	card := startSecureCardinal(t, dir, `
downstream:
  file: {path: /dev/null}
rules:
  - metric_name: sec_agent_temperature
    type: gauge
    drop_labels: [pod]
`, webConfig, ca)

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "# TYPE sec_agent_temperature gauge\nsec_agent_temperature{pod=\"p1\"} 21\n")
	}))
	defer target.Close()
	startPrometheus(t, prometheusOptions{
		Agent:       true,
		Scrape:      map[string][]string{"thermometer": {strings.TrimPrefix(target.URL, "http://")}},
		RemoteWrite: []string{card.URL + "/api/v1/write"},
		RemoteWriteSettings: fmt.Sprintf("    bearer_token_file: %q\n    tls_config: {ca_file: %q, cert_file: %q, key_file: %q}\n",
			filepath.Join(dir, "web-token"), filepath.Join(dir, testcert.CertFile),
			filepath.Join(agentDir, testcert.CertFile), filepath.Join(agentDir, testcert.KeyFile)),
	})
	bearer := "Bearer " + secWebToken
	eventually(t, 60*time.Second, "the agent's samples aggregated", func() (bool, error) {
		_, metrics, err := card.do("GET", "/metrics", nil, bearer)
		return regexp.MustCompile(`(?m)^cardinal_aggregator_input_series\{rule="sec_agent_temperature"\} 1$`).MatchString(metrics),
			fmt.Errorf("%s %v", grepLines(metrics, "cardinal_aggregator_input_series"), err)
	})

	withCert := func(certDir string) *http.Client {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, testcert.CertFile), filepath.Join(certDir, testcert.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		c := tlsClient(ca)
		c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{pair}
		return c
	}
	card.client = withCert(stranger)
	if code, _, err := card.do("GET", "/-/ready", nil, ""); err == nil {
		t.Errorf("a certificate client_ca_file does not verify got through the handshake: %d", code)
	}
	card.client = tlsClient(ca) // no certificate
	if code, _, err := card.do("GET", "/-/ready", nil, ""); err != nil || code != http.StatusOK {
		t.Errorf("the readiness probe without a certificate: %d %v, want 200", code, err)
	}
	if code, _, err := card.do("GET", "/metrics", nil, ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("/metrics without a certificate or a token: %d %v, want 401", code, err)
	}
	if code, _, err := card.do("GET", "/metrics", nil, bearer); err != nil || code != http.StatusOK {
		t.Errorf("/metrics with the token and no certificate (VerifyClientCertIfGiven): %d %v, want 200", code, err)
	}
	card.client = withCert(agentDir)
	if code, _, err := card.do("GET", "/metrics", nil, bearer); err != nil || code != http.StatusOK {
		t.Errorf("/metrics with the agent's certificate and the token: %d %v, want 200", code, err)
	}
}
