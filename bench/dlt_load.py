"""The dlt peer: load the catalog's four resource tables with dlt's `sql_database` source.

Runs in its own venv (bench/setup_dlt.sh makes .venv-dlt), so it imports nothing from
descriptor_pipeline:

    .venv-dlt/bin/python bench/dlt_load.py --catalog-url postgresql://.../cat \
        --dest-url postgresql://.../scratch [--normalize] [--dataset NAME]

dlt as its docs show it for this job: merge on primary key `id`, incremental cursor on
`updated_at`, default (sqlalchemy) backend and default worker settings. The pipeline runs twice:
a first load into a fresh dataset, then a rerun with nothing changed, which is what a scheduled
refresh of an unchanged catalog costs. `--normalize` adds a light per-row map (NFKC, control
characters dropped, whitespace collapsed, casefold) writing `search_name`, the nearest dlt
equivalent of our normalize stage. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

TABLES = ("music_genre", "music_artist", "music_album", "music_track")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """The light normalization map: what a dlt user would add for a search key."""
    name = row.get("name") or ""
    text = _CONTROL.sub("", unicodedata.normalize("NFKC", name))
    row["search_name"] = _SPACE.sub(" ", text).strip().casefold()
    return row


def _source(catalog_url: str, normalize: bool, chunk_size: int) -> Any:
    import dlt
    from dlt.sources.sql_database import sql_database

    source = sql_database(credentials=catalog_url, table_names=list(TABLES), chunk_size=chunk_size)
    for name in TABLES:
        resource = source.resources[name]
        resource.apply_hints(
            primary_key="id",
            write_disposition="merge",
            incremental=dlt.sources.incremental("updated_at"),
        )
        if normalize:
            resource.add_map(normalize_row)
    return source


def _run(pipeline: Any, catalog_url: str, normalize: bool, chunk_size: int) -> dict[str, Any]:
    """One pipeline.run, timed from source creation (reflection included) to loaded."""
    started = time.perf_counter()
    pipeline.run(_source(catalog_url, normalize, chunk_size))
    seconds = time.perf_counter() - started
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace.last_normalize_info else {}
    rows = {t: int(counts.get(t, 0)) for t in TABLES}
    steps = {
        s.step: round((s.finished_at - s.started_at).total_seconds(), 2)
        for s in trace.steps
        if s.finished_at is not None
    }
    total = sum(rows.values())
    return {
        "rows": total,
        "rows_by_table": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(total / seconds) if seconds else None,
        "steps_seconds": steps,
    }


def load(
    catalog_url: str, dest_url: str, normalize: bool, dataset: str, chunk_size: int
) -> dict[str, Any]:
    """First load into a fresh dataset, then a no-change rerun; returns both figures."""
    workdir = tempfile.mkdtemp(prefix="bench_dlt_")
    # dlt keeps pipeline state and its data dir under these: a throwaway per run
    os.environ["DLT_DATA_DIR"] = workdir
    import dlt

    try:
        pipeline = dlt.pipeline(
            pipeline_name=f"bench_{dataset}",
            pipelines_dir=os.path.join(workdir, "pipelines"),
            destination=dlt.destinations.postgres(credentials=dest_url),
            dataset_name=dataset,
            dev_mode=False,
        )
        first = _run(pipeline, catalog_url, normalize, chunk_size)
        rerun = _run(pipeline, catalog_url, normalize, chunk_size)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "tool": f"dlt {dlt.__version__}",
        "normalize": normalize,
        "dataset": dataset,
        "first_load": first,
        "no_change_rerun": rerun,
        "rerun_share": round(rerun["seconds"] / first["seconds"], 3),
    }


def _with_driver(url: str, driver: str | None) -> str:
    """dlt's venv has psycopg2, not psycopg 3, and SQLAlchemy 2.1 maps a bare postgresql://
    to psycopg 3: the source names psycopg2; dlt's destination wants the bare scheme."""
    rest = re.sub(r"^postgres(ql)?(\+\w+)?://", "", url)
    return f"postgresql+{driver}://{rest}" if driver else f"postgresql://{rest}"


def _with_password(url: str) -> str:
    """dlt's postgres destination refuses credentials without a password; with trust auth
    (the benchmark's server) any placeholder is accepted and ignored."""
    parts = urlsplit(url)
    if parts.username and parts.password is None:
        host = parts.netloc.split("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username}:unused@{host}")
    return urlunsplit(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog-url", required=True)
    parser.add_argument("--dest-url", required=True)
    parser.add_argument("--normalize", action="store_true")
    parser.add_argument("--dataset", default=None, help="destination schema (must be new)")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="dlt's default")
    args = parser.parse_args()
    # no telemetry, no chatter: this machine has no network and stdout carries the JSON
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    dataset = args.dataset or ("catalog_normalized" if args.normalize else "catalog_plain")
    result = load(
        _with_driver(args.catalog_url, "psycopg2"),
        _with_password(_with_driver(args.dest_url, None)),
        args.normalize,
        dataset,
        args.chunk_size,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
