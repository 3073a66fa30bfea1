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
# Where the quality checks link their Data Docs pages: empty means file:// links (scripts/ui.sh
# serves the folder over HTTP and sets this to its address).
export DESCRIPTOR_DATA_DOCS_URL="${DESCRIPTOR_DATA_DOCS_URL:-}"
# The instance: dagster.yaml (shared settings, SQLite storage under DAGSTER_HOME), plus
# dagster.postgres.storage.yaml when DESCRIPTOR_INSTANCE=postgres (dagster-postgres).
export DESCRIPTOR_INSTANCE="${DESCRIPTOR_INSTANCE:-sqlite}"
mkdir -p "$DAGSTER_HOME" "$DESCRIPTOR_PIPELINE_DATA"
rm -f "$DAGSTER_HOME/dagster.yaml"  # earlier versions linked it here
if [ "$DESCRIPTOR_INSTANCE" = postgres ]; then
  cat "$ROOT/dagster.yaml" "$ROOT/dagster.postgres.storage.yaml" >"$DAGSTER_HOME/dagster.yaml"
else
  cp "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
fi
