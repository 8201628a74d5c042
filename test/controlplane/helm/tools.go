//go:build tools

// Package tools records helm.sh/helm/v3/cmd/helm, built by scripts/build-helm.sh,
// so `go mod tidy` keeps its dependencies.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
