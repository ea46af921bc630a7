# skypanel developer entry points. `make` alone lists them.
# Everything a target needs (Postgres, test peers, npm packages) is installed and
# started by the target itself, so a fresh Debian 12 machine only needs Go, Node and make.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Targets below rely on running in the order they are listed (e.g. test after check-generate).
.NOTPARALLEL:

PG := scripts/dev-postgres.sh
GEN_PATHS := shared/gen web/src/gen shared/proto/third_party
PROTOVALIDATE := github.com/bufbuild/protovalidate@v1.2.2
TEST_ENV = SKYPANEL_TEST_DATABASE_URL="$$($(PG) url skypanel_test)" \
	SKYPANEL_MAILPIT_BIN="$(CURDIR)/.data/bin/mailpit" \
	SKYPANEL_PEBBLE_BIN="$(CURDIR)/.data/bin/pebble" \
	SKYPANEL_CHALLTESTSRV_BIN="$(CURDIR)/.data/bin/pebble-challtestsrv"

.PHONY: help deps generate check-generate lint build run test test-race bench stop clean \
	db db-fast tools web

help: ## List targets (default)
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{ printf "  %-16s %s\n", $$1, $$2 }'

deps: db tools web/node_modules/go.mod ## Install and start everything `run` needs (Postgres, test peers, npm packages)

# Durable Postgres for `run`/`bench`; does nothing if a server is already up.
db:
	@env -u SKYPANEL_PG_FAST $(PG) start >/dev/null

# Non-durable (fsync off) Postgres for tests; an already running server is reused as is.
db-fast:
	@SKYPANEL_PG_FAST=1 $(PG) start >/dev/null

tools:
	@scripts/dev-tools.sh

# npm ci only when the lockfile changed. The go.mod stops `go ./...` from descending
# into node_modules, where some packages ship .go files.
web/node_modules/go.mod: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	echo 'module ignore' >$@

generate: web/node_modules/go.mod ## Regenerate Go and TypeScript code from shared/proto
	@# protovalidate's schema comes from its Go module: no Buf Schema Registry here.
	dir=$$(go mod download -json $(PROTOVALIDATE) | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
		test -n "$$dir" || { echo "cannot download $(PROTOVALIDATE)" >&2; exit 1; }; \
		rm -rf shared/proto/third_party/buf && mkdir -p shared/proto/third_party && \
		cp -r "$$dir/proto/protovalidate/buf" shared/proto/third_party/ && \
		chmod -R u+w shared/proto/third_party && \
		rm -f shared/proto/third_party/buf/validate/BUILD.bazel
	rm -rf shared/gen/go web/src/gen
	PATH="$(CURDIR)/web/node_modules/.bin:$$PATH" buf generate shared/proto
	@# Go code imports protovalidate's published Go package; only TypeScript needs ours.
	rm -rf shared/gen/go/buf

# Compares checksums before and after instead of asking git, so that it also works
# before generated files are committed; in CI's fresh clone it is the same check.
check-generate: ## Fail if `make generate` changes any generated file
	@mkdir -p .data
	@{ find $(GEN_PATHS) -type f -print0 2>/dev/null || true; } | sort -z | xargs -0r sha256sum >.data/gen-before.sha
	@$(MAKE) --no-print-directory generate >/dev/null
	@{ find $(GEN_PATHS) -type f -print0 2>/dev/null || true; } | sort -z | xargs -0r sha256sum >.data/gen-after.sha
	@if ! diff -u .data/gen-before.sha .data/gen-after.sha >&2; then \
		echo "generated code is out of date: run 'make generate' and commit the result" >&2; \
		exit 1; \
	fi

lint: web/node_modules/go.mod ## gofmt (except generated code), go vet, buf lint
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path './.data/*' \
		-not -path './web/node_modules/*' -not -path './shared/gen/*' -not -path '*/testdata/*' \
		-print0 | xargs -0r gofmt -l); \
		if [[ -n "$$unformatted" ]]; then echo "gofmt needed:" >&2; echo "$$unformatted" >&2; exit 1; fi
	go vet ./...
	web/node_modules/.bin/buf lint

# The dashboard, embedded by the control plane (web/embed.go); rebuilt when its sources change.
WEB_SRC := $(shell find web/src web/public web/scripts -type f 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json web/package.json web/package-lock.json

web: web/dist/index.html ## Build the dashboard into web/dist (embedded by `build`)

web/dist/index.html: web/node_modules/go.mod $(WEB_SRC)
	cd web && npm run build

build: web ## Build the control plane, agent and installer binaries into bin/
	@pats=(); for d in controlplane/cmd agent/cmd installer/cmd; do \
		if [[ -d $$d ]]; then pats+=("./$$d/..."); fi; done; \
		if (( $${#pats[@]} == 0 )); then echo "build: no commands yet" >&2; exit 0; fi; \
		pkgs=$$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' "$${pats[@]}"); \
		if [[ -z "$$pkgs" ]]; then echo "build: no commands yet" >&2; exit 0; fi; \
		mkdir -p bin; \
		echo "CGO_ENABLED=0 go build -o bin/" $$pkgs; \
		CGO_ENABLED=0 go build -o bin/ $$pkgs

run: deps build ## Start Postgres and the whole stack locally (scripts/run.sh)
	scripts/run.sh

test: check-generate db-fast tools web/node_modules/go.mod ## All checks and tests (what CI runs)
	$(TEST_ENV) go test -count=1 -timeout 30m ./...
	web/e2e/run.sh

test-race: check-generate db-fast tools web/node_modules/go.mod ## Tests with the race detector (slow)
	$(TEST_ENV) go test -count=1 -race ./...

bench: db build ## Benchmarks (API; agent sessions; agent vs node-exporter; edge vs nginx; metering; deploy overhead)
	SKYPANEL_BENCH_DATABASE_URL="$$($(PG) url skypanel_bench)" go run ./controlplane/cmd/skypanel-bench
	@command -v prometheus-node-exporter >/dev/null || apt-get install -y -q prometheus-node-exporter
	SKYPANEL_BENCH_DATABASE_URL="$$($(PG) url skypanel_bench)" go run ./controlplane/cmd/skypanel-agentbench --bin-dir bin
	@command -v wrk >/dev/null && command -v nginx >/dev/null || apt-get install -y -q wrk nginx-light
	go run ./agent/cmd/skypanel-edgebench --agent bin/skypanel-agent
	SKYPANEL_BENCH_DATABASE_URL="$$($(PG) url skypanel_bench)" go run ./controlplane/cmd/skypanel-billingbench
	$(MAKE) --no-print-directory db-fast tools
	$(TEST_ENV) CI=true go test -run '^$$' -bench DeployOverhead -benchtime 1x ./controlplane/internal/e2e/

stop: ## Stop Postgres
	@$(PG) stop

clean: stop ## Stop Postgres and delete .data/ and bin/
	rm -rf .data bin
