# upgradewatch: Azure Functions custom handler in Go. `make help` lists the targets.
# Needs GNU make, bash, Go and Node/npm. Everything else (Go modules, Azurite)
# comes from `make setup`.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS   += --no-print-directory

GO              ?= go
GOFMT           ?= $(shell $(GO) env GOROOT)/bin/gofmt
BIN             ?= bin
DIST            ?= dist

# Azurite 3.35.0 is the newest release whose engines field accepts Node 20.
AZURITE_VERSION    ?= 3.35.0
AZURITE_DIR        ?= .azurite
AZURITE_TABLE_HOST ?= 127.0.0.1
AZURITE_TABLE_PORT ?= 10002
AZURITE_TABLE_ENDPOINT ?= http://$(AZURITE_TABLE_HOST):$(AZURITE_TABLE_PORT)/devstoreaccount1
AZURITE_BIN        := $(abspath $(AZURITE_DIR)/node_modules/.bin/azurite-table)
export AZURITE_DIR AZURITE_TABLE_HOST AZURITE_TABLE_PORT

# axe-core, injected into the dashboard's pages by the browser test
# (handlers/dashboard_browser_test.go reads .axe/node_modules/axe-core).
AXE_VERSION ?= 4.10.3
AXE_DIR     := .axe

# staticcheck 2026.2.2. Release 2025.1.1 is module version v0.6.1; the query
# `@2025.1.1` does not resolve through the module proxy, and v0.8.x is the
# first line built for Go 1.26.
STATICCHECK_VERSION ?= v0.8.2

# -race needs cgo and a C compiler; without one, tests run without it (warned).
RACE         ?= $(if $(filter 1,$(shell $(GO) env CGO_ENABLED)),-race,)
TEST_TIMEOUT ?= 15m
# Fuzz budgets are execution counts, not durations: with a duration, Go 1.26's
# fuzz coordinator can fail a target with a bare "context deadline exceeded"
# at the deadline (go.dev/issue/75804, fixed in Go 1.27) on a loaded machine.
FUZZTIME     ?= 100000x
FUZZ_TARGETS ?= internal/events:FuzzDecode internal/events:FuzzSplit internal/events:FuzzDecodeAlert internal/events:FuzzDecodeExport internal/events:FuzzDecodeResourceEvent internal/host:FuzzDecodeRequest internal/versions:FuzzParse internal/versions:FuzzReleaseDate internal/versions:FuzzFamily internal/inventory:FuzzDecode internal/policy:FuzzParse internal/maintenance:FuzzBetween internal/notify:FuzzEscapeCard internal/auth:FuzzVerifyClusterToken handlers:FuzzDecodeSilence

# node-reporter, the in-cluster CronJob (docs/node-reporter.md).
NODE_REPORTER_VERSION ?= 0.1.0
NODE_REPORTER_IMAGE   ?= upgradewatch/node-reporter:$(NODE_REPORTER_VERSION)
# Digest of the golang build image (sha256:...): required by node-reporter-image.
NODE_REPORTER_GO_DIGEST ?=

BENCH_ARGS ?=
DEMO_PORT  ?= 8089

# Environment for anything that talks to the Azurite started by this Makefile.
AZURITE_ENV := REQUIRE_AZURITE=1 AZURITE_TABLE_ENDPOINT=$(AZURITE_TABLE_ENDPOINT) AZURITE_BIN=$(AZURITE_BIN)

# Recipe fragments (each ends without a trailing `;`).
# gofmt -l over every .go file outside dot-dirs, testdata, bin/ and dist/.
define gofmt_check
files=$$(find . \( -path './.*' -o -path '*/testdata' -o -path './$(BIN)' -o -path './$(DIST)' \) -prune \
	-o -type f -name '*.go' -print0 | xargs -0 -r $(GOFMT) -l); \
if [ -n "$$files" ]; then echo "gofmt: these files need formatting (run: make fmt):" >&2; echo "$$files" >&2; exit 1; fi
endef

