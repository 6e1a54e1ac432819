#!/usr/bin/env bash
# Installs the pinned Kubernetes tooling that test/deploy needs into a cache dir, using nothing but
# the Go module proxy (and python3 with PyYAML, which Debian ships as python3-yaml):
#   - helm and kubeconform, built with `go install`;
#   - kubeconform's JSON schemas, generated offline (kubeconform cannot download them here):
#       Kubernetes: from the OpenAPI spec vendored in the k8s.io/kubernetes module
#                   (api/openapi-spec/swagger.json), converted to kubeconform's
#                   "standalone-strict" layout by to_standalone_strict below;
#       CRDs:       ServiceMonitor, PodMonitor, PrometheusRule from the prometheus-operator module
#                   (example/prometheus-operator-crd/*.yaml), converted by kubeconform's own
#                   scripts/openapi2jsonschema.py.
# Every piece is skipped when its pinned version is already in the cache, so a warm run is instant.
#
#   bash .ci/install-k8s-tools.sh                # everything
#   bash .ci/install-k8s-tools.sh --print-dir    # print the cache dir and exit
#   PINGFLEET_TOOLS_DIR=/some/dir bash ...       # another cache (default ~/.cache/pingfleet-tools)
#
# Layout (test/deploy reads it):
#   $DIR/bin/helm, $DIR/bin/kubeconform
#   $DIR/schemas/kubernetes/v<version>-standalone-strict/<kind>[-<group>]-<version>.json
#   $DIR/schemas/crds/<group>/<kind>_<version>.json
set -euo pipefail

HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.8.0
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest we test against.
KUBERNETES_VERSIONS="1.30.14 1.36.3"
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# Bump when the schema conversion below changes, so cached schemas are regenerated.
SCHEMA_CONVERTER_REVISION=1

CI_NAME=install-k8s-tools
# shellcheck source=.ci/lib.sh
source "$(dirname "$0")/lib.sh"
SCHEMA_DIR="$TOOLS_DIR/schemas"

if [[ "${1:-}" == "--print-dir" ]]; then echo "$TOOLS_DIR"; exit 0; fi
setup_go

# Prints the directory of a module's source in the module cache, downloading it if needed.
module_dir() {
  local json
  # From the cache dir, so that no go.mod around the working directory is consulted.
  json="$(cd "$TOOLS_DIR" && go mod download -json "$1")" || die "go mod download $1 failed: $json"
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}

install_helm() {
  if stamped "$BIN_DIR/helm" "$HELM_VERSION"; then log "helm $HELM_VERSION already installed"; return; fi
  log "building helm $HELM_VERSION (takes a few minutes on a cold cache)"
  # The same ldflags as Helm's Makefile: the version, and the Kubernetes version its capabilities
  # and deprecation checks default to (that of the client-go it is built with).
  local kube_minor
  kube_minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' \
    "$(module_dir "helm.sh/helm/v3@$HELM_VERSION")/go.mod")"
  [[ -n "$kube_minor" ]] || die "cannot read helm's client-go version"
  GOBIN="$BIN_DIR" go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  stamp "$BIN_DIR/helm" "$HELM_VERSION"
}

install_kubeconform() {
  if stamped "$BIN_DIR/kubeconform" "$KUBECONFORM_VERSION"; then
    log "kubeconform $KUBECONFORM_VERSION already installed"; return
  fi
  log "building kubeconform $KUBECONFORM_VERSION"
  GOBIN="$BIN_DIR" go install -trimpath -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  stamp "$BIN_DIR/kubeconform" "$KUBECONFORM_VERSION"
}

need_pyyaml() {
  python3 -c 'import yaml' 2>/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing python3-yaml (PyYAML) for kubeconform's CRD converter"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-yaml >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-yaml >/dev/null; }
  fi
  python3 -c 'import yaml' 2>/dev/null || die "python3 with PyYAML is needed (apt-get install python3-yaml)"
}

