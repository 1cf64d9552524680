# Every Go module in the repository (the core, plus bench/ and kafka/ once they exist).
MODULES := $(shell find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)
# Timed fuzzing (`make fuzz`) runs each target for FUZZTIME; FUZZTIME=5m for a real session.
# `make test` does not fuzz: `go test` runs every fuzz target on its seeds and checked-in
# corpus (testdata/fuzz), which is deterministic.
FUZZTIME ?= 10s
# A target is package-dir:FuzzName; a package that is the root of its own module (./listener)
# is fuzzed from inside that module.
FUZZ_TARGETS := ./batch:FuzzDecodeBatch ./batch:FuzzDecompress ./segment:FuzzRecoverSegment ./index:FuzzOpenIndex ./listener:FuzzRequest
# staticcheck for `make lint`, pinned: v0.8.2 (staticcheck 2026.2.2), which builds with and
# analyses Go 1.26 code. `go install`ed from the module proxy into GOPATH/bin,
# and reinstalled if the binary there is another version or was built by another Go.
STATICCHECK_VERSION := v0.8.2
GOBIN_DIR := $(firstword $(subst :, ,$(shell go env GOPATH)))/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck

.PHONY: test fmt vet race fuzz bench tidy-check lint staticcheck compat compat-install

## test: the README's test command: formatting, vet (linux and darwin), the race-enabled suite
## (which runs the fuzz targets on their checked-in corpora).
test: fmt vet race

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do (cd $$m && echo "go vet $$m" && go vet ./... && GOOS=darwin go vet ./...) || exit 1; done

race:
	@for m in $(MODULES); do (cd $$m && go test -race -count=1 ./...) || exit 1; done

## fuzz: timed fuzzing, a separate CI step. A finding (a failing input, written to testdata/fuzz)
## fails it; the fuzzer missing its own deadline (it reports "context deadline exceeded" when its
## workers start slowly, e.g. with cold build caches) is reported and does not.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; dir=.; \
		if [ "$$pkg" != . ] && [ -f "$$pkg/go.mod" ]; then dir=$$pkg; pkg=.; fi; \
		echo "fuzz $$name ($(FUZZTIME))"; \
		out=$$(cd $$dir && go test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); rc=$$?; \
		echo "$$out"; \
		if [ $$rc -ne 0 ]; then \
			if echo "$$out" | grep -q 'Failing input written to' || \
				! echo "$$out" | grep -q 'context deadline exceeded'; then exit 1; fi; \
			echo "fuzz $$name: the fuzzer missed its own deadline; no input failed"; \
		fi; \
	done

## tidy-check: fail if `go mod tidy` would change any module's go.mod or go.sum (CI runs it
## after `make test`). A failure leaves the tidied files in place: review and commit them.
tidy-check:
	@for m in $(MODULES); do \
		(cd $$m && echo "go mod tidy $$m" && go mod tidy) || exit 1; \
		if ! git diff --exit-code -- $$m/go.mod $$m/go.sum || \
			[ -n "$$(git ls-files --others --exclude-standard -- $$m/go.mod $$m/go.sum)" ]; then \
			echo "tidy-check: go mod tidy changed $$m/go.mod or $$m/go.sum (diff above): commit the tidied files"; \
			exit 1; \
		fi; \
	done

## lint: staticcheck (the pinned version, installed if missing) on every module; fails on any finding.
lint: staticcheck
	@rc=0; for m in $(MODULES); do (cd $$m && echo "staticcheck $$m" && $(STATICCHECK) ./...) || rc=1; done; exit $$rc

# Installs the pinned staticcheck unless $(STATICCHECK) already is that version, built by this Go.
staticcheck:
	@want="$(STATICCHECK_VERSION) $$(go env GOVERSION)"; \
	have=$$(go version -m $(STATICCHECK) 2>/dev/null | awk 'NR==1 {g=$$2} $$1=="mod" && $$2=="honnef.co/go/tools" {v=$$3} END {print v, g}'); \
	if [ "$$have" != "$$want" ]; then \
		echo "go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)"; \
		GOBIN=$(GOBIN_DIR) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

## bench: the storage benchmarks, with allocation counts.
bench:
	go test -run='^$$' -bench=. -benchmem ./batch/ ./segment/ ./internal/log/ ./group/ .

## compat: the listener's compatibility matrix with the non-Go clients (kcat, kafka-python,
## confluent-kafka, its transactional producer in an exactly-once loop, kafkajs), each driven by
## a script against streamserve: installs them first (apt-get, npm), and a client that is
## missing fails its test. COMPAT_TARGET=kfake or
## COMPAT_ADDR=host:port point it at another server (see listener/compat's package doc).
COMPAT_DIR := listener/compat
compat: compat-install
	cd $(COMPAT_DIR) && go test -tags compat_external -count=1 -timeout 10m -run 'TestKcat|TestKafkaPython|TestConfluentKafka|TestKafkaJS' .

# The Debian packages (Python's are Debian's, run with /usr/bin/python3), and kafkajs into
# listener/compat/scripts/node_modules. npm comes with nodejs where nodejs is NodeSource's.
compat-install:
	@need=""; \
	command -v kcat >/dev/null || need="$$need kcat"; \
	/usr/bin/python3 -I -c 'import kafka' 2>/dev/null || need="$$need python3-kafka"; \
	/usr/bin/python3 -I -c 'import confluent_kafka' 2>/dev/null || need="$$need python3-confluent-kafka"; \
	command -v node >/dev/null || need="$$need nodejs"; \
	if [ -n "$$need" ]; then \
		echo "apt-get install$$need"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	fi; \
	if ! command -v npm >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; fi
	cd $(COMPAT_DIR)/scripts && npm install --no-audit --no-fund
