# Everyday commands. Each is one line of plain go so it can be typed by hand
# too; README lists them. Tools are pinned in tools/*.mod and run with
# `go tool -modfile=…`, so nothing needs installing beyond Go.

BUF      := go tool -modfile=tools/buf.mod buf
LINT     := go tool -modfile=tools/golangci.mod golangci-lint
FUZZTIME ?= 10s
BENCH    ?= .
# What `make breaking` compares the protos against (any buf input).
AGAINST  ?= .git\#ref=HEAD~1

.PHONY: all generate lint breaking test bench fuzz stack stack-polyglot install tidy ci

all: generate lint test

## generate: regenerate gen/ from proto/ (commit the result)
generate:
	$(BUF) generate

## lint: gofmt, go vet, golangci-lint, buf lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'); exit 1; }
	go vet ./...
	$(LINT) run ./...
	$(BUF) lint

## breaking: refuse wire-breaking proto changes against AGAINST (default: the previous commit)
breaking:
	$(BUF) breaking --against '$(AGAINST)'

## test: the whole suite with the race detector (README's test command)
test:
	go test -race ./...

## bench: the benchmarks (BENCH=RoundTrip to pick), with allocations
bench:
	go test -run '^$$' -bench '$(BENCH)' -benchmem ./...

## fuzz: run every Fuzz target for FUZZTIME each
fuzz:
	@set -e; for f in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
	  d=./$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$d $$t"; go test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$d; \
	  done; \
	done

# -v: the first build compiles the whole module (minutes on a fresh
# machine); go lists each package as it compiles it instead of staying
# silent (once built, it prints only the command's own package).

## stack: the whole system on embedded defaults
stack:
	go run -v ./tools/streamgate stack

## stack-polyglot: the mixed shop: users in Python, inventory in Node, the rest in Go (memory store)
stack-polyglot:
	go run -v ./tools/streamgate stack -services users=python,inventory=node -store memory

## install: build the streamgate command once into $(go env GOPATH)/bin, listing packages as they compile
install:
	go install -v ./tools/streamgate

## tidy: go.mod and go.sum of the repository and of deploy/
tidy:
	go mod tidy
	cd deploy && go mod tidy

## ci: what CI runs (.ci/run)
ci:
	./.ci/run
