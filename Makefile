# FitMate communication server. `make run` starts it on the embedded defaults;
# `make test` runs every test (what CI runs).
SHELL := /bin/bash
GO ?= go

# Development-only defaults so `make run` works on a bare machine. Production
# sets its own (see README.md); the server refuses secrets shorter than 32 bytes.
DEV_ENV := HOST=$${HOST:-127.0.0.1} \
	JWT_SECRET=$${JWT_SECRET:-dev-only-jwt-secret-change-me-0123456789} \
	SERVICE_API_KEY=$${SERVICE_API_KEY:-dev-only-service-key-0123456789} \
	LOG_FORMAT=$${LOG_FORMAT:-text}

.PHONY: run build test test-deps lint bench bench-growth clean cluster

run:
	$(DEV_ENV) $(GO) run ./cmd/commserver

build:
	$(GO) build -o bin/commserver ./cmd/commserver

# N pods (PODS=2) on ports 3001.., the local Redis, one store (MONGODB_URI,
# else cmd/devstore) and the sticky proxy on 127.0.0.1:3000: docs/cluster.md.
cluster:
	$(DEV_ENV) GO=$(GO) ./scripts/cluster.sh

test-deps:
	npm ci --prefix test/jsclient --no-audit --no-fund --loglevel=error
	npm ci --prefix test/twilio-mock --no-audit --no-fund --loglevel=error
	npm ci --prefix examples/react-app --no-audit --no-fund --loglevel=error

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The protocol conformance suites (cmd/sioconformance) time heartbeats to
# 200 ms: they run last, on their own, once the rest has finished.
test: test-deps lint
	$(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v /cmd/sioconformance$$)
	$(GO) test -count=1 -timeout 30m ./cmd/sioconformance

# bench: the embedded store's growth figures (docs/store.md), then this server
# against the Node reference (docs/performance.md).
bench: bench-growth
	./bench/run.sh

bench-growth:
	$(GO) test ./store/ -run '^$$' -bench EmbeddedGrowth -benchtime 1x -timeout 60m

clean:
	rm -rf bin data
