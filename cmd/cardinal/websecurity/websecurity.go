// Package websecurity applies --web.config.file to cardinal's HTTP server: TLS on the
// listener, with the certificate and the client CAs reloaded when their files change,
// client certificates when asked for, and basic or bearer
// authentication of every request but the health and readiness probes. Routing and serving
// stay with cmd/cardinal.
package websecurity

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config"
)

// webConfigCheckInterval is the least time between two checks of the web config file, the
// bearer token file and the certificate files for changes.
const webConfigCheckInterval = time.Second

// Security applies --web.config.file to the HTTP server: TLS on the listener and
// authentication of every request but the health and readiness probes. When a request or
// a TLS handshake comes, the files are checked for changes (at most once a second) and
// reloaded; a reload that fails keeps the previous state, is logged and shows in
// cardinal_web_config_last_reload_successful. Whether TLS is on is decided at start.
type Security struct {
	path     string
	tls      bool
	minTLS   uint16
	logger   *slog.Logger
	now      func() time.Time
	interval time.Duration
	verified *verifiedCache

	next  atomic.Int64 // unix nanoseconds of the next check for changes
	mu    sync.Mutex   // serialises reloads
	sum   uint64       // hash of the files' content when last loaded
	state atomic.Pointer[webState]

	reloadOK     prometheus.Gauge
	authFailures *prometheus.CounterVec
}

// webState is one loaded web configuration.
type webState struct {
	cfg       *webConfig
	cert      *tls.Certificate // nil without TLS
	clientCAs *x509.CertPool   // nil: no client_ca_file
	auth      *authenticator   // nil without authentication
}

// files lists what the state was loaded from.
func (st *webState) files(path string) []string {
	fs := []string{path}
	if st.cfg.BearerTokenFile != "" {
		fs = append(fs, st.cfg.BearerTokenFile)
	}
	if t := st.cfg.TLSServerConfig; t != nil {
		fs = append(fs, t.CertFile, t.KeyFile)
		if t.ClientCAFile != "" {
			fs = append(fs, t.ClientCAFile)
		}
	}
	return fs
}

// New loads the web config file at path and registers the web security metrics with reg
// (when not nil). An empty path means plain HTTP without authentication: it returns nil,
// whose methods do nothing.
func New(path string, reg prometheus.Registerer, logger *slog.Logger) (*Security, error) {
	if path == "" {
		return nil, nil
	}
	w := &Security{
		path:     path,
		logger:   logger,
		now:      time.Now,
		interval: webConfigCheckInterval,
		verified: newVerifiedCache(),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_web_config_last_reload_successful",
			Help: "Whether the last load of --web.config.file (and its token and certificate files) succeeded.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_web_auth_failures_total",
			Help: "HTTP requests refused with 401, by reason (missing: no credentials of a configured kind; invalid: wrong ones).",
		}, []string{"reason"}),
	}
	st, err := w.load()
	if err != nil {
		return nil, err
	}
	w.state.Store(st)
	w.sum = config.FilesHash(st.files(path))
	w.next.Store(w.now().Add(w.interval).UnixNano())
	if t := st.cfg.TLSServerConfig; t != nil {
		w.tls, w.minTLS = true, t.minTLSVersion()
	}
	w.reloadOK.Set(1)
	w.authFailures.WithLabelValues(authMissing)
	w.authFailures.WithLabelValues(authInvalid)
	if reg != nil {
		reg.MustRegister(w.reloadOK, w.authFailures)
	}
	logger.Info("web configuration loaded", append([]any{"file", path}, st.cfg.describe()...)...)
	return w, nil
}

// load reads the web config and what it points to.
func (w *Security) load() (*webState, error) {
	cfg, err := loadWebConfig(w.path)
	if err != nil {
		return nil, err
	}
	st := &webState{cfg: cfg, auth: newAuthenticator(cfg, w.verified)}
	if t := cfg.TLSServerConfig; t != nil {
		if st.cert, err = loadCertificate(t); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, w.path, err)
		}
		if t.ClientCAFile != "" {
			if st.clientCAs, err = loadClientCAs(t.ClientCAFile); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, w.path, err)
			}
		}
	}
	return st, nil
}

// refresh returns the current state, reloading it first if it is time to check the files
// and they changed.
func (w *Security) refresh() *webState {
	now := w.now().UnixNano()
	if next := w.next.Load(); now < next || !w.next.CompareAndSwap(next, now+int64(w.interval)) {
		return w.state.Load()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.state.Load()
	sum := config.FilesHash(old.files(w.path))
	if sum == w.sum {
		return old
	}
	w.sum = sum // a broken file is reported once, not at every check
	st, err := w.load()
	if err != nil {
		w.reloadOK.Set(0)
		w.logger.Error("web configuration reload failed; the previous one stays in force", "err", err)
		return old
	}
	if (st.cfg.TLSServerConfig != nil) != w.tls {
		w.logger.Warn("turning TLS on or off takes effect at the next restart")
	}
	if newFiles := st.files(w.path); !slices.Equal(newFiles, old.files(w.path)) {
		// The new state points to other files. (With the same files, the hash taken before
		// loading stays: a file replaced while it loaded is then seen at the next check.)
		w.sum = config.FilesHash(newFiles)
	}
	w.state.Store(st)
	w.reloadOK.Set(1)
	w.logger.Info("web configuration reloaded", append([]any{"file", w.path}, st.cfg.describe()...)...)
	return st
}

// TLS reports whether the listener must serve TLS, and its configuration, whose certificate
// follows the files. A nil Security serves plain HTTP.
func (w *Security) TLS() (*tls.Config, bool) {
	if w == nil || !w.tls {
		return nil, false
	}
	return w.tlsConfig(w.minTLS), true
}

// Protect requires authentication, when the web config asks for it, for every request but
// the health and readiness probes, which reveal nothing and must work for the kubelet.
func (w *Security) Protect(next http.Handler) http.Handler {
	if w == nil {
		return next
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/-/healthy" || r.URL.Path == "/-/ready" {
			next.ServeHTTP(rw, r)
			return
		}
		auth := w.refresh().auth
		if auth == nil {
			next.ServeHTTP(rw, r)
			return
		}
		if reason := auth.check(r); reason != "" {
			w.authFailures.WithLabelValues(reason).Inc()
			w.logger.Debug("unauthorized request", "reason", reason, "path", r.URL.Path, "remote", r.RemoteAddr)
			rw.Header().Set("WWW-Authenticate", `Basic realm="cardinal", charset="UTF-8"`)
			http.Error(rw, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(rw, r)
	})
}
