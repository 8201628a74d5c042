//go:build tools

// Package tools records the Pulumi CLI, built by infra/scripts/build-pulumi.sh,
// so `go mod tidy` keeps its dependencies.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
