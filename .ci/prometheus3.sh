#!/usr/bin/env bash
# Build the upstream Prometheus 3 binary the end-to-end test TestProm3_* runs (a Prometheus 3
# agent sending Remote Write 2.0 through cardinal into a Prometheus 3 server), unless the one
# cached in $HOME/.cache/prometheus-3 already reports the pinned version. Debian packages
# Prometheus 2.42 only, so it is built from the Go module proxy, in a scratch module outside
# the repository (`go install pkg@version` refuses the Prometheus module, whose go.mod has
# exclude directives). A cold build takes five to ten minutes on two cores; later runs only
# check the version. Called by .ci/run; run it by hand
# before `go test -run TestProm3 ./cmd/cardinal/e2e/` (or point CARDINAL_PROMETHEUS3 at a
# Prometheus 3 binary of your own).
set -euo pipefail

# The Prometheus module's version v0.3XY.Z is release 3.XY.Z (the Makefile's promtool: same pin).
module_version=v0.307.3
version=3.7.3

dir="$HOME/.cache/prometheus-3"
bin="$dir/prometheus"

if [ -x "$bin" ]; then
  have=$("$bin" --version 2>/dev/null | head -n 1 || true)
  case "$have" in
  "prometheus, version $version "*)
    echo "prometheus3: $bin is $version: nothing to build"
    exit 0
    ;;
  esac
  echo "prometheus3: $bin reports \"$have\", not version $version: rebuilding"
else
  echo "prometheus3: $bin missing: building Prometheus $version ($module_version)"
fi

# No VCS stamping (the scratch module is not a repository), and the Go that is installed, not
# a toolchain download (the module needs Go 1.24; the README asks for 1.26).
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

mkdir -p "$dir"
cd "$dir"
if [ ! -f go.mod ]; then
  echo "prometheus3: go mod init in $dir"
  go mod init prometheus3-build
fi
echo "prometheus3: go get github.com/prometheus/prometheus/cmd/prometheus@$module_version"
go get "github.com/prometheus/prometheus/cmd/prometheus@$module_version"

# Stamp the version as the release Makefile does (promu), so that --version, checked above,
# tells a stale or foreign binary from this one.
pkg=github.com/prometheus/common/version
ldflags="-X $pkg.Version=$version -X $pkg.Revision=$module_version -X $pkg.Branch=module"
ldflags="$ldflags -X $pkg.BuildUser=cardinal/.ci/prometheus3.sh -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
echo "prometheus3: go build -o $bin (a cold build takes minutes)"
start=$(date +%s)
go build -ldflags "$ldflags" -o "$bin.tmp" github.com/prometheus/prometheus/cmd/prometheus
mv "$bin.tmp" "$bin"
echo "prometheus3: built in $(($(date +%s) - start))s: $("$bin" --version | head -n 1)"