# Converts the Swagger 2.0 definitions of one Kubernetes version into one self-contained schema per
# kind, named as kubeconform looks them up ({{.ResourceKind}}{{.KindSuffix}}.json). It follows
# instrumenta/openapi2jsonschema (--kubernetes --stand-alone --strict), which generated the schemas
# kubeconform downloads by default: refs inlined, int-or-string as string|integer, apiVersion and
# kind pinned by enum, and additionalProperties: false on every object that lists its properties.
# Differences: the recursion in CRDs' JSONSchemaProps is cut with a permissive {} instead of
# skipping the CRD kind, Quantity accepts numbers as the API server does, and optional fields do
# not accept null (helm never renders one for us; the check is stricter, not looser).
to_standalone_strict() {
  python3 - "$1" "$2" <<'PY'
import copy, json, os, sys

swagger, out = sys.argv[1], sys.argv[2]
defs = json.load(open(swagger))["definitions"]
PREFIX = "#/definitions/"

def resolve(schema, stack):
    if isinstance(schema, list):
        return [resolve(x, stack) for x in schema]
    if not isinstance(schema, dict):
        return schema
    if isinstance(schema.get("$ref"), str):
        name = schema["$ref"][len(PREFIX):]
        if name in stack:  # recursive type (only JSONSchemaProps): accept anything below here
            return {}
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            return {"oneOf": [{"type": "string"}, {"type": "number"}]}
        target = copy.deepcopy(defs[name])
        target.pop("x-kubernetes-group-version-kind", None)
        return resolve(target, stack | {name})
    if schema.get("format") == "int-or-string":
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    return {k: resolve(v, stack) for k, v in schema.items()}

def strict(schema):
    """additionalProperties: false wherever properties are listed, walking schema positions only
    (a property may itself be called "properties")."""
    if not isinstance(schema, dict):
        return
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            strict(sub)
    if isinstance(schema.get("additionalProperties"), dict):
        strict(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        strict(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            strict(sub)

os.makedirs(out, exist_ok=True)
written = 0
for name, definition in defs.items():
    gvks = definition.get("x-kubernetes-group-version-kind", [])
    if len(gvks) != 1:  # shared option types such as DeleteOptions are not resources
        continue
    gvk = gvks[0]
    group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
    schema = resolve({"$ref": PREFIX + name}, frozenset())
    props = schema.get("properties", {})
    if "apiVersion" in props:
        props["apiVersion"]["enum"] = [f"{group}/{version}" if group else version]
    if "kind" in props:
        props["kind"]["enum"] = [kind]
    strict(schema)
    suffix = (f"-{group.split('.')[0]}" if group else "") + f"-{version}"
    with open(os.path.join(out, f"{kind}{suffix}".lower() + ".json"), "w") as f:
        json.dump(schema, f, indent=1)
    written += 1
if written < 50:
    sys.exit(f"only {written} schemas generated from {swagger}: layout changed?")
print(f"{written} schemas in {out}")
PY
}

install_kubernetes_schemas() {
  local v dir src
  for v in $KUBERNETES_VERSIONS; do
    dir="$SCHEMA_DIR/kubernetes/v$v-standalone-strict"
    if stamped "$dir" "v$v rev$SCHEMA_CONVERTER_REVISION"; then log "Kubernetes v$v schemas already generated"; continue; fi
    log "generating Kubernetes v$v schemas from k8s.io/kubernetes@v$v"
    src="$(module_dir "k8s.io/kubernetes@v$v")/api/openapi-spec/swagger.json"
    [[ -f "$src" ]] || die "$src not found"
    rm -rf "$dir" "$dir.tmp"
    to_standalone_strict "$src" "$dir.tmp" >&2
    mv "$dir.tmp" "$dir"
    stamp "$dir" "v$v rev$SCHEMA_CONVERTER_REVISION"
  done
}

install_crd_schemas() {
  local dir="$SCHEMA_DIR/crds/monitoring.coreos.com" po kc crd
  local want="prometheus-operator $PROMETHEUS_OPERATOR_VERSION kubeconform $KUBECONFORM_VERSION"
  if stamped "$dir" "$want"; then log "monitoring.coreos.com CRD schemas already generated"; return; fi
  log "generating monitoring.coreos.com schemas from prometheus-operator $PROMETHEUS_OPERATOR_VERSION"
  need_pyyaml
  po="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
  kc="$(module_dir "github.com/yannh/kubeconform@$KUBECONFORM_VERSION")"
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
  for crd in servicemonitors podmonitors prometheusrules; do
    # The converter writes {kind}_{version}.json into the working directory.
    (cd "$dir.tmp" && FILENAME_FORMAT='{kind}_{version}' DENY_ROOT_ADDITIONAL_PROPERTIES=1 \
      python3 "$kc/scripts/openapi2jsonschema.py" \
      "$po/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" >&2)
  done
  mv "$dir.tmp" "$dir"
  stamp "$dir" "$want"
}

main() {
  case "${1:-all}" in
    all) install_kubeconform; install_kubernetes_schemas; install_crd_schemas; install_helm ;;
    helm) install_helm ;;
    kubeconform) install_kubeconform ;;
    schemas) install_kubernetes_schemas; install_crd_schemas ;;
    *) echo "usage: $0 [all|helm|kubeconform|schemas|--print-dir]" >&2; exit 2 ;;
  esac
  log "ready in $TOOLS_DIR"
}

# On one line, so bash has read all of it before it starts: editing the script while a run builds
# helm cannot derail that run.
main "$@"; exit $?
