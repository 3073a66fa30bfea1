#!/usr/bin/env bash
# README command 2: set up and pass the checks and tests. CI=true makes Postgres tests mandatory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
"$VENV/bin/ruff" check descriptor_pipeline descriptor_pipeline_tests scripts bench
"$VENV/bin/descriptor-pipeline" schema-doc --check
exec "$VENV/bin/pytest" -n "${PYTEST_WORKERS:-2}" "$@"
