# Every Go module in the repository (the core, plus bench/ and kafka/ once they exist).
MODULES := $(shell find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)
# Fuzz targets run briefly in `make test`; FUZZTIME=5m for a real session.
FUZZTIME ?= 10s
FUZZ_TARGETS := ./segment:FuzzDecodeBatch ./segment:FuzzRecoverSegment ./index:FuzzOpenIndex

.PHONY: test fmt vet race fuzz bench

## test: what CI runs: formatting, vet (linux and darwin), the race-enabled suite, short fuzzing.
test: fmt vet race fuzz

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do (cd $$m && echo "go vet $$m" && go vet ./... && GOOS=darwin go vet ./...) || exit 1; done

race:
	@for m in $(MODULES); do (cd $$m && go test -race -count=1 ./...) || exit 1; done

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($(FUZZTIME))"; \
		go test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

## bench: the storage benchmarks, with allocation counts.
bench:
	go test -run='^$$' -bench=. -benchmem ./segment/ ./group/ .
