# meshguard's build, run and test entry points. `make test` is what CI runs.
SHELL := /usr/bin/env bash
# Go 1.27.3 (go.mod): the go command fetches that toolchain from the module proxy when the local one is older.
export GOTOOLCHAIN := go1.27.3
BIN := $(CURDIR)/bin
GO_TEST_FLAGS ?= -p 2 -count=1 -timeout 45m
STATICCHECK_VERSION := v0.8.2
GHZ_VERSION := v0.93.0
GOVULNCHECK_VERSION := v1.8.0

# Packages that start a control plane (kube-apiserver + etcd): test/e2e/...,
# test/certmanager and test/cluster's own tests. Everything else is unit tests.
CONTROL_PLANE_PKGS := /test/e2e/|/test/certmanager$$|/test/cluster$$

.PHONY: all build run test test-unit test-race bench bench-compare lint vulncheck fuzz load k8s-bin helm ghz clean

all: build

## build: the meshguard binary into bin/meshguard
build:
	go build -trimpath -o $(BIN)/meshguard ./cmd/meshguard

## run: a local control plane with meshguard's webhooks and ext_authz wired up (`meshguard dev`: a -tags dev
## build into bin/meshguard-dev, as the dev command links the test harness and the product binary must not);
## DEV_ARGS passes its flags (ports, addresses: `meshguard-dev dev --help`)
run: k8s-bin
	go build -tags dev -trimpath -o $(BIN)/meshguard-dev ./cmd/meshguard
	$(BIN)/meshguard-dev dev --k8s-bin $(BIN)/k8s $(DEV_ARGS)

## test-unit: unit, conformance and fuzz-seed tests; no control plane (fast feedback)
test-unit:
	go test $(GO_TEST_FLAGS) $$(go list ./... | grep -Ev '$(CONTROL_PLANE_PKGS)')
	go test $(GO_TEST_FLAGS) -tags dev -run '^TestDev' ./cmd/meshguard

## test-race: the unit tests of the concurrent packages under the race detector (no control plane needed)
# Measured 2026-12-06 on the shared 2-core machine, warm build cache: each package alone (under load from
# other jobs) policy 126 s, injector/... 102 s, webhook 72 s, cmd/meshguard 64 s, authz 19 s, audit 18 s,
# validation/... 19 s, certs/... 13 s, orgrules 10 s, meshconfig 8 s, reload 7 s, internal/... 7 s; the
# whole target 2 min 15 s. A cold build cache adds the -race build of every dependency (13.5 min here,
# with the machine loaded 3x over by other jobs).
RACE_PKGS := ./authz/ ./policy/ ./reload/ ./webhook/ ./certs/... ./audit/ ./orgrules/ ./internal/... ./meshconfig/ \
	./cmd/meshguard/ ./injector/... ./validation/...
test-race:
	go test -race $(GO_TEST_FLAGS) $(RACE_PKGS)

## test: everything, unit and e2e tests against the real API server (what CI runs), and test-race
test: k8s-bin helm test-race
	KUBEBUILDER_ASSETS=$(BIN)/k8s PATH="$(BIN):$(BIN)/k8s:$$PATH" go test $(GO_TEST_FLAGS) ./...
	# the tests of `meshguard dev`, which only a -tags dev build has (see run)
	go test $(GO_TEST_FLAGS) -tags dev -run '^TestDev' ./cmd/meshguard

## bench: the Go benchmarks (figures and per-area commands in docs/benchmarks.md)
bench:
	go test -run '^$$' -bench 'Inject' -benchmem -benchtime 2s ./injector/ ./webhook/
	go test -run '^$$' -bench 'Validate|RulesOnly|KindValidators' -benchmem -benchtime 2s ./validation/
	go test -run '^$$' -bench 'ValidationWebhookConcurrent' -benchmem -benchtime 4000x ./webhook/
	go test -run '^$$' -bench 'Check' -benchmem -benchtime 3000x -count 3 ./policy/
	go test -run '^$$' -bench 'Compile10k' -benchtime 1x ./policy/
	go test -run '^$$' -bench 'GRPCCheck' -benchmem -count 3 ./authz/
	go test -run '^$$' -bench . -benchmem -benchtime 200ms ./certs/

## bench-compare: the side-by-side run (docs/benchmarks.md) (meshguard vs no-op gRPC server, vs OPA policies-as-data, /inject vs
## its floor; memory and snapshot swaps; with perf installed, where a request's CPU goes), interleaved; ratio table
## on stdout and in bin/bench-compare/ (~4 min on 2 cores). BENCH_FLAGS passes flags to test/bench/compare (e.g. BENCH_FLAGS="-rounds 3").
bench-compare:
	bash hack/bench-compare.sh $(BENCH_FLAGS)

## lint: go vet and staticcheck
lint:
	go vet ./...
	go vet -tags dev ./cmd/meshguard
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...
	$(BIN)/staticcheck -tags dev ./cmd/meshguard

## vulncheck: govulncheck against an offline database built from a pinned golang.org/x/vulndb (hack/vulncheck.sh)
vulncheck:
	GOVULNCHECK_VERSION=$(GOVULNCHECK_VERSION) bash hack/vulncheck.sh

## fuzz: every fuzz target for FUZZTIME (default 30s) each
fuzz:
	@bash hack/fuzz.sh

## load: the long load runs: 500 concurrent AdmissionReviews for 60s; 1,000,000 ext_authz checks under policy churn
load:
	go run ./test/load/inject -concurrency 500 -duration 60s
	go run ./test/load/authz -checks 1000000 -concurrency 64 -policies 1000 -churn 100ms

## k8s-bin: kube-apiserver, kube-controller-manager, etcd and kubectl built from the Go module proxy into bin/k8s (cached)
k8s-bin:
	@bash hack/k8s-bin.sh

## helm: helm built from the Go module proxy into bin/ (cached)
helm:
	@bash hack/helm.sh

## ghz: the gRPC load tool built from the Go module proxy into bin/
ghz:
	@test -x $(BIN)/ghz || GOBIN=$(BIN) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

clean:
	rm -rf $(BIN)/meshguard $(BIN)/meshguard-dev
