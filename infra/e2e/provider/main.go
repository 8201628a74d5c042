// Command pulumi-resource-kubernetes: the provider's own main, which embeds a schema that
// its build generates (schema-embed.json is not in the module). build-pulumi.sh writes the
// two embedded files next to a copy of this file, outside the repository, then builds it.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
