package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/reload"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/router"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/websecurity"
	"github.com/cardinal-proxy/cardinal/config"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/explore"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/wal"
)

// flags are the proxy's command-line flags, named as Prometheus names its own.
type flags struct {
	configFile      string
	listenAddress   string
	enableLifecycle bool
	enablePprof     bool
	webConfigFile   string
	checkInterval   time.Duration
	shutdownTimeout time.Duration
	flushTick       time.Duration
	logLevel        string
	logFormat       string
	clusterName     string
}

// newFlagSet defines the proxy's flags; parsing fills the returned flags.
func newFlagSet() (*flag.FlagSet, *flags) {
	f := &flags{}
	fs := flag.NewFlagSet("cardinal", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.configFile, "config.file", "cardinal.yaml", "Configuration file path.")
	fs.StringVar(&f.listenAddress, "web.listen-address", "", "Address to listen on (overrides server.listen_addr).")
	fs.BoolVar(&f.enableLifecycle, "web.enable-lifecycle", false, "Enable POST /-/reload.")
	fs.BoolVar(&f.enablePprof, "web.enable-pprof", false, "Serve /debug/pprof/.")
	fs.StringVar(&f.webConfigFile, "web.config.file", "", "Path to a web configuration file (TLS, basic auth; Prometheus exporter-toolkit format).")
	fs.DurationVar(&f.checkInterval, "config.check-interval", 30*time.Second, "How often config and rule files are checked for changes (0 disables).")
	fs.DurationVar(&f.shutdownTimeout, "shutdown.timeout", 30*time.Second, "How long shutdown may take to flush windows and drain queues (leaving the ring first, with cluster.leave_on_shutdown, takes at most half of it).")
	fs.DurationVar(&f.flushTick, "aggregator.flush-tick", time.Second, "How often windows are checked for closing.")
	fs.StringVar(&f.logLevel, "log.level", "info", "Log level: debug, info, warn, error.")
	fs.StringVar(&f.logFormat, "log.format", "logfmt", "Log format: logfmt or json.")
	fs.StringVar(&f.clusterName, "cluster.name", "", "This member's name in the cluster (default: cluster.name, $NODE_NAME, the host name); it must not change across restarts.")
	return fs, f
}

// parseFlags parses the proxy's command line. Its errors say what was wrong and, for a
// mistyped flag, which one was probably meant; flag.ErrHelp asks for the help.
func parseFlags(args []string) (*flags, error) {
	fs, f := newFlagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errors.New("cardinal: " + flagError(fs, err))
	}
	if fs.NArg() > 0 {
		return nil, errors.New(wrongCommand(fs.Args(), commands()))
	}
	return f, nil
}

