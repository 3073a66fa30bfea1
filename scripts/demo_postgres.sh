#!/usr/bin/env bash
# Production mode on this machine's PostgreSQL: catalog + index in one database, the Dagster
# instance (runs, event log, schedules) in another through dagster-postgres.
set -euo pipefail
PG="${PG_URL_BASE:-postgresql://postgres@127.0.0.1:5432}"
export DESCRIPTOR_CATALOG_URL="${DESCRIPTOR_CATALOG_URL:-$PG/descriptor_demo}"
export DESCRIPTOR_INDEX_URL="${DESCRIPTOR_INDEX_URL:-$PG/descriptor_demo}"
export DAGSTER_POSTGRES_URL="${DAGSTER_POSTGRES_URL:-${PG/postgresql:/postgresql+psycopg2:}/descriptor_dagster}"
export DAGSTER_HOME="${DAGSTER_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.dagster_home_postgres}"
export DESCRIPTOR_INSTANCE=postgres
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
"$VENV/bin/descriptor-pipeline" create-databases
"$VENV/bin/descriptor-pipeline" init-instance
exec "$VENV/bin/descriptor-pipeline" demo "$@"
