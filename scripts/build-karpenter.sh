#!/usr/bin/env bash
# Build (once) Karpenter with its KWOK cloud provider (sigs.k8s.io/karpenter/kwok: every real
# Karpenter controller, with a cloud that creates Node objects instead of VMs), used by
# `msd cluster up --karpenter` and the Karpenter integration test. The version is the one
# test/controlplane/karpenter/go.mod pins, i.e. the same as the karpenter.sh CRDs that
# scripts/build-controlplane.sh copies. Output, in a cache folder keyed by version:
#   ${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}/karpenter/<version>/
#     karpenter-kwok                                the controller binary
#     kwok-crds/karpenter.kwok.sh_kwoknodeclasses.yaml   the KWOKNodeClass CRD (kwok/apis/crds)
#
# Warm cache: a no-op that takes milliseconds (go is not even invoked).
# Cold: a few minutes on 2 cores (see the figure printed at the end).
#
# Progress goes to stderr; the LAST line on stdout is the cache folder, e.g.
#   KARPENTER_DIR=$(scripts/build-karpenter.sh | tail -n1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOD="$ROOT/test/controlplane/karpenter"

LOG_PREFIX=build-karpenter
# shellcheck source=scripts/lib/go-tools.sh
source "$ROOT/scripts/lib/go-tools.sh"

[[ -f "$MOD/go.mod" ]] || die "missing $MOD/go.mod"
VERSION=$(modver "$MOD/go.mod" sigs.k8s.io/karpenter)
[[ -n "$VERSION" ]] || die "could not read the sigs.k8s.io/karpenter version from $MOD/go.mod"

OUT="$CACHE_ROOT/karpenter/$VERSION"
BIN=karpenter-kwok
CRDS=kwok-crds
STAMP="sigs.k8s.io/karpenter@$VERSION"

have() { # output: exists and was built from $STAMP
  [[ -e "$OUT/$1" && -f "$OUT/.stamp.$1" && "$(<"$OUT/.stamp.$1")" == "$STAMP" ]]
}
all_warm() { have "$BIN" && have "$CRDS"; }

enter_build "$OUT" "$OUT" all_warm

install_stamp() { # name   (written after the output is in place)
  printf '%s\n' "$STAMP" >"$OUT/.stamp.$1.tmp.$$"
  mv -f "$OUT/.stamp.$1.tmp.$$" "$OUT/.stamp.$1"
}

use_go
log "Go: $(go version); karpenter $VERSION; cache folder: $OUT"
start=$SECONDS

if ! have "$BIN"; then
  log "building $BIN from $STAMP (cold build: a few minutes on 2 cores)..."
  tmp="$OUT/.$BIN.tmp.$$"
  TMPS+=("$tmp")
  # Version stamped like upstream's ko build; Karpenter logs it and sends it as its user agent.
  ldflags="-s -w -X sigs.k8s.io/karpenter/pkg/operator.Version=$VERSION"
  # In the background + wait, so that a TERM/INT is handled at once (see on_signal).
  (cd "$MOD" && exec go build -trimpath -ldflags="$ldflags" -o "$tmp" sigs.k8s.io/karpenter/kwok) &
  BUILD_PID=$!
  wait "$BUILD_PID" || die "go build of sigs.k8s.io/karpenter/kwok failed"
  BUILD_PID=
  mv -f "$tmp" "$OUT/$BIN"
  install_stamp "$BIN"
  log "built $BIN in $((SECONDS - start))s ($(du -h "$OUT/$BIN" | cut -f1))"
fi

if ! have "$CRDS"; then
  kdir=$(cd "$MOD" && go mod download -json "$STAMP" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  src="$kdir/kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml"
  [[ -f "$src" ]] || die "karpenter module has no kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml (dir: '$kdir')"
  tmp="$OUT/.$CRDS.tmp.$$"
  TMPS+=("$tmp")
  mkdir -p "$tmp"
  cp "$src" "$tmp/"
  chmod u+w "$tmp"/*.yaml # the module cache is read-only
  rm -rf "$OUT/$CRDS"
  mv -f "$tmp" "$OUT/$CRDS"
  install_stamp "$CRDS"
  log "copied the KWOKNodeClass CRD"
fi

log "done in $((SECONDS - start))s: $OUT"
echo "$OUT"
