"""The three partitioned assets. Each body runs its stage, per partition of the run, with a
validator watching the rows it writes, then reports what the stage did and what the layer's
suite found (`defs/checks.py`).

A UI backfill packs up to `PARTITIONS_PER_BACKFILL_RUN` id ranges of one resource type into one
run (`BackfillPolicy.multi_run`): a launched run pays a process start and a code-location load
(about 5 s), which at one partition per run cost more than the work of a small partition.
Sensors and single-partition launches still run one partition.

No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import dagster as dg

from descriptor_pipeline import tables
from descriptor_pipeline.defs import checks
from descriptor_pipeline.defs.checks import PartitionWork
from descriptor_pipeline.defs.partitions import descriptor_partitions, partitions_of
from descriptor_pipeline.defs.resources import (
    CatalogResource,
    IndexStoreResource,
    PipelineSettings,
    QualitySettings,
)
from descriptor_pipeline.documents import DOCUMENT_VERSION
from descriptor_pipeline.faults import is_transient
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.quality.frames import LayerValidator
from descriptor_pipeline.raw_stage import extract_raw
from descriptor_pipeline.refresh.tags import TAG_IDS, parse_scope
from descriptor_pipeline.rules import NORMALIZATION_VERSION
from descriptor_pipeline.schema import FIELDS, SCHEMA_VERSION
from descriptor_pipeline.stages import (
    StageReport,
    normalization_context,
    normalize_partition,
    publish_partition,
)

# Transient errors (a dropped connection, a locked SQLite file) are retried in the step with
# backoff (about 5, 10, 20 s), then by the instance's run_retries from failure. A permanent error
# fails once: `_fail` bypasses both (docs/orchestration.md, "Retries").
transient_retry = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# Dagster's run tag read by the daemon's run_retries when the run has failed
NO_RUN_RETRY = {"dagster/retry_on_asset_or_op_failure": "false"}
GROUP = "descriptors"
OWNERS = ["team:search-platform"]
# Concurrency pools (limits in dagster.yaml's `concurrency: pools:`): catalog readers, and the
# writers of the stage tables and the index (one SQLite file takes one writer at a time).
CATALOG_POOL = "descriptor_catalog"
WRITER_POOL = "descriptor_index_writer"
PARTITIONS_PER_BACKFILL_RUN = 4
backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=PARTITIONS_PER_BACKFILL_RUN)
Events = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


def normalized_column_schema() -> dg.TableSchema:
    """The canonical fields as the UI's column schema, generated from `schema.py`."""
    columns: dict[str, dg.TableColumn] = {}
    types: dict[str, list[str]] = {}
    for resource_type, specs in FIELDS.items():
        for spec in specs:
            types.setdefault(spec.name, []).append(resource_type)
            doc = spec.doc or f"from {', '.join(map(str, spec.sources))}"
            columns.setdefault(spec.name, dg.TableColumn(spec.name, spec.kind, doc))
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                f"{c.description} ({', '.join(types[c.name])})",
                tags={t: "" for t in types[c.name]},
            )
            for c in columns.values()
        ]
    )


