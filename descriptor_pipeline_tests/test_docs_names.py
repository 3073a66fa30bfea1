"""The names the README and docs/ mention exist in the code: `descriptor-pipeline` subcommands,
options and choices; `descriptor_pipeline/`, `descriptor_pipeline_tests/`, `scripts/` and `bench/`
paths and `test_*.py::test_name`; relative links down to their headings; Dagster jobs, sensors,
schedules, assets, checks and resources; `descriptor/...` run tags and `DESCRIPTOR_*` variables.
The runnable blocks and the schema page are checked in test_docs.py."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from descriptor_pipeline.cli import build_parser
from descriptor_pipeline.refresh import tags as refresh_tags
from descriptor_pipeline_tests.docs_markdown import DOCS, REPO, code_text, split_doc

# the doc checks' own files: the variables they name are not thereby in the code
DOC_CHECKS = {"test_docs.py", "test_docs_names.py", "docs_markdown.py"}


# ---------------------------------------------------------------- (iii) names and paths


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


_CLI = re.compile(r"descriptor-pipeline((?:[ \t]+(?:\\\n\s*)?[^\s|;&#`]+)*)")


def cli_problems(text: str) -> tuple[list[str], set[str]]:
    """Unknown `descriptor-pipeline` subcommands, options or choices in text; and those seen."""
    commands = _subparsers(build_parser())
    problems, seen = [], set()
    for m in _CLI.finditer(text):
        words = m[1].replace("\\\n", " ").split()
        if not words or words[0].startswith("<"):
            continue
        name, rest = words[0], words[1:]
        if name in ("--help", "-h"):
            continue
        if name not in commands:
            problems.append(f"descriptor-pipeline {name}")
            continue
        seen.add(name)
        sub = commands[name]
        options = {o for a in sub._actions for o in a.option_strings}
        for word in rest:
            option = word.split("=", 1)[0]
            if option.startswith("--") and option not in options:
                problems.append(f"descriptor-pipeline {name} {option}")
        positional = [a for a in sub._actions if not a.option_strings and a.choices]
        choice = rest[0] if rest and not rest[0].startswith(("-", "<")) else None
        if positional and choice is not None and choice not in positional[0].choices:
            problems.append(f"descriptor-pipeline {name} {choice}")
    return problems, seen


def test_cli_check_rejects_unknown_commands_and_options() -> None:
    problems, _ = cli_problems(
        "descriptor-pipeline reindex\ndescriptor-pipeline backfill --range 5\n"
        "descriptor-pipeline index promote\ndescriptor-pipeline search x --type artist"
    )
    assert problems == [
        "descriptor-pipeline reindex",
        "descriptor-pipeline backfill --range",
        "descriptor-pipeline index promote",
    ]


def test_cli_commands_named_in_docs_exist() -> None:
    problems, seen = [], set()
    for doc in DOCS:
        found, names = cli_problems(code_text(doc))
        problems += [f"{doc.name}: {p}" for p in found]
        seen |= names
    assert not problems, problems
    # the docs show the commands an operator needs; the parse must have found them
    assert {"backfill", "search", "stats", "migrate", "index", "schema-doc"} <= seen, seen


_PATH = re.compile(
    r"(?<![\w./-])((?:descriptor_pipeline|descriptor_pipeline_tests|scripts|bench)/[\w./*<>-]*\w)"
)
_TEST_REF = re.compile(r"(test_\w+\.py)::(\w+)")


def path_problems(text: str) -> list[str]:
    problems = []
    for path in _PATH.findall(text):
        if "<" in path:  # a placeholder such as <run id>
            continue
        if not any(REPO.glob(path)):
            problems.append(path)
    for module, test in _TEST_REF.findall(text):
        file = REPO / "descriptor_pipeline_tests" / module
        if not file.exists() or not re.search(
            rf"^def {test}\(", file.read_text(encoding="utf-8"), re.M
        ):
            problems.append(f"{module}::{test}")
    return problems


def test_path_check_rejects_what_is_not_there() -> None:
    assert path_problems(
        "`descriptor_pipeline/nowhere.py` `descriptor_pipeline/defs/sensors.py` "
        "`test_refresh.py::test_no_such_test` `scripts/*.sh` `bench/`"
    ) == ["descriptor_pipeline/nowhere.py", "test_refresh.py::test_no_such_test"]


def test_paths_and_tests_named_in_docs_exist() -> None:
    problems = [f"{doc.name}: {p}" for doc in DOCS for p in path_problems(code_text(doc))]
    assert not problems, problems


def anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    prose, _ = split_doc(doc)
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", prose, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_relative_links_resolve_and_readme_links_every_doc() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            file = doc.parent / path if path else doc
            if not file.exists() or (anchor and anchor not in anchors(file)):
                broken.append(f"{doc.name}: {target}")
    assert not broken, broken
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    unlinked = [d.name for d in DOCS[1:] if f"](docs/{d.name})" not in readme]
    assert not unlinked, f"README.md does not link {unlinked}"


def defined_names() -> dict[str, set[str]]:
    from descriptor_pipeline.definitions import defs

    repo = defs.get_repository_def()
    graph = repo.asset_graph
    return {
        "job": {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")},
        "sensor": {s.name for s in repo.sensor_defs},
        "schedule": {s.name for s in repo.schedule_defs},
        "asset": {k.to_user_string() for k in graph.get_all_asset_keys()},
        "check": {k.name for k in graph.asset_check_keys},
        "resource": set(defs.resources or {}),
    }


_KINDS = "job|sensor|schedule|asset|check|resource"
# `a`, `b` and `c` sensors / the `x` job / `x` asset's ...
_NAMED_LIST = re.compile(
    rf"((?:`[a-z][a-z0-9_]*`(?:,\s*|\s+and\s+|\s+or\s+))*`[a-z][a-z0-9_]*`)\s+({_KINDS})s?\b"
)
_NAME = re.compile(r"`([a-z][a-z0-9_]*)`")
# the asset `x`, checks `a` and `b`
_KIND_FIRST = re.compile(
    rf"\b({_KINDS})s?\s+((?:`[a-z][a-z0-9_]*`(?:,\s*|\s+and\s+|\s+or\s+))*`[a-z][a-z0-9_]*`)"
)
_COMMANDS = [
    (re.compile(r"dagster\s+sensor\s+(?:start|stop|preview|cursor)\s+([a-z]\w*)"), "sensor"),
    (re.compile(r"dagster\s+schedule\s+(?:start|stop|preview)\s+([a-z]\w*)"), "schedule"),
    (re.compile(r"(?:^|\s)(?:-j|--job)\s+([a-z]\w*)"), "job"),
    (re.compile(r"Jobs\s*(?:→|->|>)\s*`?([a-z]\w*)"), "job"),
]


def mentioned_names(text: str) -> set[tuple[str, str]]:
    """(kind, name) pairs the text presents as Dagster definitions."""
    found = set()
    for m in _NAMED_LIST.finditer(text):
        if m[2] == "resource" and m[0].endswith("s"):
            continue  # "`blocked` resources" are catalog resources, not Dagster resources
        found |= {(m[2], name) for name in _NAME.findall(m[1])}
    for m in _KIND_FIRST.finditer(text):
        if m[1] != "resource":
            found |= {(m[1], name) for name in _NAME.findall(m[2])}
    for name in _NAME.findall(text):
        for kind in ("sensor", "schedule"):
            if name.endswith(f"_{kind}"):
                found.add((kind, name))
    for pattern, kind in _COMMANDS:
        found |= {(kind, name) for name in pattern.findall(text)}
    return found


def test_name_check_catches_a_definition_that_does_not_exist() -> None:
    mentioned = mentioned_names(
        "Launch the `refresh_everything` job, turn on `nightly_sensor`, read the "
        "`raw_suite` and `index_suite` checks of the asset `search_index`, then "
        "`dagster job execute -j old_job`."
    )
    assert mentioned == {
        ("job", "refresh_everything"),
        ("sensor", "nightly_sensor"),
        ("check", "raw_suite"),
        ("check", "index_suite"),
        ("asset", "search_index"),
        ("job", "old_job"),
    }
    defined = defined_names()
    assert {(k, n) for k, n in mentioned if n not in defined[k]} == {
        ("job", "refresh_everything"),
        ("sensor", "nightly_sensor"),
        ("asset", "search_index"),
        ("job", "old_job"),
    }


# Mentions that name something else than the definition they appear to name, in docs this
# test's author may not edit. Remove an entry when its doc is fixed (the test says so).
KNOWN_LOOSE_MENTIONS: set[tuple[str, str, str]] = set()


def test_definitions_named_in_docs_exist() -> None:
    defined = defined_names()
    missing, kinds_seen, loose = [], set(), set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for kind, name in sorted(mentioned_names(text)):
            kinds_seen.add(kind)
            if (doc.name, kind, name) in KNOWN_LOOSE_MENTIONS:
                loose.add((doc.name, kind, name))
            elif name not in defined[kind] and not (kind == "check" and name in defined["asset"]):
                missing.append(f"{doc.name}: {kind} {name}")  # "`asset` checks" is fine
    assert not missing, missing
    assert loose == KNOWN_LOOSE_MENTIONS, f"fixed in the docs, drop: {KNOWN_LOOSE_MENTIONS - loose}"
    assert {"job", "sensor", "schedule", "asset", "check", "resource"} <= kinds_seen, kinds_seen
    # every sensor, schedule and operator job is documented somewhere
    everything = "\n".join(d.read_text(encoding="utf-8") for d in DOCS)
    undocumented = [
        name
        for kind in ("job", "sensor", "schedule", "check")
        for name in defined[kind]
        if f"`{name}`" not in everything
    ]
    assert not undocumented, undocumented


def test_run_tags_and_variables_named_in_docs_exist() -> None:
    tags = {v for k, v in vars(refresh_tags).items() if k.startswith("TAG_")}
    sources = [
        *REPO.glob("descriptor_pipeline/**/*.py"),
        *REPO.glob("descriptor_pipeline_tests/*.py"),
        *REPO.glob("scripts/*"),
        *REPO.glob("dagster*.yaml"),
    ]
    code = "\n".join(
        p.read_text(encoding="utf-8") for p in sources if p.is_file() and p.name not in DOC_CHECKS
    )
    unknown_tags, unknown_vars = set(), set()
    for doc in DOCS:
        text = code_text(doc)
        unknown_tags |= {t for t in re.findall(r"\bdescriptor/[a-z_]+", text) if t not in tags}
        unknown_vars |= {v for v in re.findall(r"\bDESCRIPTOR_[A-Z_]+\b", text) if v not in code}
    assert not unknown_tags, unknown_tags
    assert not unknown_vars, unknown_vars
