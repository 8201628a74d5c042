// The Prometheus operator, pinned: scripts/build-controlplane.sh copies its monitoring.coreos.com
// CRDs (example/prometheus-operator-crd: PodMonitor, ServiceMonitor, ...) from this module, so
// the PodMonitor the operator renders is dry-run against the real CRD. v0.88.0 is the newest
// version the module proxy served here (v0.95.x answered 403).
module mistralsmall.dev/controlplane/prometheus

go 1.26

require github.com/prometheus-operator/prometheus-operator v0.88.0