def _spec(
    name: str,
    description: str,
    kinds: list[str],
    code_version: str,
    deps: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dg.AssetSpec:
    """One asset of the chain. `multi_asset` rather than `asset` only for `can_subset`: a run
    may then deselect the checks (`AssetSelection...without_checks()`)."""
    return dg.AssetSpec(
        name,
        description=description,
        group_name=GROUP,
        kinds=set(kinds),
        deps=deps or [],
        partitions_def=descriptor_partitions,
        owners=OWNERS,
        code_version=code_version,
        metadata=metadata or {},
    )


def _chain_asset(
    spec: dg.AssetSpec, check_specs: list[dg.AssetCheckSpec], pool: str
) -> Callable[..., dg.AssetsDefinition]:
    """What the three assets share: the partitions, the retry and backfill policies, subsetting
    (a run may deselect the checks), and their checks and pool."""
    return dg.multi_asset(
        specs=[spec],
        pool=pool,
        partitions_def=descriptor_partitions,
        retry_policy=transient_retry,
        backfill_policy=backfill_policy,
        check_specs=check_specs,
        can_subset=True,
    )


def scope_of(context: dg.AssetExecutionContext) -> frozenset[int] | None:
    """A refresh sensor that knows which ids changed tags the run with them (descriptor/ids):
    the run then reads and writes only those rows of the partition. An operator types the tag
    in the launchpad, so an id outside the run's partitions fails the run (it would be read by
    none) instead of being skipped."""
    try:
        scope = parse_scope(context.run.tags)
        if scope is not None:
            ranges = [p.id_range for p in partitions_of(context)]
            outside = sorted(i for i in scope if not any(i in r for r in ranges))
            if outside:
                raise ValueError(
                    f"run tag {TAG_IDS} names {len(outside)} ids outside this run's id ranges "
                    f"({', '.join(r.key for r in ranges)}): {outside[:50]}; launch the "
                    "partition whose range holds them"
                )
        return scope
    except ValueError as exc:
        _fail(context, exc)


def _materialized(
    work: list[PartitionWork], started: float, row_count: int
) -> dg.MaterializeResult:
    """In a packed run Dagster records this for every partition of the range: the totals.

    `checks_seconds`: building the suites' facts while the stage ran, then validating them.
    `dagster/row_count`: rows the asset's table holds for the run's partitions afterwards.
    """
    metadata = StageReport.combined([w.report for w in work]).metadata()
    metadata["dagster/row_count"] = row_count
    observed = sum(w.validator.seconds for w in work if w.validator is not None)
    metadata["checks_seconds"] = round(observed + time.perf_counter() - started, 3)
    return dg.MaterializeResult(metadata=metadata)


def _validator(
    context: dg.AssetExecutionContext, *args: Any, **kwargs: Any
) -> LayerValidator | None:
    """A validator when the run selected this asset's checks (the UI's default); none when it
    did not (`AssetSelection...without_checks()`), and then nothing is validated."""
    if not context.selected_asset_check_keys:
        return None
    return LayerValidator(*args, **kwargs)


def _selected(
    context: dg.AssetExecutionContext, results: list[dg.AssetCheckResult]
) -> list[dg.AssetCheckResult]:
    wanted = {k.name for k in context.selected_asset_check_keys}
    return [r for r in results if r.check_name in wanted]


T = TypeVar("T")


def _open(context: dg.AssetExecutionContext, opener: Callable[[], T]) -> T:
    """Open the catalog or the index store under `_fail`: a missing database or table is
    said once and not retried (outside it, the step's RetryPolicy retried it 3 times)."""
    try:
        return opener()
    except Exception as exc:
        _fail(context, exc)


def _fail(context: dg.AssetExecutionContext, error: Exception) -> NoReturn:
    """Re-raise a transient error for the retry policies; fail a permanent one for good.

    `Failure(allow_retries=False)` skips the step's RetryPolicy; the run tag stops the
    daemon's run retry, which would otherwise re-run a deterministic error up to 2 more times.
    """
    if isinstance(error, dg.Failure):
        if not error.allow_retries:
            context.instance.add_run_tags(context.run.run_id, NO_RUN_RETRY)
        raise error
    if is_transient(error):
        raise error
    context.instance.add_run_tags(context.run.run_id, NO_RUN_RETRY)
    raise dg.Failure(
        description=f"{type(error).__name__} is not transient, so it is not retried: {error}"[
            :4000
        ],
        metadata={"error_class": type(error).__name__, "retried": False},
        allow_retries=False,
    ) from error


def _run(
    context: dg.AssetExecutionContext,
    stage: Callable[[DescriptorPartition, LayerValidator | None], StageReport],
    validator: Callable[[DescriptorPartition], LayerValidator | None],
    check: Callable[[list[PartitionWork]], list[dg.AssetCheckResult]],
    row_count: Callable[[list[DescriptorPartition]], int],
) -> Events:
    """Run the stage for each partition of the run, then its checks.

    In a packed run a partition that raises does not take the others down: they finish and are
    recorded as materialized one by one, then the step fails with the error (`_fail` decides
    whether a retry may follow), so the backfill marks only the failed partitions as failed.
    """
    partitions = partitions_of(context)
    work: list[PartitionWork] = []
    failures: list[tuple[DescriptorPartition, Exception]] = []
    for partition in partitions:
        observe = validator(partition)
        try:
            report = stage(partition, observe)
        except Exception as exc:
            if len(partitions) == 1:
                _fail(context, exc)
            context.log.error(f"{partition.key} failed: {exc!r}")
            failures.append((partition, exc))
            continue
        work.append(PartitionWork(partition, observe, report))
    if failures:
        (asset_key,) = context.selected_asset_keys
        for w in work:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=asset_key, partition=w.partition.key, metadata=w.report.metadata()
                )
            )
        _fail(context, failures[0][1])
    started = time.perf_counter()
    try:
        results = check(work)
        rows = row_count(partitions)
    except Exception as exc:
        _fail(context, exc)
    yield _materialized(work, started, rows)
    yield from _selected(context, results)


