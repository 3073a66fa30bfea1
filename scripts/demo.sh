#!/usr/bin/env bash
# README command 1: set up, seed the demo catalog, backfill every partition, print figures.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$VENV/bin/descriptor-pipeline" demo "$@"
