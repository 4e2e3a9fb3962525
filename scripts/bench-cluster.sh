#!/usr/bin/env bash
# Cluster benchmarks on dev clusters (as root): leader failover time over 20
# kill -9 trials, node-loss time, and API create throughput on 3 voters.
# Figures go to stdout; copy them into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
make build >/dev/null
export SKIFF_BIN=$PWD/bin/skiff
go test -tags hashicorpmetrics -run '^$' -bench 'BenchmarkFailover$' -benchtime 20x -timeout 30m ./e2e/
go test -tags hashicorpmetrics -run '^$' -bench 'BenchmarkNodeLoss$' -benchtime 5x -timeout 30m ./e2e/ || true
go test -tags hashicorpmetrics -run '^$' -bench 'BenchmarkAPICreate3Voters$' -benchtime 20000x -timeout 30m ./e2e/
