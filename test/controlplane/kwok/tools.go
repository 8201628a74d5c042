//go:build tools

// Package tools records sigs.k8s.io/kwok/cmd/kwok, built by
// scripts/build-controlplane.sh, so `go mod tidy` keeps its dependencies.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
