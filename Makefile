# cardinal — build, run, test, measure.
GO        ?= go
BIN       := bin/cardinal
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 30s
CACHE     := $(CURDIR)/.cache

.PHONY: all build run test test-short vet fuzz bench loadtest clean

all: build

## build: the static binary in bin/cardinal
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cardinal

## run: cardinal on the quickstart config, printing aggregated series to stdout
run: build
	$(BIN) --config.file=configs/quickstart.yaml

## test: vet, every test with the race detector (end-to-end tests start real Prometheus
## and PostgreSQL; under CI=true a missing binary fails instead of skipping)
test: vet
	$(GO) test -race -count=1 -timeout 45m ./...

## test-short: unit tests only
test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
