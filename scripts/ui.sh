#!/usr/bin/env bash
# README line 3: the Dagster UI (and daemon) on the same instance the demo wrote to.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$VENV/bin/dagster" dev -h 127.0.0.1 -p "${DAGSTER_PORT:-3000}" -w workspace.yaml
