"""The README and docs/ are checked against the code: runnable blocks run, names exist.

Convention: a fenced code block whose info string is exactly ``bash runnable`` is executed
(```` ```bash runnable ````). A document's runnable blocks run in order, each in its own
``bash -e -o pipefail``, in a temp copy of the repository whose ``.venv`` points at the running
interpreter's environment, with every data location set to temp paths. Each must exit 0 within
BLOCK_TIMEOUT seconds. Any other block is an illustration: only the names in it are checked.
The names, paths and links in the docs are checked in test_docs_names.py; both read the docs
through docs_markdown.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from descriptor_pipeline.rules import RULES
from descriptor_pipeline.schema import Source
from descriptor_pipeline_tests.docs_markdown import (
    ALL_BLOCKS,
    REPO,
    RUNNABLE,
    RUNNABLE_DOCS,
    fenced_blocks,
)

BIN = Path(sys.executable).parent
BLOCK_TIMEOUT = 120  # seconds per block; the largest (a demo-size backfill) takes about 15 s
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".data", ".dagster_home*", "*_cache", "__pycache__", "*.egg-info", "results"
)


# ---------------------------------------------------------------- (i) runnable blocks


def test_fence_parser_finds_indented_blocks_and_their_info(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n\n```bash runnable\necho one\n```\n\n1. item\n\n   ```sql\n   SELECT 1;\n   ```\n"
    )
    blocks = fenced_blocks(doc)
    assert [(b.info, b.text) for b in blocks] == [
        ("bash runnable", "echo one\n"),
        ("sql", "SELECT 1;\n"),
    ]


def test_runnable_blocks_have_one_spelling_and_exist() -> None:
    misspelled = [b.where for b in ALL_BLOCKS if "runnable" in b.info and b.info != RUNNABLE]
    assert not misspelled, f"use exactly '```{RUNNABLE}': {misspelled}"
    names = {b.doc.name for b in ALL_BLOCKS if b.info == RUNNABLE}
    # the smoke checks of the test plan and the runbook's commands must stay executable
    assert {"testing.md", "operations.md", "rollout.md"} <= names, names
    for block in (b for b in ALL_BLOCKS if b.info == RUNNABLE):
        assert block.text.strip(), f"empty runnable block at {block.where}"


def scratch_env(root: Path) -> dict[str, str]:
    """The environment of a runnable block: every location a temp path, no Postgres URL."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DESCRIPTOR_", "DAGSTER_", "PG")) and k not in ("VENV", "ROOT")
    }
    data, home, tmp = root / "data", root / "dagster_home", root / "tmp"
    for path in (data, home, tmp):
        path.mkdir()
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DESCRIPTOR_PIPELINE_DATA=str(data),
        DAGSTER_HOME=str(home),
        DESCRIPTOR_CATALOG_URL=f"sqlite:///{data / 'catalog.sqlite'}",
        DESCRIPTOR_INDEX_URL=f"sqlite:///{data / 'index.sqlite'}",
        DESCRIPTOR_CATALOG_MAPPING="",
        DESCRIPTOR_DATA_DOCS_URL="",
        TMPDIR=str(tmp),
    )
    return env


@pytest.mark.parametrize("doc", RUNNABLE_DOCS, ids=lambda d: d.name)
def test_runnable_blocks_exit_0(doc: Path, tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=COPY_IGNORE, symlinks=True)
    (copy / ".venv").symlink_to(BIN.parent, target_is_directory=True)
    env = scratch_env(tmp_path)
    for block in (b for b in fenced_blocks(doc) if b.info == RUNNABLE):
        started = time.monotonic()
        try:
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", block.text],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT}s\n{block.text}")
        output = (done.stdout + done.stderr)[-3000:]
        assert done.returncode == 0, (
            f"{block.where} exited {done.returncode} after {time.monotonic() - started:.1f}s\n"
            f"{block.text}--- output ---\n{output}"
        )


# ---------------------------------------------------------------- (ii) schema.md


def test_schema_doc_rules_and_sources_match_the_code() -> None:
    """test_schema.py checks every field of schema.md; this checks its rules and source paths."""
    text = (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    rules = dict(re.findall(r"^\| `([a-z_]+)` \| (\d+) \|", text, flags=re.M))
    assert rules == {name: str(rule.version) for name, rule in RULES.items()}
    # field rows: | `name` | type | merge | weight | sources | rules | notes |
    rows = [r.split(" | ") for r in re.findall(r"^\| `[a-z_]+` \| .*$", text, re.M)]
    paths = [p for row in rows if len(row) >= 7 for p in re.findall(r"`([^`]+)`", row[4])]
    assert len(paths) > 40, "no source paths found in schema.md"
    sources = {s.value for s in Source}
    unknown = {p for p in paths if p.split(".", 1)[0] not in sources}
    assert not unknown, unknown
