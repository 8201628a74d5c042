#!/usr/bin/env bash
# Build (once) the real Kubernetes control plane used by the integration tests:
#   etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
#   karpenter-crds/*.yaml prometheus-crds/*.yaml kwok-stages.yaml
# from the Go modules pinned in test/controlplane/ (no Docker, no downloads
# other than the Go module proxy), into a cache folder keyed by version:
#   ${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}/controlplane/<k8s version>/
#
# Warm cache: a no-op that takes milliseconds (go is not even invoked).
# Cold (measured on 2 cores): ~16.5 minutes; ~405 MB of outputs, plus 1.3 GB
# in $(go env GOMODCACHE) and 3.6 GB in $(go env GOCACHE).
# If KUBEBUILDER_ASSETS points at a folder holding some of the binaries
# (the envtest convention), those are symlinked instead of built.
#
# Progress goes to stderr; the LAST line on stdout is the cache folder, e.g.
#   CP_DIR=$(scripts/build-controlplane.sh | tail -n1)
set -euo pipefail

# shellcheck source=scripts/lib/go-tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tools.sh"
MOD=$(go_module test/controlplane)
K8S_VERSION=$(modver "$MOD/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(modver "$MOD/go.mod" go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(modver "$MOD/kwok/go.mod" sigs.k8s.io/kwok)
KARPENTER_VERSION=$(modver "$MOD/karpenter/go.mod" sigs.k8s.io/karpenter)
PROMETHEUS_VERSION=$(modver "$MOD/prometheus/go.mod" github.com/prometheus-operator/prometheus-operator)
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$KWOK_VERSION" && -n "$KARPENTER_VERSION" && -n "$PROMETHEUS_VERSION" ]] ||
  die "could not read pinned versions from test/controlplane/*/go.mod"

OUT="$CACHE_ROOT/controlplane/$K8S_VERSION"

# name|stamp|module dir|package (stamp = what the cached output was built from)
TARGETS=(
  "etcd|go.etcd.io/etcd/server/v3@$ETCD_VERSION|$MOD|go.etcd.io/etcd/server/v3"
  "kube-apiserver|k8s.io/kubernetes@$K8S_VERSION|$MOD|k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager|k8s.io/kubernetes@$K8S_VERSION|$MOD|k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler|k8s.io/kubernetes@$K8S_VERSION|$MOD|k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl|k8s.io/kubectl@$K8S_VERSION|$MOD|./cmd/kubectl"
  "kwok|sigs.k8s.io/kwok@$KWOK_VERSION|$MOD/kwok|sigs.k8s.io/kwok/cmd/kwok"
)
KWOK_STAGES_STAMP="sigs.k8s.io/kwok@$KWOK_VERSION"
CRDS_STAMP="sigs.k8s.io/karpenter@$KARPENTER_VERSION"
PROMETHEUS_CRDS_STAMP="github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_VERSION"

# Stamp a binary should carry: its module version, or where it was linked from.
want_stamp() { # name stamp
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" ]]; then
    echo "KUBEBUILDER_ASSETS:$(cd "$KUBEBUILDER_ASSETS" && pwd)/$1"
  else
    echo "$2"
  fi
}
have() { stamped "$@"; } # output stamp: output exists and was built from the same thing

all_warm() {
  local t name stamp
  for t in "${TARGETS[@]}"; do
    IFS='|' read -r name stamp _ _ <<<"$t"
    have "$name" "$(want_stamp "$name" "$stamp")" || return 1
  done
  have kwok-stages.yaml "$KWOK_STAGES_STAMP" && have karpenter-crds "$CRDS_STAMP" &&
    have prometheus-crds "$PROMETHEUS_CRDS_STAMP"
}

enter_build "$OUT" "$OUT" all_warm

use_go
log "Go: $(go version); Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, karpenter $KARPENTER_VERSION"
log "cache folder: $OUT"

# Version stamping: clients (kubectl, client-go discovery) read these.
K8S_MAJOR=${K8S_VERSION#v}; K8S_MAJOR=${K8S_MAJOR%%.*}
K8S_MINOR=${K8S_VERSION#v*.}; K8S_MINOR=${K8S_MINOR%%.*}
# buildDate: the release's publication time from the module proxy (reproducible).
K8S_INFO=$(cd "$MOD" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p')
BUILD_DATE=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$K8S_INFO" 2>/dev/null || true)
BUILD_DATE=${BUILD_DATE:-1970-01-01T00:00:00Z}
K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR -X $pkg.gitMinor=$K8S_MINOR"
  K8S_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE -X $pkg.gitCommit="  # commit unknown from a module zip
done

TOTAL_START=$SECONDS
for t in "${TARGETS[@]}"; do
  IFS='|' read -r name stamp dir pkg <<<"$t"
  want=$(want_stamp "$name" "$stamp")
  if have "$name" "$want"; then
    log "$name: cached"
    continue
  fi
  if [[ "$want" == KUBEBUILDER_ASSETS:* ]]; then
    src=${want#KUBEBUILDER_ASSETS:}
    log "$name: using $src from KUBEBUILDER_ASSETS (not built)"
    ln -sfn "$src" "$OUT/.$name.tmp.$$"
    mv -fT "$OUT/.$name.tmp.$$" "$OUT/$name"
    install_stamp "$name" "$want"
    continue
  fi
  case "$name" in
    kube-*|kubectl)
      ldflags=$K8S_LDFLAGS
      if [[ -z "${K8S_BUILT_ONE:-}" ]]; then
        hint="cold build: this can take 10-20 minutes on 2 cores"
      else
        hint="reuses the Go build cache: about 1-4 minutes"
      fi
      K8S_BUILT_ONE=1 ;;
    *) ldflags="-s -w"; hint="cold build: a few minutes" ;;
  esac
  go_build "$name" "$stamp" "$dir" "$ldflags" "$pkg" "$hint"
done

# KWOK >= v0.8 starts no stage by itself: assemble the "fast" set
# (kustomize/stage/fast = node/fast + node/heartbeat-with-lease + pod/fast) from the module.
if ! have kwok-stages.yaml "$KWOK_STAGES_STAMP"; then
  kdir=$(module_dir "$MOD/kwok" "sigs.k8s.io/kwok@$KWOK_VERSION")
  [[ -d "$kdir/kustomize/stage" ]] || die "kwok module has no kustomize/stage (dir: '$kdir')"
  tmp="$OUT/.kwok-stages.yaml.tmp.$$"
  TMPS+=("$tmp")
  {
    echo "# KWOK $KWOK_VERSION stages node-initialize, node-heartbeat-with-lease, pod-ready,"
    echo "# pod-complete, pod-delete, copied from sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage."
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [[ -f "$kdir/kustomize/stage/$f" ]] || die "missing $f in $kdir/kustomize/stage"
      echo "---"
      sed -e '/^---[[:space:]]*$/d' "$kdir/kustomize/stage/$f"
    done
  } >"$tmp"
  mv -f "$tmp" "$OUT/kwok-stages.yaml"
  install_stamp kwok-stages.yaml "$KWOK_STAGES_STAMP"
  log "wrote kwok-stages.yaml"
fi

# Karpenter CRDs (karpenter.sh/v1 NodePool, NodeClaim, v1alpha1 NodeOverlay, ...).
copy_crds karpenter-crds "$CRDS_STAMP" "$MOD/karpenter" "sigs.k8s.io/karpenter@$KARPENTER_VERSION" \
  pkg/apis/crds 'karpenter.sh_nodepools.yaml' '*.yaml'

# Prometheus operator CRDs (monitoring.coreos.com/v1 PodMonitor, ServiceMonitor).
copy_crds prometheus-crds "$PROMETHEUS_CRDS_STAMP" "$MOD/prometheus" \
  "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_VERSION" \
  example/prometheus-operator-crd monitoring.coreos.com_podmonitors.yaml \
  monitoring.coreos.com_servicemonitors.yaml

log "done in $((SECONDS - TOTAL_START))s: $OUT ($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
