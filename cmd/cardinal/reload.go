package main

import (
	"context"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cardinal-proxy/cardinal/config"
)

// reload loads the configuration file again and applies it. An invalid configuration
// changes nothing: the old one keeps running and the error is returned and logged. Rules
// whose definition did not change keep their state.
func (s *server) reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, err := config.Load(s.flags.configFile)
	if err != nil {
		s.reloadOK.Set(0)
		s.logger.Error("configuration reload failed; the previous configuration stays in force", "err", err)
		return err
	}
	old := s.cfg.Load()
	if cfg.Hash == old.Hash {
		s.reloadOK.Set(1)
		return nil
	}
	if err := s.agg.SetRules(cfg.Rules); err != nil {
		s.reloadOK.Set(0)
		s.logger.Error("configuration reload failed; the previous configuration stays in force", "err", err)
		return err
	}
	s.agg.SetForwardUnmatched(cfg.Aggregator.ForwardUnmatched())
	if !reflect.DeepEqual(cfg.Downstream, old.Downstream) || cfg.Server != old.Server {
		s.logger.Warn("server and downstream changes take effect at the next restart")
	}
	for _, w := range cfg.Warnings {
		s.logger.Warn("configuration", "warning", w)
	}
	s.cfg.Store(cfg)
	s.reloadOK.Set(1)
	s.reloadTime.SetToCurrentTime()
	s.logger.Info("configuration reloaded", "rules", len(cfg.Rules))
	return nil
}

// watchReloads reloads on SIGHUP and when the config or rule files change: checked every
// --config.check-interval by a hash of the files the globs match now and of their content, so
// a ConfigMap's symlink swap and a rule file added to a glob are both seen.
// hup must come from notifyReload, registered before cardinal reports ready.
func (s *server) watchReloads(ctx context.Context, hup chan os.Signal) {
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if s.flags.checkInterval > 0 {
		t := time.NewTicker(s.flags.checkInterval)
		defer t.Stop()
		tick = t.C
	}
	last := filesHash(s.cfg.Load().WatchedFiles())
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = s.reload()
			last = filesHash(s.cfg.Load().WatchedFiles())
		case <-tick:
			h := filesHash(s.cfg.Load().WatchedFiles())
			if h != last {
				last = h
				_ = s.reload()
			}
		}
	}
}

// notifyReload starts catching SIGHUP. It is called before readiness is reported, so a
// SIGHUP sent as soon as cardinal is ready reloads instead of killing the process.
func notifyReload() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// filesHash hashes the names and content of files; unreadable files count as empty.
func filesHash(files []string) uint64 {
	d := xxhash.New()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		_, _ = d.WriteString(f)
		_, _ = d.Write([]byte{0})
		_, _ = d.Write(b)
		_, _ = d.Write([]byte{0})
	}
	return d.Sum64()
}
