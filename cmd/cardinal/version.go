package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision are set at build time with -ldflags "-X main.version=... -X
// main.revision=..." (the Makefile and the Dockerfile do); without them the revision comes
// from the Go toolchain's VCS stamp when there is one.
var (
	version  = "dev"
	revision = ""
)

// buildInfo describes the binary: version, VCS revision when known, Go version.
type buildInfo struct {
	Version, Revision, GoVersion string
}

func readBuildInfo() buildInfo {
	bi := buildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi.Revision != "" {
		return bi
	}
	bi.Revision = "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
	}
	return bi
}

func printVersion(w io.Writer) {
	bi := readBuildInfo()
	fmt.Fprintf(w, "cardinal, version %s (revision: %s)\n  go version: %s\n  platform: %s/%s\n",
		bi.Version, bi.Revision, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// buildInfoCollector exports cardinal_build_info, always 1, labelled with the build.
func buildInfoCollector() prometheus.Collector {
	bi := readBuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "cardinal_build_info",
		Help:        "A metric with a constant '1' value labeled by version, revision and goversion of cardinal.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	g.Set(1)
	return g
}
