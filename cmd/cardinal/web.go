package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cardinal-proxy/cardinal/explore"
)

// routes is the HTTP interface of docs/design.md §7, behind the authentication of
// --web.config.file when it asks for one.
func (s *server) routes(rw http.Handler) http.Handler {
	mux := http.NewServeMux()
	rw = s.clusterRoutes(mux, rw)
	mux.Handle("/api/v1/write", rw)
	mux.Handle("/api/v1/push", rw)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("cardinal is healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "cardinal is not ready.", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("cardinal is ready.\n"))
	})
	mux.Handle("/-/reload", s.reloader.Handler(s.flags.enableLifecycle))
	mux.Handle("GET /{$}", s.statusPage())
	explorePage := s.explorePage()
	mux.Handle("GET "+explore.PagePath, explorePage)
	mux.Handle("GET "+explore.APIPath, explorePage)
	if s.flags.enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s.web.Protect(mux)
}
