# Shared by the scripts that build Go tools into the cache (sourced, not run).
# Set LOG_PREFIX before sourcing.

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Version of module $2 required by go.mod $1 (read with awk: fast, no go call).
# Handles both the one-line `require X v` form and require blocks.
modver() {
  awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 }
    $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}

# Where every built tool lives, keyed by tool and version below it; never inside the repo.
CACHE_ROOT="${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}"
