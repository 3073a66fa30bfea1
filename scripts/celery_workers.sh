#!/usr/bin/env bash
# Celery workers for the Celery deployment mode (docs/rollout.md, "Past one machine: Celery workers").
#   scripts/celery_workers.sh start QUEUE N [CONCURRENCY]  N background workers on QUEUE (bulk|interactive)
#   scripts/celery_workers.sh run QUEUE NAME [CONCURRENCY] one worker in the foreground
#   scripts/celery_workers.sh status                       the workers the broker reaches, their queues
#   scripts/celery_workers.sh drain QUEUE                  workers stop taking tasks from QUEUE
#   scripts/celery_workers.sh stop                         warm shutdown of this machine's workers
# Needs the same environment as the daemon: DAGSTER_POSTGRES_URL, DESCRIPTOR_CATALOG_URL,
# DESCRIPTOR_INDEX_URL, DESCRIPTOR_CELERY_BROKER (default pyamqp://guest:guest@127.0.0.1:5672//).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DESCRIPTOR_EXECUTOR=celery
export PATH="$VENV/bin:$PATH"  # dagster-celery runs `celery` from PATH
APP=descriptor_pipeline.celery_app
CELERY=("$VENV/bin/celery" -A "$APP")
RUNDIR="$DAGSTER_HOME/celery"
mkdir -p "$RUNDIR"
cmd="${1:-}"
case "$cmd" in
  run)
    queue="$2" name="$3" concurrency="${4:-1}"
    exec "$VENV/bin/dagster-celery" worker start -A "$APP" -q "$queue" -n "$name" \
      -- -c "$concurrency" --without-gossip --without-mingle
    ;;
  start)
    queue="$2" count="$3" concurrency="${4:-1}"
    for i in $(seq 1 "$count"); do
      name="$queue-$i-$$"
      setsid nohup bash "$0" run "$queue" "$name" "$concurrency" >"$RUNDIR/$name.log" 2>&1 &
      echo "$!" >"$RUNDIR/$name.pid"
      echo "started $name@$(hostname) on queue $queue (concurrency $concurrency, log $RUNDIR/$name.log)"
    done
    ;;
  status)
    "${CELERY[@]}" inspect active_queues --timeout 3
    ;;
  drain)
    "${CELERY[@]}" control cancel_consumer "$2" --timeout 3
    ;;
  stop)
    shopt -s nullglob
    for pidfile in "$RUNDIR"/*.pid; do
      pid="$(cat "$pidfile")"
      # SIGTERM is Celery's warm shutdown: the running steps finish, then the worker exits
      kill -TERM -- "-$pid" 2>/dev/null && echo "stopping $(basename "$pidfile" .pid)"
      rm -f "$pidfile"
    done
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
