#!/usr/bin/env bash
# Pod start benchmark (as root): time from `skiff apply` of a 20-replica
# Deployment to all 20 pods Ready on one node, next to the floor: `ctr run`
# starting the same 20 containers on the same node's containerd.
# Usage: scripts/bench-pods.sh [REPLICAS] [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
TRIALS=${2:-3}
make build image >/dev/null
BIN=$PWD/bin/skiff
WORK=$(mktemp -d /tmp/skiff-bench-pods.XXXXXX)
API=127.0.0.1:16443
export SKIFF_SERVER=http://$API KUBECONFIG=$WORK/none
"$BIN" agent --insecure --bootstrap --data-dir "$WORK/data" --node-name bench --api-addr $API \
  --raft-addr 127.0.0.1:16444 --agent-addr 127.0.0.1:16450 >"$WORK/agent.log" 2>&1 &
PID=$!
cleanup() {
  kill -9 $PID 2>/dev/null || true
  for p in $(cat "$WORK"/data/rt/containerd/containerd.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  go run -tags hashicorpmetrics ./scripts/purge bench "$WORK" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
until "$BIN" get --raw /readyz >/dev/null 2>&1; do sleep 0.2; done
until [ "$("$BIN" get nodes --no-headers 2>/dev/null | grep -c ' Ready')" = 1 ]; do sleep 0.2; done
"$BIN" image load bin/busybox.tar >/dev/null
SOCK=$WORK/data/rt/containerd/c.sock
CTR="ctr -a $SOCK -n skiff-bench"

for t in $(seq 1 "$TRIALS"); do
  start=$(date +%s.%N)
  cat <<YAML | "$BIN" apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: $N
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {name: c, image: skiff.local/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
YAML
  "$BIN" rollout status deployment/bench --timeout 300s >/dev/null
  skiff_s=$(echo "$(date +%s.%N) - $start" | bc)
  "$BIN" delete deployment bench --wait=true >/dev/null
  until [ "$("$BIN" get pods --no-headers 2>/dev/null | wc -l)" = 0 ]; do sleep 0.2; done

  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$N"); do $CTR run -d skiff.local/busybox:latest floor-$t-$i sleep 3600 >/dev/null & pids+=($!); done
  wait "${pids[@]}"
  ctr_s=$(echo "$(date +%s.%N) - $start" | bc)
  for i in $(seq 1 "$N"); do $CTR task kill -s KILL floor-$t-$i >/dev/null 2>&1 || true; done
  sleep 0.5
  for i in $(seq 1 "$N"); do $CTR task rm -f floor-$t-$i >/dev/null 2>&1 || true; $CTR container rm floor-$t-$i >/dev/null 2>&1 || true; done
  printf 'trial %d: skiff apply -> %d Ready: %.2fs   ctr run x%d (parallel): %.2fs\n' "$t" "$N" "$skiff_s" "$N" "$ctr_s"
done
