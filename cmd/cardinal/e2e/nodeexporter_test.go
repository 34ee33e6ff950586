package e2e

import (
	"fmt"
	"testing"
)

// nodeExporter is a prometheus-node-exporter process owned by one test.
type nodeExporter struct {
	// Addr is host:port, the scrape target.
	Addr string
	proc *process
}

// startNodeExporter starts node_exporter (Debian's prometheus-node-exporter) on a free
// loopback port with extraFlags and waits until /metrics answers. The systemd collector,
// which Debian enables, is off: test machines and containers have no systemd to ask.
func startNodeExporter(t testing.TB, extraFlags ...string) *nodeExporter {
	t.Helper()
	bin := requireBinary(t, "prometheus-node-exporter")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"--web.listen-address=" + addr, "--no-collector.systemd"}, extraFlags...)
	n := &nodeExporter{Addr: addr, proc: newProcess(t, t.TempDir(), "node-exporter", bin, args...)}
	n.proc.start()
	n.proc.waitHTTP200("http://" + addr + "/metrics")
	return n
}
