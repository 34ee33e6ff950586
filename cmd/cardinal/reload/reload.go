// Package reload owns hot reloading of cardinal's configuration: on SIGHUP, on POST
// /-/reload (with --web.enable-lifecycle) and when the config or rule files change. An
// invalid configuration changes nothing; every outcome is logged, counted in metrics and
// kept for the status page. What applying a configuration means is the caller's Applier.
package reload

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config"
)

// Applier puts a valid configuration in force. It returns an error, and changes nothing,
// when it cannot (the old configuration then stays in force).
type Applier interface {
	Apply(old, next *config.Config) error
}

// Outcome is the result of one reload attempt.
type Outcome struct {
	// Time is when the attempt ended.
	Time time.Time
	// Err is why it failed; nil for a success.
	Err error
	// Changed says whether a successful attempt found a configuration different from the
	// one in force (an unchanged one is not applied again).
	Changed bool
}

// Reloader reloads one configuration file. Its methods are safe for concurrent use.
type Reloader struct {
	path   string
	apply  Applier
	logger *slog.Logger
	now    func() time.Time

	mu   sync.Mutex // serialises reloads
	cfg  atomic.Pointer[config.Config]
	last atomic.Pointer[Outcome]

	ok          prometheus.Gauge
	successTime prometheus.Gauge
}

// New returns a Reloader of the file at path whose configuration in force is cfg (loaded and
// applied by the caller at start-up), registering its metrics with reg.
func New(path string, cfg *config.Config, apply Applier, reg prometheus.Registerer, logger *slog.Logger) *Reloader {
	r := &Reloader{
		path:   path,
		apply:  apply,
		logger: logger,
		now:    time.Now,
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful.",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	reg.MustRegister(r.ok, r.successTime)
	r.cfg.Store(cfg)
	r.ok.Set(1)
	r.successTime.Set(float64(r.now().UnixNano()) / 1e9)
	return r
}

// Config is the configuration in force.
func (r *Reloader) Config() *config.Config { return r.cfg.Load() }

// Last is the outcome of the last reload attempt; ok is false when there was none.
func (r *Reloader) Last() (Outcome, bool) {
	if o := r.last.Load(); o != nil {
		return *o, true
	}
	return Outcome{}, false
}

// Reload loads the file again and applies it. An invalid configuration changes nothing: the
// old one stays in force and the error is returned and logged. A configuration equal to the
// one in force (same effective settings, see config.Config.Hash) is not applied again.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cfg.Load()
	next, err := config.Loader{Reloading: true}.Load(r.path)
	if err == nil && next.Hash != old.Hash {
		err = r.apply.Apply(old, next)
	}
	changed := err == nil && next.Hash != old.Hash
	r.last.Store(&Outcome{Time: r.now(), Err: err, Changed: changed})
	if err != nil {
		r.ok.Set(0)
		r.logger.Error("configuration reload failed; the previous configuration stays in force", "file", r.path, "err", err)
		return err
	}
	r.ok.Set(1)
	if !changed {
		// The success timestamp marks when the configuration in force last changed, so an
		// unchanged file does not move it.
		r.logger.Info("configuration reload: unchanged, nothing to apply", "file", r.path)
		return nil
	}
	r.successTime.Set(float64(r.now().UnixNano()) / 1e9)
	for _, w := range next.Warnings {
		r.logger.Warn("configuration", "warning", w)
	}
	r.cfg.Store(next)
	r.logger.Info("configuration reloaded", "file", r.path, "rules", len(next.Rules))
	return nil
}

// Run reloads on SIGHUP (from hup) and, every checkInterval (0: never), when the config or
// rule files changed, until ctx ends. Files are compared by a hash of the files the globs
// match now and of their content, so a ConfigMap's symlink swap and a rule file added to a
// glob are both seen.
func (r *Reloader) Run(ctx context.Context, hup <-chan os.Signal, checkInterval time.Duration) {
	var tick <-chan time.Time
	if checkInterval > 0 {
		t := time.NewTicker(checkInterval)
		defer t.Stop()
		tick = t.C
	}
	last := config.FilesHash(r.Config().WatchedFiles())
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.Reload()
			last = config.FilesHash(r.Config().WatchedFiles())
		case <-tick:
			if h := config.FilesHash(r.Config().WatchedFiles()); h != last {
				last = h
				_ = r.Reload()
			}
		}
	}
}

// NotifyHUP starts catching SIGHUP until ctx ends. Call it before reporting ready, so that a
// SIGHUP sent as soon as cardinal is ready reloads instead of killing the process.
func NotifyHUP(ctx context.Context) <-chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	context.AfterFunc(ctx, func() { signal.Stop(hup) })
	return hup
}

// Handler serves POST (or PUT) /-/reload as Prometheus does, only when enabled
// (--web.enable-lifecycle).
func (r *Reloader) Handler(enabled bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !enabled {
			http.Error(w, "Lifecycle API is not enabled (--web.enable-lifecycle).", http.StatusForbidden)
			return
		}
		if req.Method != http.MethodPost && req.Method != http.MethodPut {
			http.Error(w, "POST or PUT required.", http.StatusMethodNotAllowed)
			return
		}
		if err := r.Reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("configuration reloaded\n"))
	})
}
