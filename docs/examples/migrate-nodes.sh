#!/usr/bin/env bash
# Node-by-node CNI migration, gated by pingfleet: for each batch of nodes not yet on the new CNI,
# cordon, drain, relabel, restart, then wait for the gate before the next batch. A gate that does
# not pass within GATE_WAIT stops the migration with the batch still cordoned, for a human to look.
#
#   AGGREGATOR=http://127.0.0.1:8080 BATCH_SIZE=2 ./migrate-nodes.sh
#
# Exit codes of `pingfleet gate`: 0 pass, 1 fail, 2 insufficient data or timed out, 3 no answer.
set -euo pipefail

AGGREGATOR=${AGGREGATOR:-http://pingfleet-aggregator.pingfleet.svc:8080}
GATE=${GATE:-cilium-batch}
LABEL=${LABEL:-cniplugin}
TO=${TO:-cilium}
BATCH_SIZE=${BATCH_SIZE:-1}
GATE_WAIT=${GATE_WAIT:-10m}
GATE_INTERVAL=${GATE_INTERVAL:-15s}
PINGFLEET=${PINGFLEET:-pingfleet}

# Restarting a node onto the new CNI is site specific (reboot, replace the instance, restart the
# CNI agent); override restart_node by setting RESTART_CMD, which gets the node name as $1.
restart_node() {
  if [[ -n "${RESTART_CMD:-}" ]]; then
    $RESTART_CMD "$1"
  else
    # Recreate the pods left on the node (DaemonSets, the pingfleet agent among them) so they come
    # back on the new CNI and the agent says hello with the new label.
    kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$1" --wait=false
  fi
}

# Before touching anything: the fleet must be healthy as it is.
"$PINGFLEET" gate "$GATE" --url "$AGGREGATOR" --wait "$GATE_WAIT" --interval "$GATE_INTERVAL"

mapfile -t nodes < <(kubectl get nodes -l "$LABEL!=$TO" -o name)
echo "migrating ${#nodes[@]} nodes to $LABEL=$TO in batches of $BATCH_SIZE"

for ((i = 0; i < ${#nodes[@]}; i += BATCH_SIZE)); do
  batch=("${nodes[@]:i:BATCH_SIZE}")
  echo "batch $((i / BATCH_SIZE + 1)): ${batch[*]}"
  for node in "${batch[@]}"; do
    kubectl cordon "$node"
    kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout=10m
    kubectl label --overwrite "$node" "$LABEL=$TO"
    restart_node "${node#node/}"
  done
  status=0
  "$PINGFLEET" gate "$GATE" --url "$AGGREGATOR" --wait "$GATE_WAIT" --interval "$GATE_INTERVAL" || status=$?
  if ((status != 0)); then
    echo "gate $GATE did not pass (exit $status) after batch ${batch[*]}; stopping with the batch cordoned" >&2
    exit "$status"
  fi
  for node in "${batch[@]}"; do kubectl uncordon "$node"; done
done
echo "all nodes are on $LABEL=$TO and gate $GATE passes"