# Start Azurite unless it already runs; stop it on exit only if this recipe started it.
define with_azurite
started=0; \
cleanup() { if [ "$$started" = 1 ]; then scripts/azurite-table.sh stop || true; fi; }; \
trap cleanup EXIT; trap 'exit 130' INT TERM; \
if ! scripts/azurite-table.sh status >/dev/null 2>&1; then scripts/azurite-table.sh start; started=1; \
else echo "azurite-table: reusing the instance already running on $(AZURITE_TABLE_ENDPOINT)"; fi
endef

.PHONY: help setup build package app node-reporter node-reporter-image lint fmt test screenshots bench demo azurite-start azurite-stop azurite-status clean distclean

help: ## List the targets
	@echo "usage: make <target> [VAR=value ...]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "variables: GO=$(GO) BIN=$(BIN) DIST=$(DIST) AZURITE_VERSION=$(AZURITE_VERSION) AZURITE_DIR=$(AZURITE_DIR)"
	@echo "           FUZZTIME=$(FUZZTIME) TEST_TIMEOUT=$(TEST_TIMEOUT) DEMO_PORT=$(DEMO_PORT) STATICCHECK_VERSION=$(STATICCHECK_VERSION)"

setup: ## Download Go modules; install the pinned Azurite and axe-core (npm ci) if missing
	$(GO) mod download
	@if [ -x "$(AZURITE_BIN)" ]; then \
		echo "azurite: already installed in $(AZURITE_DIR)"; \
	elif [ -f "$(AZURITE_DIR)/package-lock.json" ]; then \
		echo "azurite: npm ci --prefix $(AZURITE_DIR)"; \
		npm ci --prefix $(AZURITE_DIR) --no-audit --no-fund --loglevel=error; \
	else \
		echo "azurite: no lock file; installing azurite@$(AZURITE_VERSION)"; \
		mkdir -p $(AZURITE_DIR); \
		npm install --prefix $(AZURITE_DIR) --save-exact --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION); \
	fi
	@v=$$(node -p 'require(process.argv[1]).version' "$(abspath $(AZURITE_DIR))/node_modules/azurite/package.json" 2>/dev/null || echo unknown); \
	if [ "$$v" != "$(AZURITE_VERSION)" ]; then \
		echo "warning: $(AZURITE_DIR) has azurite $$v, AZURITE_VERSION is $(AZURITE_VERSION)" >&2; \
	fi
	@if [ -f "$(AXE_DIR)/node_modules/axe-core/axe.min.js" ]; then \
		echo "axe-core: already installed in $(AXE_DIR)"; \
	elif [ -f "$(AXE_DIR)/package-lock.json" ]; then \
		echo "axe-core: npm ci --prefix $(AXE_DIR)"; \
		npm ci --prefix $(AXE_DIR) --no-audit --no-fund --loglevel=error; \
	else \
		echo "axe-core: no lock file; installing axe-core@$(AXE_VERSION)"; \
		mkdir -p $(AXE_DIR); \
		npm install --prefix $(AXE_DIR) --save-exact --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION); \
	fi

build: ## Build every command in cmd/ into bin/ (handler, replay, ...)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

package: ## Build the static linux/amd64 handler as dist/handler
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "-s -w" -o $(DIST)/handler ./cmd/handler