@_chain_asset(
    _spec(
        "raw_descriptors",
        "Catalog rows of the range with their linked rows' names.",
        ["sql"],
        code_version=f"schema-{SCHEMA_VERSION}",
    ),
    checks.raw_checks,
    CATALOG_POOL,
)
def raw_descriptors(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
    quality: QualitySettings,
) -> Events:
    """Catalog rows of the range with their linked rows' names; malformed rows quarantined."""
    source, store = _open(context, catalog.source), _open(context, index_store.store)
    scope = scope_of(context)
    yield from _run(
        context,
        lambda p, v: extract_raw(source, store, p, settings.chunk_size, only_ids=scope, observe=v),
        lambda p: _validator(context, "raw", p.resource_type),
        lambda work: checks.raw_results(context.run.run_id, work, store, quality),
        lambda partitions: store.count_rows(tables.raw_descriptors, partitions),
    )


@_chain_asset(
    _spec(
        "normalized_descriptors",
        "Canonical descriptors: every field with its provenance and normalization rules.",
        ["pandas", "sql"],
        code_version=NORMALIZATION_VERSION,
        deps=["raw_descriptors"],
        metadata={"dagster/column_schema": normalized_column_schema()},
    ),
    checks.normalized_checks,
    WRITER_POOL,
)
def normalized_descriptors(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
    quality: QualitySettings,
) -> Events:
    """Canonical descriptors: every field with its provenance and normalization rules."""
    source, store = _open(context, catalog.source), _open(context, index_store.store)
    scope = scope_of(context)
    # a bad source profile is permanent too: fail once, naming the file and the fix
    normalization = _open(context, lambda: normalization_context(source))
    yield from _run(
        context,
        lambda p, v: normalize_partition(
            store, p, normalization, settings.chunk_size, only_ids=scope, observe=v
        ),
        lambda p: _validator(
            context, "normalized", p.resource_type, normalization.genre_vocabulary, True
        ),
        lambda work: checks.normalized_results(context.run.run_id, work, store, source, quality),
        lambda partitions: store.count_rows(tables.normalized_descriptors, partitions),
    )


@_chain_asset(
    _spec(
        "descriptor_index",
        "The published search index: one document per resource.",
        ["sql"],
        code_version=f"{NORMALIZATION_VERSION}-document-{DOCUMENT_VERSION}",
        deps=["normalized_descriptors"],
    ),
    checks.index_checks,
    WRITER_POOL,
)
def descriptor_index(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
    quality: QualitySettings,
) -> Events:
    """The published search index: one document per resource, each partition written in one
    transaction."""
    store, scope = _open(context, index_store.store), scope_of(context)
    yield from _run(
        context,
        lambda p, v: publish_partition(
            store, p, settings.chunk_size, settings.publish_table, only_ids=scope, observe=v
        ),
        lambda p: _validator(context, "index", p.resource_type),
        lambda work: checks.index_results(
            context.run.run_id,
            work,
            store,
            catalog.source(),
            settings.publish_table,
            quality,
        ),
        lambda partitions: store.count_rows(store.index_table(settings.publish_table), partitions),
    )


descriptor_assets = [raw_descriptors, normalized_descriptors, descriptor_index]
