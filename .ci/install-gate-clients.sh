#!/usr/bin/env bash
# Builds the gate-client harnesses of test/gate-clients/ (the real Argo Rollouts web metric provider
# and Flagger's CallWebhook, see each main.go) into the tool cache. Each is rebuilt only when its
# sources change (the stamp is a hash of main.go, go.mod and go.sum), so a warm run is instant.
# argo-rollouts v1.10.2 requires Go 1.26.10: GOTOOLCHAIN fetches it from the Go module proxy.
#
#   bash .ci/install-gate-clients.sh              # both
#   bash .ci/install-gate-clients.sh --print-dir  # print the cache's bin dir and exit
set -euo pipefail
cd "$(dirname "$0")/.."

CI_NAME=install-gate-clients
# shellcheck source=.ci/lib.sh
source .ci/lib.sh
if [[ "${1:-}" == "--print-dir" ]]; then echo "$BIN_DIR"; exit 0; fi
setup_go

build() {
  local name="$1" toolchain="$2" dir="test/gate-clients/$1" out="$BIN_DIR/$1-harness" hash
  hash="$(cat "$dir/main.go" "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)"
  if stamped "$out" "$hash"; then log "$name harness up to date"; return; fi
  log "building the $name harness (a few minutes on a cold cache)"
  (cd "$dir" && GOTOOLCHAIN="$toolchain" go build -trimpath -ldflags "-s -w" -o "$out.tmp" .)
  mv "$out.tmp" "$out"
  stamp "$out" "$hash"
}

build argo go1.26.10
build flagger local
