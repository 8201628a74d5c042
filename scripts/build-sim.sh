#!/usr/bin/env bash
# Build (once) the vLLM simulator llm-d-inference-sim used by the autoscaling end-to-end
# test, from the Go module pinned in test/controlplane/sim/, into a cache folder keyed by
# version outside the repo. Progress on stderr; the LAST stdout line is the binary's path.
# Warm cache: a no-op. Cold: a few minutes on 2 cores.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOD="$ROOT/test/controlplane/sim"
VERSION=$(awk '$1 == "require" && $2 ~ /llm-d-inference-sim/ { print $3; exit }
  $1 ~ /llm-d-inference-sim$/ && $2 ~ /^v/ { print $2; exit }' "$MOD/go.mod")
[[ -n "$VERSION" ]] || { echo "[build-sim] cannot read the simulator version from $MOD/go.mod" >&2; exit 1; }
CACHE_ROOT="${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}"
OUT="$CACHE_ROOT/sim/$VERSION"
BIN="$OUT/llm-d-inference-sim"
if [[ -x "$BIN" ]]; then
  echo "[build-sim] cache warm: $BIN" >&2
  echo "$BIN"
  exit 0
fi
mkdir -p "$OUT"
echo "[build-sim] building llm-d-inference-sim $VERSION (cold build: a few minutes)..." >&2
start=$(date +%s)
tmp="$OUT/.llm-d-inference-sim.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$MOD" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
  go build -trimpath -ldflags="-s -w" -o "$tmp" github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim)
mv "$tmp" "$BIN"
echo "[build-sim] built in $(( $(date +%s) - start ))s: $BIN" >&2
echo "$BIN"
