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

# shellcheck source=scripts/lib/go-tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tools.sh"
MOD=$(go_module test/controlplane/karpenter)
VERSION=$(modver "$MOD/go.mod" sigs.k8s.io/karpenter)
[[ -n "$VERSION" ]] || die "could not read the sigs.k8s.io/karpenter version from $MOD/go.mod"

OUT="$CACHE_ROOT/karpenter/$VERSION"
BIN=karpenter-kwok
CRDS=kwok-crds
STAMP="sigs.k8s.io/karpenter@$VERSION"

have() { stamped "$1" "$STAMP"; } # output: exists and was built from $STAMP
all_warm() { have "$BIN" && have "$CRDS"; }

enter_build "$OUT" "$OUT" all_warm

use_go
log "Go: $(go version); karpenter $VERSION; cache folder: $OUT"
start=$SECONDS

if ! have "$BIN"; then
  # Version stamped like upstream's ko build; Karpenter logs it and sends it as its user agent.
  go_build "$BIN" "$STAMP" "$MOD" "-s -w -X sigs.k8s.io/karpenter/pkg/operator.Version=$VERSION" \
    sigs.k8s.io/karpenter/kwok
fi

# The KWOKNodeClass CRD (karpenter.kwok.sh/v1alpha1), the KWOK cloud's node class.
copy_crds "$CRDS" "$STAMP" "$MOD" "sigs.k8s.io/karpenter@$VERSION" kwok/apis/crds \
  karpenter.kwok.sh_kwoknodeclasses.yaml

log "done in $((SECONDS - start))s: $OUT"
echo "$OUT"
