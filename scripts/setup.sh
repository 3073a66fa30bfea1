#!/usr/bin/env bash
# Creates .venv (Python 3.11 or 3.12) and installs the project with its pinned dependencies.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if not ((3, 11) <= sys.version_info[:2] <= (3, 12)):
    sys.exit(f"descriptor_pipeline needs Python 3.11 or 3.12, found {sys.version.split()[0]}")
PY
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing descriptor_pipeline and its pinned dependencies into $VENV ..."
  log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --quiet --upgrade pip &&
         "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev,celery]"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    echo "install failed (full log: $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
