#!/usr/bin/env bash
# Celery workers for the Celery deployment mode (docs/rollout.md, "Past one machine: Celery workers").
#   scripts/celery_workers.sh start QUEUE N [CONCURRENCY]  N background workers on QUEUE (bulk|interactive)
#   scripts/celery_workers.sh run QUEUE NAME [CONCURRENCY] one worker in the foreground
#   scripts/celery_workers.sh status                       every worker the broker reaches, with its queues
#   scripts/celery_workers.sh drain QUEUE [NODE...]        this machine's workers (or NODEs) stop taking QUEUE
#   scripts/celery_workers.sh stop                         warm shutdown of this machine's workers, waited for
# Needs the same environment as the daemon: DAGSTER_POSTGRES_URL, DESCRIPTOR_CATALOG_URL,
# DESCRIPTOR_INDEX_URL, DESCRIPTOR_CELERY_BROKER (default pyamqp://guest:guest@127.0.0.1:5672//).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DESCRIPTOR_EXECUTOR=celery
export PATH="$VENV/bin:$PATH"  # dagster-celery runs `celery` from PATH
APP=descriptor_pipeline.celery_app
CELERY=("$VENV/bin/celery" -A "$APP")
RUNDIR="$DAGSTER_HOME/celery"
START_TIMEOUT="${CELERY_START_TIMEOUT:-180}"  # seconds for a worker to report ready
STOP_TIMEOUT="${CELERY_STOP_TIMEOUT:-600}"    # seconds for running steps to finish on stop
mkdir -p "$RUNDIR"
shopt -s nullglob

# This machine's workers started by `start`: "<name>@<host>" of each pidfile.
local_nodes() {
  local pidfile
  for pidfile in "$RUNDIR"/*.pid; do
    echo "$(basename "$pidfile" .pid)@$(hostname)"
  done
}

cmd="${1:-}"
case "$cmd" in
  run)
    queue="$2" name="$3" concurrency="${4:-1}"
    exec "$VENV/bin/dagster-celery" worker start -A "$APP" -q "$queue" -n "$name" \
      -- -c "$concurrency" --without-gossip --without-mingle
    ;;
  start)
    queue="$2" count="$3" concurrency="${4:-1}"
    # open the instance once first: N workers creating a fresh instance's tables at the same
    # time race on them, and the losers exit ("table alembic_version already exists")
    "$VENV/bin/descriptor-pipeline" init-instance >/dev/null  # and the pools, once
    names=()
    for i in $(seq 1 "$count"); do
      name="$queue-$i-$$"
      # setsid: each worker is its own process group (dagster-celery, celery, its pool)
      setsid nohup bash "$0" run "$queue" "$name" "$concurrency" >"$RUNDIR/$name.log" 2>&1 &
      echo "$!" >"$RUNDIR/$name.pid"
      names+=("$name")
    done
    for name in "${names[@]}"; do
      pid="$(cat "$RUNDIR/$name.pid")"
      waited=0
      until grep -q " ready\." "$RUNDIR/$name.log"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge "$START_TIMEOUT" ]; then
          echo "worker $name did not start (log $RUNDIR/$name.log):" >&2
          tail -n 20 "$RUNDIR/$name.log" >&2
          kill -TERM -- "-$pid" 2>/dev/null || true
          rm -f "$RUNDIR/$name.pid"
          exit 1
        fi
        sleep 1
        waited=$((waited + 1))
      done
      echo "started $name@$(hostname) on queue $queue (concurrency $concurrency, log $RUNDIR/$name.log)"
    done
    ;;
  status)
    # one line per worker: "<node>: <queues it consumes>" ("-" when drained)
    if ! replies="$("${CELERY[@]}" inspect active_queues --timeout 3 --json)"; then
      echo "no worker replied through the broker (DESCRIPTOR_CELERY_BROKER)" >&2
      exit 1
    fi
    "$VENV/bin/python" -c '
import json, sys
for node, queues in sorted(json.loads(sys.argv[1]).items()):
    print(node + ": " + (",".join(sorted(q["name"] for q in queues)) or "-"))
' "$replies"
    ;;
  drain)
    queue="$2"
    shift 2
    nodes=("$@")
    if [ "${#nodes[@]}" -eq 0 ]; then
      mapfile -t nodes < <(local_nodes)
    fi
    if [ "${#nodes[@]}" -eq 0 ]; then
      echo "no workers started on this machine; name the nodes: drain $queue NAME@HOST ..." >&2
      exit 1
    fi
    # only these nodes: a bare cancel_consumer would drain QUEUE on every machine
    destination="$(IFS=,; echo "${nodes[*]}")"
    "${CELERY[@]}" control cancel_consumer "$queue" --timeout 3 --destination "$destination"
    ;;
  stop)
    pidfiles=("$RUNDIR"/*.pid)
    for pidfile in "${pidfiles[@]}"; do
      # SIGTERM to the celery main process only, which is Celery's warm shutdown (the running
      # steps finish); the same signal to the whole group would also reach the pool
      # processes, which die on it mid-step
      if pkill -TERM -P "$(cat "$pidfile")" 2>/dev/null; then
        echo "stopping $(basename "$pidfile" .pid) (running steps finish first)"
      fi
    done
    waited=0
    for pidfile in "${pidfiles[@]}"; do
      pid="$(cat "$pidfile")"
      while kill -0 -- "-$pid" 2>/dev/null; do
        if [ "$waited" -ge "$STOP_TIMEOUT" ]; then
          echo "$(basename "$pidfile" .pid) still running after ${STOP_TIMEOUT}s; pidfile kept" >&2
          exit 1
        fi
        sleep 1
        waited=$((waited + 1))
      done
      rm -f "$pidfile"
      echo "stopped $(basename "$pidfile" .pid)"
    done
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
