# Shared by the scripts that build Go tools into the cache (sourced, not run): the header they
# all start with, the cache check and lock, the stamps, the go build and the CRD copy.

# The repository (this file is scripts/lib/go-tools.sh).
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Log lines say which script wrote them: the name of the one that sourced this file.
LOG_PREFIX=${LOG_PREFIX:-$(basename "${BASH_SOURCE[1]}" .sh)}

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Version of module $2 required by go.mod $1 (read with awk: fast, no go call).
# Handles both the one-line `require X v` form and require blocks.
modver() {
  awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 }
    $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}

# go_module DIR: prints $REPO_ROOT/DIR, the folder of a pinned Go module; dies without its go.mod.
go_module() {
  [[ -f "$REPO_ROOT/$1/go.mod" ]] || die "missing $REPO_ROOT/$1/go.mod"
  echo "$REPO_ROOT/$1"
}

# Where every built tool lives, keyed by tool and version below it; never inside the repo.
CACHE_ROOT="${MSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mistral-small-operator}"

# Takes the cache folder $1's lock for the rest of the script: one builder per folder (parallel
# test runs share it). Callers check their stamps again afterwards: the builder they waited
# for may have built everything.
lock_cache() {
  mkdir -p "$1"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1/.lock"
  flock -n 9 && return 0
  log "another build is running on $1; waiting for it..."
  flock 9
}

# Paths added to TMPS are removed on exit; INT/TERM first kill the build in BUILD_PID.
TMPS=()
BUILD_PID=
cleanup_tmps() { local f; for f in "${TMPS[@]+"${TMPS[@]}"}"; do rm -rf -- "$f"; done; }
on_signal() { [[ -n "$BUILD_PID" ]] && kill "$BUILD_PID" 2>/dev/null; exit "$1"; }
trap_build_exits() {
  trap cleanup_tmps EXIT
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM
}

# The cache check every build script starts with: prints $2 (what the caller hands back) and
# exits when the check command $3 says the cache is warm, before or after taking $1's lock;
# otherwise returns holding the lock with the exit traps set and old temporaries of $1 removed.
enter_build() {
  local out=$1 result=$2 warm=$3
  if [[ -d "$out" ]] && "$warm"; then
    log "cache warm: $result"
    echo "$result"
    exit 0
  fi
  lock_cache "$out"
  if "$warm"; then
    log "built by another process: $result"
    echo "$result"
    exit 0
  fi
  trap_build_exits
  # Leftovers of an interrupted build (we hold the lock, so nobody else is writing).
  rm -rf -- "$out"/.*.tmp.* 2>/dev/null || true
}

# The local Go toolchain, for static binaries from modules.
use_go() {
  command -v go >/dev/null 2>&1 || die "go not found on PATH (need Go >= 1.26; /usr/local/go/bin?)"
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
}

# The stamps below live beside the outputs in the caller's cache folder $OUT: .stamp.NAME holds
# what NAME was built from. stamped NAME STAMP: $OUT/NAME exists and was built from STAMP.
stamped() {
  [[ -e "$OUT/$1" && -f "$OUT/.stamp.$1" && "$(<"$OUT/.stamp.$1")" == "$2" ]]
}

# Writes NAME's stamp STAMP, after the output is in place (atomically: a rename).
install_stamp() {
  printf '%s\n' "$2" >"$OUT/.stamp.$1.tmp.$$"
  mv -f "$OUT/.stamp.$1.tmp.$$" "$OUT/.stamp.$1"
}

# go_build NAME STAMP DIR LDFLAGS PACKAGE [HINT]: builds PACKAGE (from the module in DIR) into
# $OUT/NAME through a temporary file, then stamps it. Logs the start (HINT: how long it may take)
# and then the time taken and the size. In the background + wait, so that a TERM/INT is handled
# at once (see on_signal).
go_build() {
  local name=$1 stamp=$2 dir=$3 ldflags=$4 pkg=$5 hint=${6:-cold build: a few minutes on 2 cores}
  local tmp="$OUT/.$name.tmp.$$" start=$SECONDS
  log "building $name from $stamp ($hint)..."
  TMPS+=("$tmp")
  (cd "$dir" && exec go build -trimpath -ldflags="$ldflags" -o "$tmp" "$pkg") &
  BUILD_PID=$!
  wait "$BUILD_PID" || die "go build of $name ($pkg) failed"
  BUILD_PID=
  mv -f "$tmp" "$OUT/$name"
  install_stamp "$name" "$stamp"
  log "built $name in $((SECONDS - start))s ($(du -h "$OUT/$name" | cut -f1))"
}

# module_dir DIR MODULE@VERSION: where the module cache holds MODULE@VERSION as resolved from
# the module in DIR (downloads it if needed).
module_dir() {
  (cd "$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
}

# copy_crds NAME STAMP DIR MODULE@VERSION FOLDER GLOB...: copies the YAML files matching each GLOB
# in FOLDER of MODULE@VERSION (as resolved from the module in DIR) into the folder $OUT/NAME,
# atomically, then stamps it; a no-op when NAME is already stamped STAMP.
copy_crds() {
  local name=$1 stamp=$2 from=$3 module=$4 folder=$5
  shift 5
  stamped "$name" "$stamp" && return 0
  local dir tmp g
  dir="$(module_dir "$from" "$module")/$folder"
  tmp="$OUT/.$name.tmp.$$"
  TMPS+=("$tmp")
  mkdir -p "$tmp"
  for g in "$@"; do
    # shellcheck disable=SC2086 # $g is a glob on purpose
    compgen -G "$dir/$g" >/dev/null || die "$module has no $folder/$g (dir: '$dir')"
    # shellcheck disable=SC2086
    cp "$dir"/$g "$tmp/"
  done
  chmod u+w "$tmp"/*.yaml # the module cache is read-only
  rm -rf "${OUT:?}/$name"
  mv -f "$tmp" "$OUT/$name"
  install_stamp "$name" "$stamp"
  log "copied $name: $(cd "$OUT/$name" && echo *.yaml)"
}
