# Sourced by the other scripts: one place that says where everything lives.
# Every value can be overridden from the environment (e.g. Postgres URLs for production mode).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export VENV="${VENV:-$ROOT/.venv}"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
export DESCRIPTOR_PIPELINE_DATA="${DESCRIPTOR_PIPELINE_DATA:-$ROOT/.data}"
export DESCRIPTOR_CATALOG_URL="${DESCRIPTOR_CATALOG_URL:-sqlite:///$DESCRIPTOR_PIPELINE_DATA/catalog.sqlite}"
export DESCRIPTOR_INDEX_URL="${DESCRIPTOR_INDEX_URL:-sqlite:///$DESCRIPTOR_PIPELINE_DATA/index.sqlite}"
export DESCRIPTOR_CATALOG_MAPPING="${DESCRIPTOR_CATALOG_MAPPING:-}"
# Which instance file DAGSTER_HOME uses: dagster.yaml (SQLite) or dagster.postgres.yaml.
export DAGSTER_INSTANCE_FILE="${DAGSTER_INSTANCE_FILE:-$ROOT/dagster.yaml}"
mkdir -p "$DAGSTER_HOME" "$DESCRIPTOR_PIPELINE_DATA"
ln -sf "$DAGSTER_INSTANCE_FILE" "$DAGSTER_HOME/dagster.yaml"