func newLogger(f *flags, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log.level: %q is not a level: use debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.logFormat {
	case "logfmt":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log.format: want logfmt or json, got %q", f.logFormat)
}

// server is one running proxy: its configuration, aggregator, downstreams and HTTP server.
type server struct {
	flags   *flags
	logger  *slog.Logger
	reg     *prometheus.Registry
	agg     *aggregator.Aggregator
	sinks   downstream.Fanout
	router  *router.Router
	wal     *wal.Log              // nil without a WAL
	web     *websecurity.Security // nil without --web.config.file
	cluster *clusterNode          // nil without a cluster section
	explore *explore.Explorer     // nil when explore.enabled is false
	ready   atomic.Bool

	reloader *reload.Reloader
	// started is the configuration the process started with: its sections but the rules
	// and the aggregator's are in force until a restart (Apply).
	started         *config.Config
	restartRequired prometheus.Gauge
}

// serve runs the proxy until SIGTERM or SIGINT, and returns the exit code.
func serve(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		printServerHelp(stdout)
		return 0
	}
	if err != nil {
		return usageError(stderr, err.Error())
	}
	logger, err := newLogger(f, stderr)
	if err != nil {
		return usageError(stderr, "cardinal: "+err.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, f, logger); err != nil {
		logger.Error("cardinal stopped", "err", err)
		return 1
	}
	return 0
}

// runServer loads the configuration, starts everything and shuts down in order when ctx ends.
func runServer(ctx context.Context, f *flags, logger *slog.Logger) error {
	cfg, err := config.Load(f.configFile)
	if err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	for _, w := range cfg.Warnings {
		logger.Warn("configuration", "warning", w)
	}
	s := &server{flags: f, logger: logger, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoCollector())
	if s.web, err = websecurity.New(f.webConfigFile, s.reg, logger); err != nil {
		return err
	}

	s.sinks, err = buildSinks(ctx, cfg, s.reg, logger)
	if err != nil {
		return err
	}
	s.agg = aggregator.New(aggregator.Options{
		Output:             s.sinks,
		Forward:            s.sinks,
		ForwardUnmatched:   cfg.Aggregator.ForwardUnmatched(),
		WarnUnmatchedAfter: time.Duration(cfg.Aggregator.WarnUnmatchedAfter),
		FlushTick:          f.flushTick,
		HandOff:            s.handOff,
		Logger:             logger,
	})
	if err := s.agg.SetRules(cfg.Rules); err != nil {
		return err
	}
	s.sinks.SendMetadata(s.agg)
	s.reg.MustRegister(s.agg.Collector())
	s.started, s.restartRequired = cfg, newRestartRequired(s.reg)
	s.reloader = reload.New(f.configFile, cfg, s, s.reg, logger)
	if cfg.WAL != nil {
		if s.wal, err = wal.Open(*cfg.WAL, s.reg, logger); err != nil {
			return fmt.Errorf("opening the write-ahead log: %w", err)
		}
		defer func() {
			if s.wal != nil {
				_ = s.wal.Close() // an error return before shutdown
			}
		}()
	}
	var fwd *hashring.Forwarder
	if cfg.Cluster != nil {
		walDir := ""
		if cfg.WAL != nil {
			walDir = cfg.WAL.Dir
		}
		if err := s.startCluster(ctx, cfg.Cluster, walDir); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		fwd = s.cluster.forwarder
	}
	var observer router.Observer
	if cfg.Explore.Enabled {
		s.explore = explore.New(cfg.Explore, s.reg, nil)
		observer = s.explore
	}
	s.router = router.New(router.Options{
		Aggregator:      s.agg,
		Sinks:           s.sinks,
		WAL:             s.wal,
		Cluster:         fwd,
		Limits:          cfg.Server.Limits.Limits(),
		MaxRequestBytes: int(cfg.Server.MaxRequestBytes),
		Observer:        observer,
		Logger:          logger,
	}, s.reg)
	if s.cluster != nil {
		// What a replaced ring's queue could not deliver (its owner died) is routed again.
		s.cluster.forwarder.OnUndelivered(s.router.Reroute)
		// A handoff is delivered once the WAL holds it, not the state it took out.
		s.cluster.forwarder.OnHandoffTaken(s.router.HandoffTaken)
		s.cluster.forwarder.OnHandoffEnded(s.router.HandoffEnded)
		s.cluster.forwarder.OnHandoffRefused(aggregator.LegacyHandoff)
	}
	if s.wal != nil {
		st, err := s.router.Recover()
		if err != nil {
			return err
		}
		logger.Info("write-ahead log recovered", "checkpoint", st.Checkpoint, "has_checkpoint", st.HasCheckpoint,
			"rules_restored", st.Restored.Restored, "rules_changed", st.Restored.Skipped, "input_series", st.Restored.InputSeries,
			"requeued_series", st.Requeued, "handoffs_resent", st.Handoffs, "handoffs_merged_again", st.HandoffsMerged, "unreadable_forward_bodies", st.UnreadableForward, "replayed_records", st.Records, "replayed_samples", st.Samples, "delivered_records", st.Delivered, "took", st.Took)
	}
	if s.cluster != nil {
		// The state is all in: what the ring gives others goes to them now, and peers
		// waiting for a handoff from this member learn it has none more (hashring, settle).
		s.cluster.forwarder.Started()
	}

	addr := cfg.Server.ListenAddr
	if f.listenAddress != "" {
		addr = f.listenAddress
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	rw := remotewrite.NewHandler(s.router, remotewrite.HandlerOptions{
		MaxRequestBytes: int64(cfg.Server.MaxRequestBytes),
		Limits:          cfg.Server.Limits.Limits(),
		MemoryGuard:     applyMemoryLimit(cfg.Server.MemoryLimit, s.reg, logger),
	}, s.reg, logger)
	readHeaderTimeout := 10 * time.Second // a slow-loris client sending headers is cut off too
	if rt := time.Duration(cfg.Server.ReadTimeout); rt > 0 {
		readHeaderTimeout = min(readHeaderTimeout, rt)
	}
	srv := &http.Server{
		Handler:           s.routes(rw),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       time.Duration(cfg.Server.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.Server.WriteTimeout),
	}
	tlsConfig, useTLS := s.web.TLS()
	if useTLS {
		srv.TLSConfig = tlsConfig
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.sinks.Start()
	flushCtx, stopFlush := context.WithCancel(context.Background())
	flushDone := make(chan struct{})
	go func() { defer close(flushDone); s.agg.Run(flushCtx) }()
	checkpointCtx, stopCheckpoints := context.WithCancel(context.Background())
	checkpointsDone := make(chan struct{})
	go func() {
		defer close(checkpointsDone)
		if cfg.WAL != nil {
			s.router.Run(checkpointCtx, time.Duration(cfg.WAL.CheckpointInterval))
		}
	}()
	defer func() { stopCheckpoints(); <-checkpointsDone }()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if s.cluster != nil {
		go s.cluster.run(watchCtx, s.cluster.refresh)
	}
	go s.reloader.Run(watchCtx, reload.NotifyHUP(watchCtx), f.checkInterval)
	if s.explore != nil {
		go s.explore.Run(watchCtx)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.ready.Store(true)
	logger.Info("cardinal started", "listen", ln.Addr().String(), "tls", useTLS, "rules", len(cfg.Rules), "downstreams", len(s.sinks), "version", version)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopFlush()
		return fmt.Errorf("http server: %w", err)
	}
	stopCheckpoints()
	<-checkpointsDone
	return s.shutdown(srv, stopFlush, flushDone)
}

// shutdown stops in the order that loses nothing: readiness off, with
// cluster.leave_on_shutdown the ring left (leaveForShutdown), in-flight requests finished,
// then with a WAL the state and what the sinks hold checkpointed (open windows are
// not emitted: the next process continues them), without one the open windows flushed (the
// newest stamped with its newest sample); queues drained, the WAL synced and closed.
func (s *server) shutdown(srv *http.Server, stopFlush context.CancelFunc, flushDone <-chan struct{}) error {
	s.logger.Info("shutting down", "timeout", s.flags.shutdownTimeout)
	s.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), s.flags.shutdownTimeout)
	defer cancel()
	// Leaving the ring, and handing on at the end what reached a member that left, take at
	// most half of the timeout together (leaving at most 40% of it, so that the last
	// handoffs get some): the checkpoint and the queues keep the rest.
	leaveCtx, cancelLeave := context.WithTimeout(ctx, s.flags.shutdownTimeout/2)
	defer cancelLeave()
	if s.cluster != nil {
		s.cluster.forwarder.StopHandingOff()
		if s.cluster.leaveOnShutdown {
			leaving, cancelLeaving := context.WithTimeout(leaveCtx, s.flags.shutdownTimeout*2/5)
			s.leaveForShutdown(leaving)
			cancelLeaving()
		}
	}
	s.router.Stop()
	httpErr := srv.Shutdown(ctx)
	stopFlush()
	<-flushDone
	if s.cluster != nil && s.cluster.forwarder.Leaving() {
		s.handOffLast(leaveCtx)
	}
	var walErr error
	if s.wal != nil {
		walErr = s.router.Checkpoint()
	} else {
		s.agg.Flush(true)
	}
	var clusterErr error
	if s.cluster != nil {
		clusterErr = s.shutdownForwarding(ctx)
	}
	sinkErr := s.sinks.Shutdown(ctx)
	if s.wal != nil {
		walErr = errors.Join(walErr, s.wal.Close())
		s.wal = nil
	}
	if err := errors.Join(httpErr, clusterErr, sinkErr, walErr); err != nil {
		return fmt.Errorf("shutdown incomplete: %w", err)
	}
	s.logger.Info("shutdown complete")
	return nil
}
