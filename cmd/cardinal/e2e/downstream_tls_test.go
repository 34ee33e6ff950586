package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/internal/testcert"
)

// TestDownstream_remote_write_over_mutual_TLS_through_a_certificate_renewal runs a real
// Prometheus whose web config takes only TLS with a client certificate that its
// client_ca_file verifies, and a cardinal whose remote_write entry trusts Prometheus's
// certificate (tls_config.ca_file) and presents its own (cert_file, key_file). The
// aggregated gauge reaches Prometheus. Then both certificates are renewed in place, as
// cert-manager renews them, and Prometheus restarts on its new one: cardinal, not
// restarted, verifies the new server certificate against its CA file read again and
// presents its own new certificate, and the gauge's later values arrive too.
func TestDownstream_remote_write_over_mutual_TLS_through_a_certificate_renewal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not starting Prometheus and cardinal")
	}
	bin := requireBinary(t, "prometheus")
	dir := t.TempDir()
	promDir, cardDir := filepath.Join(dir, "prometheus"), filepath.Join(dir, "cardinal")
	for _, d := range []string{promDir, cardDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testcert.Write(t, promDir, 1)
	testcert.Write(t, cardDir, 101)
	pem := func(d, f string) string { return filepath.Join(d, f) }
	webConfig := filepath.Join(promDir, "web.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n",
		pem(promDir, testcert.CertFile), pem(promDir, testcert.KeyFile), pem(cardDir, testcert.CertFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	promConfig := filepath.Join(promDir, "prometheus.yml")
	if err := os.WriteFile(promConfig, []byte("global:\n  scrape_interval: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	promURL := "https://" + addr
	prom := newProcess(t, promDir, "prometheus", bin, "--config.file="+promConfig, "--web.listen-address="+addr,
		"--web.config.file="+webConfig, "--web.enable-remote-write-receiver",
		"--storage.tsdb.path="+filepath.Join(promDir, "data"), "--log.level=info")
	// The test's own client, built from the files as they are now, with crypto/tls alone.
	client := func() *http.Client {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(pem(cardDir, testcert.CertFile), pem(cardDir, testcert.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		ca, err := os.ReadFile(pem(promDir, testcert.CertFile))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca)
		cfg := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	startProm := func() {
		t.Helper()
		prom.start()
		eventually(t, readyTimeout, "Prometheus ready over TLS", func() (bool, error) {
			resp, err := client().Get(promURL + "/-/ready")
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, fmt.Errorf("status %d", resp.StatusCode)
		})
	}
	startProm()
	if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
		// A plain request gets an HTTP 400 from a TLS listener: the web config is in force.
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("Prometheus answered plain HTTP: its web config is not in force")
		}
	}

	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 2s
  flush_delay: 1s
downstream:
  remote_write:
    - name: prom
      url: %s/api/v1/write
      tls_config:
        ca_file: %s
        cert_file: %s
        key_file: %s
      queue: {min_backoff: 20ms, max_backoff: 200ms}
rules:
  - metric_name: tls_temperature
    type: gauge
    drop_labels: [pod]
`, promURL, pem(promDir, testcert.CertFile), pem(cardDir, testcert.CertFile), pem(cardDir, testcert.KeyFile)))
	send := func(v float64) {
		t.Helper()
		now := time.Now().UnixMilli()
		var series []prompb.TimeSeries
		for _, pod := range []string{"p0", "p1"} {
			series = append(series, prompb.TimeSeries{
				Labels:  labelSet("tls_temperature", "job", "j", "pod", pod),
				Samples: []prompb.Sample{{Value: v, Timestamp: now}},
			})
		}
		if code, body, err := postRW(card.WriteURL, series); err != nil || code/100 != 2 {
			t.Fatalf("remote write to cardinal: %d %q %v", code, body, err)
		}
	}
	arrives := func(v float64) {
		t.Helper()
		key := seriesKey(map[string]string{"__name__": "tls_temperature", "job": "j"})
		eventually(t, 30*time.Second, fmt.Sprintf("the gauge's sum %v at Prometheus", 2*v), func() (bool, error) {
			send(v) // a window of its own each time: the sum of the two pods
			got := queryWith(t, client(), promURL, "tls_temperature", time.Now())
			return got[key] == 2*v, fmt.Errorf("got %v", got)
		})
	}
	arrives(21)

	// cert-manager renews both certificates; Prometheus restarts on its new one. Neither old
	// certificate verifies against the other side's new files.
	prom.stop()
	testcert.Write(t, promDir, 2)
	testcert.Write(t, cardDir, 102)
	startProm()
	arrives(23)

	if log := card.Log(); strings.Contains(log, "x509") || strings.Contains(log, "bad certificate") {
		// Sends failed while Prometheus was down (connection refused); none may have failed
		// on a certificate.
		t.Errorf("cardinal logged a TLS failure:\n%s", grepLines(log, "x509")+grepLines(log, "bad certificate"))
	}
	if code := card.Stop(); code != 0 {
		t.Errorf("cardinal exited with %d", code)
	}
}
