#!/usr/bin/env bash
# Node-by-node CNI migration, gated by pingfleet (docs/gates.md, "A node-by-node migration loop").
#
#   1. Before touching anything, the fleet must pass a baseline gate as it is (BASELINE_GATE).
#   2. Each batch of nodes not yet on the new CNI is cordoned, drained, relabelled to the new CNI
#      and labelled with its batch (BATCH_LABEL=<run>-<n>), and its pods are restarted.
#   3. The batch gate (GATE) is asked about exactly that batch: `pingfleet gate --selector
#      BATCH_LABEL=<run>-<n>`. Each node of the batch is judged on its own (a group ratio hides one
#      dead node among many), while it is still cordoned.
#   4. Only a batch that passes is uncordoned, and then loses its batch label. A gate that does not
#      pass within GATE_WAIT stops the migration with the batch still cordoned and labelled, for a
#      human to look at.
#
# One-node batches work: a group with one member is not required to probe itself, and a group the
# batch is the first member of does not need to exist before it.
#
# Resuming. A stopped (or interrupted) run leaves its batch cordoned and labelled BATCH_LABEL. A run
# that finds nodes with BATCH_LABEL refuses to start (exit 4) rather than leave them behind; once a
# human has looked at them, `--resume` (or RESUME=1) cordons and restarts exactly those nodes again,
# re-judges them with the batch gate (`pingfleet gate --nodes`), uncordons and unlabels them only if
# it passes, and then continues with the nodes not yet on the new CNI. Every step is idempotent
# (cordon, drain, label --overwrite, restart, uncordon), so a run killed anywhere can be resumed.
# Pass the stopped run's RUN and START_BATCH=<n+1> to keep its batch numbering; by default a resumed
# run is a new run.
#
#   AGGREGATOR=http://127.0.0.1:8080 BATCH_SIZE=2 ./migrate-nodes.sh
#   AGGREGATOR=http://127.0.0.1:8080 BATCH_SIZE=2 ./migrate-nodes.sh --resume
#
# Exit codes of `pingfleet gate`: 0 pass, 1 fail, 2 insufficient data or timed out, 3 no answer;
# this script adds 4: a stopped batch is still labelled and --resume was not given, or bad usage.
set -euo pipefail

RESUME=${RESUME:-0}
for arg in "$@"; do
  case "$arg" in
    --resume) RESUME=1 ;;
    *) echo "usage: $0 [--resume]" >&2; exit 4 ;;
  esac
done

AGGREGATOR=${AGGREGATOR:-http://pingfleet-aggregator.pingfleet.svc:8080}
BASELINE_GATE=${BASELINE_GATE:-baseline}
GATE=${GATE:-cilium-batch}
LABEL=${LABEL:-cniplugin}
TO=${TO:-cilium}
BATCH_LABEL=${BATCH_LABEL:-pingfleet.io/migration-batch}
# Batch label values are <RUN>-<n>, unique per run, so a selector never picks up an earlier run's nodes.
RUN=${RUN:-$(date -u +%Y%m%dt%H%M%S)}
BATCH_SIZE=${BATCH_SIZE:-1}
# The number of the first batch this run labels (RUN-START_BATCH, RUN-START_BATCH+1, ...).
START_BATCH=${START_BATCH:-1}
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

# Judged: uncordon the batch and drop its batch label. Idempotent, so a resumed run can repeat it.
release() {
  for node in "$@"; do
    kubectl uncordon "$node"
    # Done with this batch: it leaves the batch gate's own scope (every node with BATCH_LABEL), so
    # the gate the aggregator evaluates every interval watches only batches in flight or stopped.
    kubectl label "$node" "$BATCH_LABEL-"
  done
}

# A batch a previous run stopped with (or was killed in) still carries BATCH_LABEL and is cordoned.
# Never leave it behind silently: without --resume, stop; with it, re-judge exactly those nodes.
listed="$(kubectl get nodes -l "$BATCH_LABEL" -o name)"
mapfile -t pending <<<"$listed"
[[ -n "$listed" ]] || pending=()
if ((${#pending[@]} > 0)); then
  if [[ "$RESUME" != 1 ]]; then
    echo "nodes still labelled $BATCH_LABEL from a stopped run: ${pending[*]}; look at them, then rerun with --resume to re-judge them with gate $GATE (uncordoned only if it passes) and continue" >&2
    exit 4
  fi
  stripped=("${pending[@]#node/}")
  names=$(IFS=,; echo "${stripped[*]}")
  echo "resuming: restarting and re-judging the stopped batch ${pending[*]} with gate $GATE"
  # Its labels (new CNI and batch) were set together, so its drain was done; a run killed before
  # the restart would otherwise be judged on the old agent, so it is cordoned and restarted again.
  for node in "${pending[@]}"; do
    kubectl cordon "$node"
    restart_node "${node#node/}"
  done
  status=0
  "$PINGFLEET" gate "$GATE" --nodes "$names" --url "$AGGREGATOR" --wait "$GATE_WAIT" --interval "$GATE_INTERVAL" || status=$?
  if ((status != 0)); then
    echo "gate $GATE still does not pass for the stopped batch (exit $status); it stays cordoned: ${pending[*]}" >&2
    exit "$status"
  fi
  release "${pending[@]}"
fi

# Before touching anything new: the fleet must be healthy as it is. The batch gate cannot say that:
# before the first batch no node is on the new CNI.
"$PINGFLEET" gate "$BASELINE_GATE" --url "$AGGREGATOR" --wait "$GATE_WAIT" --interval "$GATE_INTERVAL"

# Into a variable first: a failing kubectl inside a process substitution would not stop `set -e`,
# and the loop would report "0 nodes, every batch passed".
listed="$(kubectl get nodes -l "$LABEL!=$TO" -o name)"
mapfile -t nodes <<<"$listed"
[[ -n "$listed" ]] || nodes=()
echo "migrating ${#nodes[@]} nodes to $LABEL=$TO in batches of $BATCH_SIZE (run $RUN)"

for ((i = 0; i < ${#nodes[@]}; i += BATCH_SIZE)); do
  batch=("${nodes[@]:i:BATCH_SIZE}")
  n=$((i / BATCH_SIZE + START_BATCH))
  selector="$BATCH_LABEL=$RUN-$n"
  echo "batch $n ($selector): ${batch[*]}"
  for node in "${batch[@]}"; do
    kubectl cordon "$node"
    kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout=10m
    kubectl label --overwrite "$node" "$LABEL=$TO" "$selector"
    restart_node "${node#node/}"
  done
  status=0
  "$PINGFLEET" gate "$GATE" --selector "$selector" --url "$AGGREGATOR" --wait "$GATE_WAIT" --interval "$GATE_INTERVAL" || status=$?
  if ((status != 0)); then
    echo "gate $GATE did not pass for $selector (exit $status); stopping with batch ${batch[*]} cordoned; rerun with --resume once it is fixed" >&2
    exit "$status"
  fi
  release "${batch[@]}"
done
echo "all nodes are on $LABEL=$TO and every batch passed gate $GATE"
