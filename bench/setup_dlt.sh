#!/usr/bin/env bash
# A separate venv for the dlt peer (bench/dlt_load.py): dlt is a benchmark peer, never a runtime
# dependency, and its pins must not move the project's .venv. Idempotent: a stamp file records
# the requirement that was installed; rerunning with the same one does nothing.
#
#   bash bench/setup_dlt.sh            # creates ./.venv-dlt
#   DLT_VENV=/tmp/x bash bench/setup_dlt.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DLT_VENV:-$ROOT/.venv-dlt}"
PYTHON="${PYTHON:-python3}"
# psycopg2-binary is what dlt's postgres destination uses; sqlalchemy + psycopg2 serve the source
REQUIREMENT='dlt[postgres,sql_database]==1.31.0 psycopg2-binary'
STAMP="$VENV/.bench-dlt-installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$REQUIREMENT" && -x "$VENV/bin/python" ]]; then
    exit 0
fi

started=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
# keep the venv out of git and out of ruff (both read nested .gitignore files)
printf '*\n' >"$VENV/.gitignore"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# shellcheck disable=SC2086  # the requirement is a word list on purpose
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQUIREMENT
"$VENV/bin/python" -c 'import dlt, psycopg2, sqlalchemy; print("dlt", dlt.__version__)'
printf '%s' "$REQUIREMENT" >"$STAMP"
echo "dlt venv ready at $VENV in $((SECONDS - started)) s" >&2
