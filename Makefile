# cardinal — build, run, test, measure.
GO        ?= go
BIN       := bin/cardinal
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
FUZZTIME  ?= 30s
CACHE     := $(CURDIR)/.cache

.PHONY: all build run test test-short crashtest churntest vet fuzz bench loadtest docker clean

all: build

## build: the static binary in bin/cardinal
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cardinal

## run: cardinal on the quickstart config, printing aggregated series to stdout
run: build
	$(BIN) --config.file=configs/quickstart.yaml

## test: vet, every test with the race detector (end-to-end tests start real Prometheus
## and PostgreSQL; under CI=true a missing binary fails instead of skipping), then the checks
## of deploy/ (alerts with promtool, dashboard and manifests), a module of their own so that
## kustomize and k8s.io/api stay out of cardinal's go.mod; no -race there: the code under test
## is YAML and a separate process
test: vet
	$(GO) test -race -count=1 -timeout 45m ./...
	cd deploy/test && $(GO) test -count=1 -timeout 10m ./...

## crashtest: the crash test of docs/design.md §4 at length: CRASH_ROUNDS rounds of kill -9
## under load with a WAL (make test runs 5); replay a failure with CARDINAL_CRASH_SEED=<logged seed>
CRASH_ROUNDS ?= 25
crashtest:
	CARDINAL_CRASH_ROUNDS=$(CRASH_ROUNDS) $(GO) test -race -count=1 -v -run '^TestCrash' -timeout 20m ./cmd/cardinal/e2e/

## churntest: a fourth member joins a cluster of three under load and is removed again,
## CHURN_ROUNDS times, each output checked window by window against one cardinal's
## (make test runs the rolling restart test, which joins and removes once)
CHURN_ROUNDS ?= 20
churntest:
	CARDINAL_CHURN_ROUNDS=$(CHURN_ROUNDS) $(GO) test -race -count=1 -v -run '^TestCluster_churn' -timeout 60m ./cmd/cardinal/e2e/

## test-short: unit tests only: -short skips every test that builds cardinal or starts
## Prometheus, node_exporter or PostgreSQL (cmd/cardinal/e2e, timescale via pgtest)
test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...
	cd deploy/test && $(GO) vet ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: Go benchmarks (decode, route+aggregate, flush, pipeline, SQL rows/s, forwarding's own
## CPU) and the end-to-end scenario of docs/design.md §6 against the built binary: CPU
## µs/sample, RSS bytes/series, ack latency at 300k samples/s, longest flush lock hold; with a
## WAL; with the explorer scanning; in clusters of 1, 2 and 3 members (CPU per forwarded
## sample, wire bytes, p99 ack, each member's CPU and series)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./remotewrite/ ./aggregator/
	$(GO) test -run '^$$' -bench '^BenchmarkWriteRows$$' -benchtime 3s ./downstream/timescale/
	$(GO) test -run '^$$' -bench '^BenchmarkEndToEnd$$' -benchtime 3x -timeout 30m ./cmd/cardinal/e2e/
	$(GO) test -run '^$$' -bench '^BenchmarkEndToEndWAL$$' -benchtime 1x -timeout 30m ./cmd/cardinal/e2e/
	$(GO) test -run '^$$' -bench '^BenchmarkObserve$$' -benchtime 20000x ./explore/
	$(GO) test -run '^$$' -bench '^BenchmarkEndToEndExplore$$' -benchtime 2x -timeout 30m ./cmd/cardinal/e2e/
	$(GO) test -run '^$$' -bench '^BenchmarkForwardPath$$' -benchtime 6x ./hashring/
	$(GO) test -run '^$$' -bench '^BenchmarkCluster$$' -benchtime 1x -timeout 30m ./cmd/cardinal/e2e/

PROMETHEUS_VERSION ?= v0.307.3
PROMTOOL := $(CACHE)/promtool-$(PROMETHEUS_VERSION)
LOADTEST_ADDR ?= 127.0.0.1:19391

# Upstream promtool 3.x (Debian's lacks `push metrics`), built from the Go module proxy in a
# scratch module: `go install` refuses the Prometheus module.
$(PROMTOOL):
	mkdir -p $(CACHE)/promtool-build
	cd $(CACHE)/promtool-build && ( [ -f go.mod ] || $(GO) mod init promtool-build ) && \
	  $(GO) get github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION) && \
	  $(GO) build -o $(PROMTOOL) github.com/prometheus/prometheus/cmd/promtool

## loadtest: push metrics with upstream `promtool push metrics` to a cardinal started on
## $(LOADTEST_ADDR), the tool users already have, and show what cardinal aggregated
loadtest: build $(PROMTOOL)
	@set -e; dir=$$(mktemp -d); trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf $$dir' EXIT; \
	$(BIN) --config.file=configs/quickstart.yaml --web.listen-address=$(LOADTEST_ADDR) \
	  --log.level=warn >$$dir/out.txt 2>&1 & pid=$$!; \
	for i in $$(seq 50); do curl -sf http://$(LOADTEST_ADDR)/-/ready >/dev/null && break; sleep 0.1; done; \
	for round in 1 2 3; do \
	  for pod in $$(seq 1 200); do \
	    echo "prometheus_http_requests_total{job=\"shop\",code=\"200\",handler=\"/api/$$pod\",instance=\"10.0.$$round.$$pod:80\"} $$((round * 100 + pod))"; \
	  done >$$dir/metrics.txt; \
	  $(PROMTOOL) push metrics http://$(LOADTEST_ADDR)/api/v1/write $$dir/metrics.txt; sleep 1; \
	done; \
	curl -s http://$(LOADTEST_ADDR)/metrics | grep -E '^cardinal_(receiver_requests_total|aggregator_(input|output)_series|aggregator_samples_total)'; \
	curl -s http://$(LOADTEST_ADDR)/metrics | grep -q 'cardinal_aggregator_samples_total{rule="prometheus_http_requests_total"} 600' \
	  && echo "loadtest: promtool push metrics -> cardinal: 600 samples of 600 handler series aggregated into one series" \
	  || { echo "loadtest: cardinal did not aggregate what promtool pushed"; exit 1; }

## docker: the container image (distroless, non-root, CA certificates included), stamped with
## the version and revision; needs a Docker engine (this project's CI machines have none)
IMAGE ?= cardinal:$(VERSION)
docker:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

clean:
	rm -rf bin
