#!/usr/bin/env bash
# Build (once) what a real `pulumi up` against the local control plane needs, from Go
# modules only (no downloads but the Go module proxy), into a cache folder keyed by version:
#   ${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}/pulumi/<cli>-k8s<provider>/
#     pulumi                        the CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
#     pulumi-resource-kubernetes    the Kubernetes provider, at the version of the npm
#                                   @pulumi/kubernetes in infra/package.json
#
# The Node.js language host (pulumi-language-nodejs) is NOT among them: the module proxy
# does not serve it (see infra/README.md). The local test therefore runs the program
# through the Automation API's inline programs, whose language host is @pulumi/pulumi itself.
#
# Progress goes to stderr; the LAST line on stdout is the cache folder.
set -euo pipefail

# shellcheck source=scripts/lib/go-tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/go-tools.sh"
INFRA="$REPO_ROOT/infra"
CLI_MOD=$(go_module infra/e2e/cli)
PROVIDER_MOD=$(go_module infra/e2e/provider)

CLI_VERSION=$(modver "$CLI_MOD/go.mod" github.com/pulumi/pulumi/pkg/v3)
PROVIDER_PSEUDO=$(modver "$PROVIDER_MOD/go.mod" github.com/pulumi/pulumi-kubernetes/provider/v4)
# The provider is only served as a pseudo-version: its release number is the npm SDK's.
PROVIDER_VERSION=$(sed -n 's/^ *"@pulumi\/kubernetes": *"\([0-9.]*\)".*/\1/p' "$INFRA/package.json")
[[ -n "$CLI_VERSION" && -n "$PROVIDER_PSEUDO" && -n "$PROVIDER_VERSION" ]] ||
  die "could not read the versions from infra/e2e/*/go.mod and infra/package.json"

OUT="$CACHE_ROOT/pulumi/$CLI_VERSION-k8s$PROVIDER_VERSION"
CLI_STAMP="github.com/pulumi/pulumi/pkg/v3@$CLI_VERSION"
PROVIDER_STAMP="github.com/pulumi/pulumi-kubernetes/provider/v4@$PROVIDER_PSEUDO=$PROVIDER_VERSION"

have() { [[ -x "$OUT/$1" ]] && stamped "$1" "$2"; }
warm() { have pulumi "$CLI_STAMP" && have pulumi-resource-kubernetes "$PROVIDER_STAMP"; }

enter_build "$OUT" "$OUT" warm
use_go

build() { # name stamp dir ldflags package
  if have "$1" "$2"; then log "$1: cached"; return; fi
  go_build "$@" "cold: 10-25 minutes on 2 cores"
}

build pulumi "$CLI_STAMP" "$CLI_MOD" \
  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$CLI_VERSION" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# The provider's main embeds files its own build generates: make them in a scratch copy
# of the wrapper module (schema.json with the version set, both minified).
if ! have pulumi-resource-kubernetes "$PROVIDER_STAMP"; then
  src=$(module_dir "$PROVIDER_MOD" "github.com/pulumi/pulumi-kubernetes/provider/v4@$PROVIDER_PSEUDO")
  cmd="$src/cmd/pulumi-resource-kubernetes"
  [[ -f "$cmd/schema.json" && -f "$cmd/terraform-mapping.json" ]] || die "no schema.json in $cmd"
  scratch=$(mktemp -d)
  TMPS+=("$scratch")
  cp "$PROVIDER_MOD/go.mod" "$PROVIDER_MOD/go.sum" "$PROVIDER_MOD/main.go" "$scratch/"
  node -e '
    const fs = require("fs");
    const [cmd, out, version] = process.argv.slice(1);
    const schema = JSON.parse(fs.readFileSync(cmd + "/schema.json", "utf8"));
    schema.version = version;
    fs.writeFileSync(out + "/schema-embed.json", JSON.stringify(schema));
    const mapping = JSON.parse(fs.readFileSync(cmd + "/terraform-mapping.json", "utf8"));
    fs.writeFileSync(out + "/terraform-mapping-embed.json", JSON.stringify(mapping));
  ' "$cmd" "$scratch" "$PROVIDER_VERSION"
  build pulumi-resource-kubernetes "$PROVIDER_STAMP" "$scratch" \
    "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PROVIDER_VERSION" \
    .
fi

log "done: $OUT"
echo "$OUT"
