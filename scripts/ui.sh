#!/usr/bin/env bash
# README line 3: the Dagster UI (and daemon) on the same instance the demo wrote to, plus an HTTP
# server for the Data Docs folder, so the checks' report links open from the UI (a browser will
# not follow a file:// link from an http page). Ctrl-C or SIGTERM stops everything started here.
set -euo pipefail
# A launcher may hand this script INT and TERM ignored (a test runner's worker, a supervisor), and
# bash cannot trap a signal that was ignored when it started: start again with their defaults.
if [ -z "${UI_SH_SIGNALS_RESET:-}" ]; then
  export UI_SH_SIGNALS_RESET=1
  exec env --default-signal=INT,TERM,QUIT bash "${BASH_SOURCE[0]}" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
docs_dir="$DESCRIPTOR_PIPELINE_DATA/data_docs"  # the quality resource's default folder
docs_port="${DATA_DOCS_PORT:-3001}"
mkdir -p "$docs_dir"
export DESCRIPTOR_DATA_DOCS_URL="http://127.0.0.1:$docs_port"

# Job control: each process below gets a process group of its own (stopped as a whole), and is
# not started with SIGINT ignored, which dagster dev (SIGTERM mapped to its SIGINT handler) would
# otherwise inherit and outlive this script.
set -m
pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 30); do  # dagster dev stops the webserver and the daemon first
    [ -z "$(jobs -rp)" ] && break
    sleep 1
  done
  # what is left in the groups is killed: dagster dev restarts its code server when the group's
  # TERM stops it, and that orphan would otherwise keep running
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

# the pipeline's concurrency pools, created before two runs can race to create them
"$VENV/bin/descriptor-pipeline" init-instance
"$VENV/bin/python" -m http.server --bind 127.0.0.1 --directory "$docs_dir" "$docs_port" \
  >/dev/null 2>&1 &
pids+=("$!")
echo "Data Docs: $DESCRIPTOR_DATA_DOCS_URL (serving $docs_dir)"
# started from DAGSTER_HOME: in the repository root, dagster dev warns that the dagster.yaml it
# finds there is not the instance's (env.sh copies it into DAGSTER_HOME); workspace.yaml's
# working_directory is relative to that file, so the code location loads the same
(cd "$DAGSTER_HOME" &&
  exec "$VENV/bin/dagster" dev -h 127.0.0.1 -p "${DAGSTER_PORT:-3000}" -w "$ROOT/workspace.yaml") &
pids+=("$!")
wait -n "${pids[@]}"  # either one exiting ends the session
