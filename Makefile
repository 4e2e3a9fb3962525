# skiff: build, run and test.
#   make run    install what is missing, build, start a single-node cluster (data in $(DATA_DIR))
#   make test   install what is missing, lint, run every test
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
export GOFLAGS ?= -mod=mod

TAGS      := hashicorpmetrics
BIN       := bin/skiff
DATA_DIR  ?= ./data
NODE_NAME ?= $(shell hostname | tr A-Z a-z)
STATICCHECK_VERSION := v0.8.2
GO_TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: all build run test lint unit e2e deps bench clean image

all: build

deps:
	@scripts/install-deps.sh

build:
	go build -tags $(TAGS) -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/skiff

run: deps build image
	$(BIN) init --data-dir $(DATA_DIR) --node-name $(NODE_NAME) --voters 1

image: bin/busybox.tar

bin/busybox.tar: scripts/build-test-image.sh
	@mkdir -p bin
	scripts/build-test-image.sh $@

test: deps lint unit e2e

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet -tags $(TAGS) ./...
	@command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck -tags $(TAGS) ./...

unit:
	go test -tags $(TAGS) $(GO_TEST_FLAGS) $$(go list ./... | grep -v /e2e)

e2e: build
	SKIFF_BIN=$(CURDIR)/$(BIN) go test -tags $(TAGS) $(GO_TEST_FLAGS) ./e2e/...

bench:
	go test -tags $(TAGS) -run '^$$' -bench . -benchtime 2s ./fsm/ ./api/

clean:
	rm -rf bin
