package main

import (
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// memoryRefuseFraction is the share of server.memory_limit the live heap may reach before
// the receiver refuses data; the rest is headroom for requests in flight and garbage.
const memoryRefuseFraction = 0.9

// applyMemoryLimit applies server.memory_limit: the Go runtime's soft memory limit is set to
// it, so the garbage collector works harder before the process grows past it, and the
// returned guard makes the receiver answer 503 while the live heap is over
// memoryRefuseFraction of it. No limit (0) returns nil and leaves the runtime (and
// GOMEMLIMIT) alone.
func applyMemoryLimit(limit setting.ByteSize, reg prometheus.Registerer, logger *slog.Logger) *remotewrite.MemoryGuard {
	if limit <= 0 {
		return nil
	}
	debug.SetMemoryLimit(int64(limit))
	g := remotewrite.NewMemoryGuard(uint64(float64(limit) * memoryRefuseFraction))
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cardinal_memory_limit_bytes",
			Help: "server.memory_limit: the Go runtime's soft memory limit.",
		}, func() float64 { return float64(limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cardinal_memory_refuse_threshold_bytes",
			Help: "Live heap size from which the receiver answers 503 (a share of server.memory_limit).",
		}, func() float64 { return float64(g.Threshold()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cardinal_memory_live_heap_bytes",
			Help: "Live heap found by the last garbage collection, as the receiver's memory guard last read it.",
		}, func() float64 { return float64(g.Heap()) }),
	)
	logger.Info("memory limit set", "limit_bytes", int64(limit), "refuse_from_live_heap_bytes", g.Threshold())
	return g
}
