#!/usr/bin/env bash
# Build (once) the vLLM simulator llm-d-inference-sim used by the autoscaling end-to-end
# test, from the Go module pinned in test/controlplane/sim/, into a cache folder keyed by
# version outside the repo. Progress on stderr; the LAST stdout line is the binary's path.
# Warm cache: a no-op. Cold: a few minutes on 2 cores.
set -euo pipefail
# shellcheck source=scripts/lib/go-tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tools.sh"
MOD=$(go_module test/controlplane/sim)
VERSION=$(modver "$MOD/go.mod" github.com/llm-d/llm-d-inference-sim)
[[ -n "$VERSION" ]] || die "cannot read the simulator version from $MOD/go.mod"
OUT="$CACHE_ROOT/sim/$VERSION"
BIN="$OUT/llm-d-inference-sim"
if [[ -x "$BIN" ]]; then
  log "cache warm: $BIN"
  echo "$BIN"
  exit 0
fi
mkdir -p "$OUT"
log "building llm-d-inference-sim $VERSION (cold build: a few minutes)..."
start=$(date +%s)
tmp="$OUT/.llm-d-inference-sim.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$MOD" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
  go build -trimpath -ldflags="-s -w" -o "$tmp" github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim)
mv "$tmp" "$BIN"
log "built in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
