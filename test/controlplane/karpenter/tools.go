//go:build tools

// Package tools records sigs.k8s.io/karpenter/kwok (Karpenter with its KWOK cloud provider),
// built by scripts/build-karpenter.sh, so `go mod tidy` keeps its dependencies.
package tools

import _ "sigs.k8s.io/karpenter/kwok"
