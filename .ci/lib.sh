# Shared by the .ci/install-*.sh scripts (sourced, not run): where the tool cache lives, the Go
# environment every build uses, logging, and the version stamps that make a warm run instant.
# The sourcing script sets CI_NAME (its log prefix) first.
#   PINGFLEET_TOOLS_DIR=/some/dir bash .ci/install-....sh   # another cache (default ~/.cache/pingfleet-tools)

TOOLS_DIR="${PINGFLEET_TOOLS_DIR:-$HOME/.cache/pingfleet-tools}"
BIN_DIR="$TOOLS_DIR/bin"

log() { printf '%s: %s\n' "$CI_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The Go toolchain at /usr/local/go, builds without VCS stamping, static binaries; and the cache's bin dir.
setup_go() {
  export PATH="/usr/local/go/bin:$PATH"
  export GOFLAGS="${GOFLAGS:--buildvcs=false}"
  export CGO_ENABLED=0
  command -v go >/dev/null || die "go not found (expected at /usr/local/go/bin/go)"
  mkdir -p "$BIN_DIR"
}

# A stamp file (<path>.version) records the pinned version, or the source hash, a cached piece was made from.
stamped() { [[ -e "$1" && "$(cat "$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$1.version"; }
