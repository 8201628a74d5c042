// Karpenter is not built: scripts/build-controlplane.sh only copies its
// karpenter.sh/v1 CRD YAML (pkg/apis/crds) from the downloaded module.
// v1.14.1 is the newest release whose go directive (1.26.6) the local Go 1.26.8 accepts.
// Do not run `go mod tidy` here: with no imports it would drop the requirement.
module mistralsmall.dev/controlplane/karpenter

go 1.26.0

require sigs.k8s.io/karpenter v1.14.1
