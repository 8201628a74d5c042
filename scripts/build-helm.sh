#!/usr/bin/env bash
# Build (once) the Helm CLI used by the chart's integration test, from the Go
# module pinned in test/controlplane/helm/ (no downloads other than the Go module
# proxy), into a cache folder keyed by version, beside the control plane:
#   ${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}/helm/<version>/helm
#
# The binary is stamped like the upstream Makefile does: its own version, and the
# Kubernetes version of the client-go it links (Helm otherwise assumes 1.20 for
# `helm template` and `helm lint` without a cluster).
#
# Warm cache: a no-op that takes milliseconds (go is not even invoked).
# Cold: a few minutes on 2 cores (see the figure printed at the end).
#
# Progress goes to stderr; the LAST line on stdout is the binary's path, e.g.
#   HELM=$(scripts/build-helm.sh | tail -n1)
set -euo pipefail

# shellcheck source=scripts/lib/go-tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tools.sh"
MOD=$(go_module test/controlplane/helm)
HELM_VERSION=$(modver "$MOD/go.mod" helm.sh/helm/v3)
CLIENT_GO_VERSION=$(modver "$MOD/go.mod" k8s.io/client-go)
[[ -n "$HELM_VERSION" && -n "$CLIENT_GO_VERSION" ]] ||
  die "could not read the helm and client-go versions from $MOD/go.mod"

# client-go v0.X.Y is Kubernetes 1.X.
K8S_MINOR=${CLIENT_GO_VERSION#v0.}
K8S_MINOR=${K8S_MINOR%%.*}
[[ "$K8S_MINOR" =~ ^[0-9]+$ ]] || die "unexpected client-go version $CLIENT_GO_VERSION"

OUT="$CACHE_ROOT/helm/$HELM_VERSION"
BIN="$OUT/helm"
STAMP="helm.sh/helm/v3@$HELM_VERSION k8s=1.$K8S_MINOR"

have() { [[ -x "$BIN" ]] && stamped helm "$STAMP"; }

enter_build "$OUT" "$BIN" have

use_go
log "Go: $(go version); helm $HELM_VERSION (client-go $CLIENT_GO_VERSION: Kubernetes 1.$K8S_MINOR)"

LDFLAGS="-s -w"
LDFLAGS+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$K8S_MINOR"
done

go_build helm "$STAMP" "$MOD" "$LDFLAGS" helm.sh/helm/v3/cmd/helm
log "helm version: $("$BIN" version --short 2>/dev/null || true)"
echo "$BIN"