app: package ## package + host.json + functions/* into dist/ (func start --script-root dist)
	@case "$(DIST)" in ""|"."|"/"|"./") echo "app: refusing DIST='$(DIST)'" >&2; exit 1;; esac
	@# Function folders are rebuilt from functions/ so a deleted function does not linger.
	@find $(DIST) -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
	cp host.json $(DIST)/host.json
	@for d in functions/*/; do \
		name=$$(basename "$$d"); \
		[ -f "$$d/function.json" ] || { echo "app: skipping $$d (no function.json)"; continue; }; \
		mkdir -p "$(DIST)/$$name"; cp -R "$$d". "$(DIST)/$$name/"; \
		echo "app: $(DIST)/$$name/"; \
	done
	@# Core Tools reads local.settings.json from the script root; it is never published.
	@if [ -f local.settings.json ]; then cp local.settings.json $(DIST)/local.settings.json; \
	else cp local.settings.sample.json $(DIST)/local.settings.json; fi
	chmod +x $(DIST)/handler
	@echo "app: ready; run: func start --script-root $(DIST)"

node-reporter: ## Build the static linux/amd64 node-reporter as bin/node-reporter
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(NODE_REPORTER_VERSION)" -o $(BIN)/node-reporter ./cmd/node-reporter

node-reporter-image: ## Build the node-reporter container image (needs a Docker engine)
	@test -n "$(NODE_REPORTER_GO_DIGEST)" || { echo "set NODE_REPORTER_GO_DIGEST=sha256:... (the golang build image's digest; docs/node-reporter.md)" >&2; exit 2; }
	docker build -f cmd/node-reporter/Dockerfile --build-arg VERSION=$(NODE_REPORTER_VERSION) \
	  --build-arg GO_DIGEST=$(NODE_REPORTER_GO_DIGEST) -t $(NODE_REPORTER_IMAGE) .

lint: ## gofmt, go vet and staticcheck
	@$(gofmt_check)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt: ## Format all Go files in place
	@find . \( -path './.*' -o -path '*/testdata' -o -path './$(BIN)' -o -path './$(DIST)' \) -prune \
		-o -type f -name '*.go' -print0 | xargs -0 -r $(GOFMT) -w

test: setup ## gofmt, go vet, all tests on Azurite (-race), then short fuzz runs
	@set -eu -o pipefail; \
	echo "==> gofmt"; $(gofmt_check); \
	echo "==> go vet ./..."; $(GO) vet ./...; \
	$(with_azurite); \
	if [ -z "$(RACE)" ]; then echo "warning: cgo is unavailable; running tests without -race" >&2; fi; \
	echo "==> go test $(RACE) ./..."; \
	$(AZURITE_ENV) $(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./...; \
	for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target#*:}; \
		listed=$$($(GO) test -list "^$${name}\$$" ./$$pkg); \
		if ! grep -qx "$$name" <<<"$$listed"; then \
			echo "fuzz: $$name not found in ./$$pkg (update FUZZ_TARGETS)" >&2; exit 1; \
		fi; \
		echo "==> fuzz ./$$pkg $$name, $(FUZZTIME) executions"; \
		$(GO) test -run '^$$' -fuzz "^$${name}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./$$pkg; \
	done

screenshots: setup ## Retake the README's dashboard screenshots (docs/img) in headless Chromium
	@set -eu -o pipefail; \
	$(with_azurite); \
	UPGRADEWATCH_SCREENSHOTS=1 $(AZURITE_ENV) $(GO) test -count=1 -run '^TestDashboardInBrowser$$' ./handlers/

bench: setup build ## Run cmd/bench (bin/handler) against Azurite; pass flags with BENCH_ARGS="..."
	@set -eu -o pipefail; \
	$(with_azurite); \
	$(AZURITE_ENV) $(BIN)/bench -handler $(BIN)/handler $(BENCH_ARGS)

demo: setup build ## Replay a demo timeline through bin/handler on Azurite and show the state
	@BIN=$(BIN) DEMO_PORT=$(DEMO_PORT) scripts/demo.sh

azurite-start: setup ## Start Azurite Table on :10002 (in memory; AZURITE_PERSIST=1 for disk)
	@scripts/azurite-table.sh start

azurite-stop: ## Stop Azurite (SIGINT)
	@scripts/azurite-table.sh stop

azurite-status: ## Is Azurite running?
	@scripts/azurite-table.sh status

clean: ## Remove bin/, dist/ and coverage files
	rm -rf $(BIN) $(DIST) coverage.out coverage.html *.coverprofile

distclean: clean azurite-stop ## clean + remove Azurite's node_modules, data and log
	rm -rf $(AZURITE_DIR)/node_modules $(AZURITE_DIR)/data $(AZURITE_DIR)/*.log $(AZURITE_DIR)/*.pid $(AXE_DIR)/node_modules
