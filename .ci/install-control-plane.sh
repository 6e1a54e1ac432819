#!/usr/bin/env bash
# Builds and caches a real Kubernetes control plane for the test suites: etcd, kube-apiserver and
# kubectl at pinned versions, from the Go module proxy only. Each binary is skipped when its pinned
# version is already in the cache, so a warm run is instant.
#
# Neither project can be built with `go install pkg@version`: both main modules carry replace
# directives (etcd for its sibling modules, Kubernetes for its 30-odd staging modules), which
# `go install` refuses. So each is built from a throwaway module that requires the real one and
# repeats those replaces against published versions:
#   - etcd:       go.etcd.io/etcd/{api,client/pkg,client,pkg}/v3 pinned to the server's version;
#   - Kubernetes: every k8s.io/<staging> replace of k8s.io/kubernetes's own go.mod, pointed at the
#                 published k8s.io/<staging> v0.<minor>.<patch> (read from that go.mod, not listed
#                 here; sample-* modules are not published and not needed).
# The -X ldflags are those of Kubernetes' hack/lib/version.sh; without them the binaries report
# v0.0.0-master and kubectl warns about version skew.
#
#   bash .ci/install-control-plane.sh              # everything
#   bash .ci/install-control-plane.sh --print-dir  # print the cache's bin dir and exit
#   PINGFLEET_TOOLS_DIR=/some/dir bash ...         # another cache (default ~/.cache/pingfleet-tools)
#
# Cold on 2 cores: kube-apiserver about 7 minutes (peak ~2.4 GB), etcd under a minute, kubectl ~30 s.
set -euo pipefail

ETCD_VERSION=v3.6.16
KUBERNETES_VERSION=v1.37.2

CI_NAME=install-control-plane
# shellcheck source=.ci/lib.sh
source "$(dirname "$0")/lib.sh"
if [[ "${1:-}" == "--print-dir" ]]; then echo "$BIN_DIR"; exit 0; fi
setup_go

# Throwaway module dirs live under one scratch dir, removed on exit.
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/pingfleet-build.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
scratch() { mktemp -d "$SCRATCH/module.XXXXXX"; }

install_etcd() {
  local out="$BIN_DIR/etcd"
  if stamped "$out" "$ETCD_VERSION"; then log "etcd $ETCD_VERSION already built"; return; fi
  log "building etcd $ETCD_VERSION"
  local dir m
  dir="$(scratch)"
  {
    echo "module pingfleet.test/etcd-build"
    echo "go 1.24"
    echo "replace ("
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do echo "  go.etcd.io/etcd/$m => go.etcd.io/etcd/$m $ETCD_VERSION"; done
    echo ")"
  } > "$dir/go.mod"
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 &&
    go build -trimpath -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3) || die "etcd build failed"
  mv "$out.tmp" "$out"
  stamp "$out" "$ETCD_VERSION"
}

install_kubernetes() {
  local want="$KUBERNETES_VERSION" cmd missing=()
  for cmd in kube-apiserver kubectl; do stamped "$BIN_DIR/$cmd" "$want" || missing+=("$cmd"); done
  if (( ${#missing[@]} == 0 )); then log "kube-apiserver and kubectl $want already built"; return; fi
  log "building ${missing[*]} $want (kube-apiserver takes about 7 minutes on a cold cache)"
  local dir src staging_version ldflags pkg
  dir="$(scratch)"
  src="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$want" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$src" ]] || die "cannot download k8s.io/kubernetes@$want"
  staging_version="v0.${want#v1.}"
  {
    echo "module pingfleet.test/kubernetes-build"
    sed -n 's/^go \(.*\)$/go \1/p' "$src" | head -1
    echo "replace ("
    # Staging replaces look like `k8s.io/api => ./staging/src/k8s.io/api`.
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*$#\1#p' "$src" |
      grep -v '^k8s.io/sample-' | while read -r m; do echo "  $m => $m $staging_version"; done
    echo ")"
  } > "$dir/go.mod"
  grep -q 'k8s.io/api => k8s.io/api' "$dir/go.mod" || die "no staging replaces found in $src: layout changed?"
  # hack/lib/version.sh's variables, for both packages that report a version.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$want -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(cut -d. -f2 <<<"$want")"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  # go get on the packages (not just the module) records go.sum entries for everything they import.
  local pkgs=()
  for cmd in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd@$want"); done
  (cd "$dir" && go get "${pkgs[@]}" >&2) || die "resolving k8s.io/kubernetes@$want failed"
  for cmd in "${missing[@]}"; do
    log "go build $cmd"
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") ||
      die "$cmd build failed"
    mv "$BIN_DIR/$cmd.tmp" "$BIN_DIR/$cmd"
    stamp "$BIN_DIR/$cmd" "$want"
  done
}

# The Prometheus Operator CRDs the chart's ServiceMonitor and PrometheusRule need, from the same
# prometheus-operator version whose schemas install-k8s-tools.sh generates (one pin, read from there).
install_crds() {
  local version dir="$TOOLS_DIR/crds" src crd
  version="$(sed -n 's/^PROMETHEUS_OPERATOR_VERSION=\(.*\)$/\1/p' "$(dirname "$0")/install-k8s-tools.sh")"
  [[ -n "$version" ]] || die "PROMETHEUS_OPERATOR_VERSION not found in install-k8s-tools.sh"
  if stamped "$dir/servicemonitors.yaml" "$version"; then log "prometheus-operator $version CRDs already copied"; return; fi
  src="$(cd "$SCRATCH" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "$src" ]] || die "cannot download prometheus-operator $version"
  mkdir -p "$dir"
  for crd in servicemonitors podmonitors prometheusrules; do
    install -m 0644 "$src/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" "$dir/$crd.yaml"
  done
  stamp "$dir/servicemonitors.yaml" "$version"
}

install_etcd
install_kubernetes
install_crds
log "ready in $BIN_DIR: $("$BIN_DIR/etcd" --version | head -1); $("$BIN_DIR/kube-apiserver" --version); kubectl $("$BIN_DIR/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -1)"
