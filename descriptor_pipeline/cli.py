"""`descriptor-pipeline`: seed the demo, backfill in-process, search, figures, schema docs.

Uses the same stage functions and Dagster assets as the UI; a backfill here is recorded on the
instance in $DAGSTER_HOME, so `dagster dev` afterwards shows its runs and materializations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from descriptor_pipeline.id_ranges import RESOURCE_TYPES

if TYPE_CHECKING:  # imported lazily at run time: `--help` stays fast
    from descriptor_pipeline.catalog import CatalogSource
    from descriptor_pipeline.index_store import IndexStore

DEFAULT_DATA_DIR = Path(".data")
# The console shows this CLI's figures; step-level events stay in the instance's event log (UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _default_env() -> None:
    """Embedded defaults for anything the environment does not set (CLI only, not Dagster)."""
    data = Path(os.environ.get("DESCRIPTOR_PIPELINE_DATA", DEFAULT_DATA_DIR)).resolve()
    data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DESCRIPTOR_CATALOG_URL", f"sqlite:///{data / 'catalog.sqlite'}")
    os.environ.setdefault("DESCRIPTOR_INDEX_URL", f"sqlite:///{data / 'index.sqlite'}")
    os.environ.setdefault("DESCRIPTOR_CATALOG_MAPPING", "")
    os.environ.setdefault("DESCRIPTOR_DATA_DOCS_URL", "")


def _catalog() -> CatalogSource:
    from descriptor_pipeline.catalog import open_catalog

    return open_catalog(
        os.environ["DESCRIPTOR_CATALOG_URL"], os.environ.get("DESCRIPTOR_CATALOG_MAPPING") or None
    )


def _store() -> IndexStore:
    from descriptor_pipeline.index_store import open_store

    return open_store(os.environ["DESCRIPTOR_INDEX_URL"])


def cmd_seed(args: argparse.Namespace) -> int:
    from descriptor_pipeline.demo.seed import inject_bad_rows, seed_catalog

    source = _catalog()
    report = seed_catalog(source.engine, source.config)
    print(
        f"seeded demo catalog in {report.seconds:.2f}s: "
        + ", ".join(f"{n} {t}s" for t, n in report.counts.items())
        + " | links: "
        + ", ".join(f"{n} {t}" for t, n in report.links.items())
    )
    if args.bad_rows:
        for line in inject_bad_rows(source.engine, source.config):
            print(f"  injected bad row -> {line}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from descriptor_pipeline.defs import resources
    from descriptor_pipeline.defs.assets import descriptor_assets
    from descriptor_pipeline.defs.partitions import (
        all_partitions,
        multi_partition_key,
        register_id_ranges,
    )
    from descriptor_pipeline.refresh.tags import run_tags

    if not os.environ.get("DAGSTER_HOME"):
        print(
            "DAGSTER_HOME is not set: run scripts/demo.sh, or `source scripts/env.sh` first, "
            "so runs are recorded on the instance the UI reads",
            file=sys.stderr,
        )
        return 2
    instance = dg.DagsterInstance.get()
    size = args.range_size or resources.FreshnessSettings().id_range_size  # the growth sensor's
    added = register_id_ranges(instance, _catalog(), size)
    from descriptor_pipeline.freshness import partitions_with_rows

    registered = all_partitions(instance)
    partitions = partitions_with_rows(_catalog(), _store(), registered)
    print(
        f"instance: {instance.root_directory} | id ranges added: {len(added)} | "
        f"partitions: {len(partitions)} with rows of {len(registered)}"
    )
    totals: dict[str, int] = {}
    started = time.perf_counter()
    failed = 0
    for partition in partitions:
        t0 = time.perf_counter()
        result = dg.materialize(
            descriptor_assets,
            partition_key=multi_partition_key(partition),
            instance=instance,
            resources={
                **resources.build_resources(),
                "settings": resources.PipelineSettings(publish_table=args.publish_table),
            },
            raise_on_error=False,
            tags=run_tags("cli_backfill"),
            run_config=QUIET_RUN_CONFIG,
        )
        if not result.success:
            failed += 1
            print(f"  {partition.key:32s} FAILED (see the run in the UI: {result.run_id})")
            continue
        figures = []
        blocked = [
            e.asset_check_evaluation_data.check_name
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and not e.asset_check_evaluation_data.passed
            and e.asset_check_evaluation_data.severity == dg.AssetCheckSeverity.ERROR
        ]
        if blocked:
            print(f"  {partition.key:32s} checks failed (ERROR): {', '.join(blocked)}")
        for stage in ("raw_descriptors", "normalized_descriptors", "descriptor_index"):
            materializations = result.asset_materializations_for_node(stage)
            if not materializations:
                figures.append(f"{stage.split('_')[0]} not published (blocked by a check)")
                continue
            (mat,) = materializations
            meta = {k: v.value for k, v in mat.metadata.items()}
            for name in ("rows_read", "rows_written", "rows_rejected", "rows_withdrawn"):
                totals[f"{stage}.{name}"] = totals.get(f"{stage}.{name}", 0) + int(meta[name])
            figures.append(f"{stage.split('_')[0]} {meta['rows_read']}r/{meta['rows_written']}w")
        print(f"  {partition.key:32s} {time.perf_counter() - t0:5.2f}s  " + "  ".join(figures))
    elapsed = time.perf_counter() - started
    print(f"backfill of {len(partitions)} partitions took {elapsed:.2f}s")
    print(f"  resources read:          {totals.get('raw_descriptors.rows_read', 0)}")
    print(f"  rows quarantined (raw):  {totals.get('raw_descriptors.rows_rejected', 0)}")
    print(
        f"  descriptors normalized:  {totals.get('normalized_descriptors.rows_read', 0)} read, "
        f"{totals.get('normalized_descriptors.rows_written', 0)} written, "
        f"{totals.get('normalized_descriptors.rows_rejected', 0)} quarantined"
    )
    print(
        f"  documents published:     {totals.get('descriptor_index.rows_written', 0)} written, "
        f"{totals.get('descriptor_index.rows_withdrawn', 0)} withdrawn (editorially blocked)"
    )
    return 1 if failed else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from descriptor_pipeline.store_engine import create_engine, run_migrations

    version = run_migrations(create_engine(os.environ["DESCRIPTOR_INDEX_URL"]))
    print(f"index database at migration {version}")
    return 0


def cmd_init_instance(args: argparse.Namespace) -> int:
    """Create the pipeline's pool limits once: dagster 1.13 creates them on a step's first
    claim, and two runs starting together on a fresh dagster-postgres instance both try (one
    failed run per first backfill, docs/operations.md). A limit an operator has set is kept."""
    import dagster as dg

    from descriptor_pipeline.defs.assets import CATALOG_POOL, WRITER_POOL

    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        existing = storage.get_concurrency_keys()
        for pool in (CATALOG_POOL, WRITER_POOL):
            if pool not in existing:
                storage.initialize_concurrency_limit_to_default(pool)
            limit = storage.get_concurrency_info(pool).slot_count
            print(f"pool {pool}: limit {limit} ({'kept' if pool in existing else 'created'})")
    return 0


def cmd_create_databases(args: argparse.Namespace) -> int:
    """Create the PostgreSQL databases the URLs name, if missing (needs CREATEDB)."""
    import sqlalchemy as sa

    from descriptor_pipeline.store_engine import create_missing_database

    names = ("DESCRIPTOR_CATALOG_URL", "DESCRIPTOR_INDEX_URL", "DAGSTER_POSTGRES_URL")
    for variable in names:
        url = os.environ.get(variable, "")
        if create_missing_database(url):
            print(f"created database {sa.make_url(url).database} ({variable})")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """Shadow rebuild lifecycle (PostgreSQL): shadow -> backfill into it -> swap [-> rollback]."""
    from descriptor_pipeline import index_store_postgres as pg

    store = _store()
    if store.dialect != "postgresql":
        print(
            "shadow build and swap need the PostgreSQL index; SQLite rebuilds in place",
            file=sys.stderr,
        )
        return 2
    action = {"shadow": pg.create_shadow, "swap": pg.swap_in_shadow, "rollback": pg.rollback_swap}[
        args.action
    ]
    action(store.engine)
    print(f"index {args.action}: done")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import json

    from descriptor_pipeline.search import SearchRefused

    try:
        hits = _store().search(args.query, limit=args.limit, resource_type=args.type)
    except SearchRefused as exc:
        print(f"search refused: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps([h.as_json() for h in hits], ensure_ascii=False))
        return 0
    if not hits:
        print(f"no results for {args.query!r}")
    for hit in hits:
        print(f"{hit.rank:8.2f}  {hit.document_key:14s} {hit.display_text}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    import json

    from descriptor_pipeline.dry_run import profile_catalog, render

    report = profile_catalog(_catalog(), args.type or list(RESOURCE_TYPES), args.sample)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else render(report))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    store = _store()
    print("rows per stage table:")
    print(store.counts().to_string())
    quarantined = store.quarantine_rows()
    if len(quarantined):
        print("quarantine:")
        for row in quarantined.itertuples():
            print(
                f"  {row.resource_type}:{row.resource_id} [{row.stage}] {row.rule}: "
                f"{row.reason[:90]}"
            )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cmd_migrate(args)  # first: on PostgreSQL it creates the roles the seed grants reads to
    cmd_seed(argparse.Namespace(bad_rows=True))
    status = cmd_backfill(
        argparse.Namespace(range_size=args.range_size, publish_table="descriptor_index")
    )
    cmd_stats(args)
    for query in args.queries:
        print(f"\n$ descriptor-pipeline search {query!r}")
        cmd_search(argparse.Namespace(query=query, limit=5, type=None))
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s")
    return status


def cmd_schema_doc(args: argparse.Namespace) -> int:
    from descriptor_pipeline.schema_doc import render_schema_doc

    text = render_schema_doc()
    if args.check:
        current = Path(args.path).read_text(encoding="utf-8")
        if current != text:
            print(
                f"{args.path} is out of date: run descriptor-pipeline schema-doc", file=sys.stderr
            )
            return 1
        return 0
    Path(args.path).write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="descriptor-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seed-demo", help="(re)create the demo catalog from the real-data fixture")
    p.add_argument("--bad-rows", action="store_true", help="also add rows that must quarantine")
    p.set_defaults(fn=cmd_seed)
    p = sub.add_parser("backfill", help="materialize every partition in-process on $DAGSTER_HOME")
    p.add_argument(
        "--range-size", type=int, help="ids per new id range (default freshness.id_range_size)"
    )
    p.add_argument(
        "--publish-table",
        default="descriptor_index",
        help="descriptor_index_shadow to build a shadow index for `index swap`",
    )
    p.set_defaults(fn=cmd_backfill)
    p = sub.add_parser("migrate", help="apply the index database's migrations (idempotent)")
    p.set_defaults(fn=cmd_migrate)
    p = sub.add_parser(
        "init-instance",
        help="create the pipeline's concurrency pools on $DAGSTER_HOME's instance (idempotent)",
    )
    p.set_defaults(fn=cmd_init_instance)
    p = sub.add_parser(
        "create-databases", help="create the PostgreSQL databases named by the URLs if missing"
    )
    p.set_defaults(fn=cmd_create_databases)
    p = sub.add_parser("index", help="PostgreSQL: create a shadow index, swap it in, roll back")
    p.add_argument("action", choices=["shadow", "swap", "rollback"])
    p.set_defaults(fn=cmd_index)
    p = sub.add_parser("search", help="ranked full-text search of the published index")
    p.add_argument("query")
    p.add_argument("--type", choices=["genre", "artist", "album", "track"])
    p.add_argument("--limit", type=int, default=10)
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON array: key, type, id, name, score, matched_fields, match, display_text",
    )
    p.set_defaults(fn=cmd_search)
    p = sub.add_parser(
        "profile", help="dry run: what normalization makes of a catalog sample (reads only)"
    )
    p.add_argument("--sample", type=int, default=200, help="rows per resource type (max 10000)")
    p.add_argument("--type", action="append", choices=list(RESOURCE_TYPES))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=cmd_profile)
    p = sub.add_parser("stats", help="rows per stage table and the quarantine")
    p.set_defaults(fn=cmd_stats)
    p = sub.add_parser("demo", help="seed + backfill + figures + sample searches")
    p.add_argument("--range-size", type=int, default=1000)
    p.add_argument(
        "--queries",
        nargs="*",
        default=["shoegaze", "björk", "プロコフィエフ", "Ｎｉｒｖａｎａ nevermind"],
    )
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("schema-doc", help="write docs/schema.md from the code's schema")
    p.add_argument("--path", default="docs/schema.md")
    p.add_argument("--check", action="store_true", help="fail if the file is out of date")
    p.set_defaults(fn=cmd_schema_doc)
    return parser


def _outage(error: BaseException) -> BaseException | None:
    """The connection error behind an exception, if a database or the Dagster instance's storage
    could not be reached (dagster-postgres wraps it in its own exception after retrying)."""
    from descriptor_pipeline.faults import is_transient

    seen: BaseException | None = error
    while seen is not None:
        if is_transient(seen) or type(seen).__name__ == "DagsterPostgresException":
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _default_env()
    try:
        return int(args.fn(args) or 0)
    except BrokenPipeError:
        # the reader went away (`search … | head -1`, `| grep -q`): not an error of ours;
        # point stdout at devnull so the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        cause = _outage(exc)
        if cause is None:
            raise
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        print(
            f"descriptor-pipeline {args.command}: a database or the Dagster instance is "
            f"unreachable ({type(cause).__name__}: {first[:200]}); nothing was lost, run it "
            "again once it is back",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
