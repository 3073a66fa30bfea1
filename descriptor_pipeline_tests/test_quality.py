"""Data quality with real GX runs: suites as asset checks, blocking, quarantine + replay, drift.
The quality parts that need no run (drift comparison, thresholds, Data Docs links and pruning,
the index suite's per-id status) are tested in test_quality_pure.py."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline import stages
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.jobs import replay_quarantine_job
from descriptor_pipeline.defs.partitions import multi_partition_key
from descriptor_pipeline.defs.resources import QualitySettings
from descriptor_pipeline.defs.sensors import refresh_queue_sensor
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.normalization import normalize_rows
from descriptor_pipeline.tables import descriptor_index
from descriptor_pipeline_tests.conftest import Deployment, metadata_of

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
ARTISTS_2 = DescriptorPartition("artist", IdRange(2000, 2999))  # 199 demo rows, room to inject
TRACKS_0 = DescriptorPartition("track", IdRange(0, 999))
CHECKS = (
    "raw_suite",
    "raw_warnings",
    "normalized_suite",
    "normalized_warnings",
    "normalized_drift",
    "quarantine_count",
    "index_suite",
)


@pytest.fixture
def data_docs_dir(tmp_path: Path) -> Path:
    return tmp_path / "data_docs"


@pytest.fixture
def deployment(deployment: Deployment, data_docs_dir: Path) -> Deployment:
    """The conftest deployment, its Data Docs pages under the test's folder."""
    deployment.quality = QualitySettings(data_docs_dir=str(data_docs_dir))
    return deployment


def run_with_checks(
    dep: Deployment, partition: DescriptorPartition, data_docs: str = "on_failure"
) -> dg.ExecuteInProcessResult:
    """The three assets (their checks are evaluated in their steps) for one partition."""
    resources = dep.resources()
    resources["quality"] = QualitySettings(
        data_docs_dir=dep.quality.data_docs_dir, data_docs=data_docs
    )
    return dg.materialize(
        descriptor_assets,
        partition_key=multi_partition_key(partition),
        instance=dep.instance,
        resources=resources,
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def outcome(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """check -> 'pass' | 'WARN' | 'ERROR': what the UI shows for the partition."""
    return {
        name: "pass" if e.passed else e.severity.value for name, e in evaluations(result).items()
    }


def meta(evaluation: dg.AssetCheckEvaluation) -> dict[str, object]:
    return {k: v.value for k, v in evaluation.metadata.items()}


def published(dep: Deployment, resource_type: str) -> dict[int, str]:
    query = sa.select(descriptor_index.c.resource_id, descriptor_index.c.name).where(
        descriptor_index.c.resource_type == resource_type
    )
    with dep.store.engine.connect() as conn:
        return {int(i): n for i, n in conn.execute(query)}


def execute(engine: sa.Engine, sql: str, **params: object) -> list[int]:
    with engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return [int(r[0]) for r in result] if result.returns_rows else []


def add_artist(
    dep: Deployment, name: str, spotify: str | None = None, custom: str | None = None
) -> int:
    sql = (
        "INSERT INTO music_artist (name, spotify_data, custom_data, created_at, updated_at) "
        "VALUES (:n, :s, :c, '2026-11-01', '2026-11-01') RETURNING id"
    )
    (new_id,) = execute(dep.catalog.engine, sql, n=name, s=spotify, c=custom)
    return new_id


def test_clean_partition_passes_every_check_with_reports(
    deployment: Deployment, data_docs_dir: Path
) -> None:
    deployment.register()
    result = run_with_checks(deployment, ARTISTS_0, data_docs="always")
    assert result.success
    assert outcome(result) == dict.fromkeys(CHECKS, "pass")
    suite = meta(evaluations(result)["normalized_suite"])
    # 7 on the row, 1 per non-flag field of the artist (its kind: 10 fields), 3 on every
    # value (a source named, a known source, no control character)
    assert suite["expectations"] == 7 + 10 + 3 and suite["failed"] == 0
    assert suite["rows_validated"] == deployment.catalog.count("artist", ARTISTS_0.id_range)
    warnings = meta(evaluations(result)["normalized_warnings"])
    assert warnings["expectations"] == 3  # genre coverage and the two vocabulary shares
    assert warnings["data_docs"] == suite["data_docs"]  # one page per validation
    page = Path(str(suite["data_docs"]))
    assert page.is_file() and page.is_relative_to(data_docs_dir)
    assert "enrichment_data" in page.read_text() and "in_tree" in page.read_text()
    index = meta(evaluations(result)["index_suite"])
    assert index["ids_published"] + index.get("ids_withdrawn", 0) == suite["rows_validated"]


def test_bad_rows_warn_the_expected_checks_quarantine_and_replay(deployment: Deployment) -> None:
    bad = {
        add_artist(deployment, " "): "required:name",  # no usable name anywhere
        add_artist(deployment, "[bad] " + "x" * 600): "name_length@1",  # oversized text
        add_artist(deployment, "[bad] typed", spotify='{"popularity": "very high"}'): (
            "int_range@1"  # wrong type
        ),
    }
    unknown = [
        add_artist(deployment, f"[odd] {i}", custom=f'{{"tags": ["zzz unknown {i}"]}}')
        for i in range(12)
    ]
    deployment.register()
    result = run_with_checks(deployment, ARTISTS_2)

    assert outcome(result) == {
        "raw_suite": "pass",
        "raw_warnings": "pass",
        "normalized_suite": "pass",  # nothing that blocks...
        "normalized_warnings": "WARN",  # ...unknown tags: only the vocabulary share warning
        "normalized_drift": "pass",  # first run: no baseline yet
        "quarantine_count": "WARN",
        "index_suite": "pass",  # quarantined ids are accounted for
    }
    warnings = meta(evaluations(result)["normalized_warnings"])
    assert warnings["failed_expectations"] == (
        "column_values_to_not_be_null(in_tree where field in ['genres', 'tags'])"
    )
    (row,) = [r.data for r in warnings["summary"].records if not r.data["passed"]]
    assert "zzz unknown" in row["failing_examples"]  # the tag itself, not a flag
    quarantine = meta(evaluations(result)["quarantine_count"])
    assert (quarantine["quarantined"], quarantine["fields_dropped"]) == (2, 1)
    assert sorted(quarantine["by_stage_rule"]) == sorted(
        f"field/popularity:{r}" if r.startswith("int_range") else f"normalize/{r}"
        for r in bad.values()
    )
    docs = published(deployment, "artist")
    typed = next(i for i, r in bad.items() if r.startswith("int_range"))
    assert typed in docs  # a bad field drops that field: the artist is published without it
    unusable = set(bad) - {typed}
    assert not unusable & set(docs)  # rows without a usable name are not published...
    assert set(unknown) <= set(docs)  # ...warnings do not block...
    blocked = execute(
        deployment.store.engine,
        "SELECT resource_id FROM normalized_descriptors WHERE resource_type = 'artist' AND blocked",
    )
    in_range = execute(
        deployment.catalog.engine, "SELECT id FROM music_artist WHERE id BETWEEN 2000 AND 2999"
    )
    assert {i for i in docs if i in ARTISTS_2.id_range} == set(in_range) - unusable - set(blocked)

    # fix the data, then replay: every quarantined row passes, leaves quarantine, is published
    for resource_id in bad:
        execute(
            deployment.catalog.engine,
            "UPDATE music_artist SET name = :n, spotify_data = NULL WHERE id = :i",
            n=f"fixed {resource_id}",
            i=resource_id,
        )
    replay = replay_quarantine_job.execute_in_process(
        instance=deployment.instance, resources=deployment.resources()
    )
    assert replay.output_for_node("queue_quarantined") == 3
    # the queue sensor launches the real assets for the partition, scoped to those ids
    with dg.build_sensor_context(
        instance=deployment.instance, resources=deployment.resources()
    ) as context:
        result = refresh_queue_sensor(context)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests
    assert request.tags["descriptor/refresh_mode"] == "replay"
    assert request.tags["descriptor/ids"] == ",".join(map(str, sorted(bad)))
    rerun = dg.materialize(
        descriptor_assets,
        partition_key=request.partition_key,
        tags=request.tags,
        instance=deployment.instance,
        resources=deployment.resources(),
    )
    assert metadata_of(rerun, "normalized_descriptors")["rows_read"] == 3
    assert deployment.store.quarantine_rows().empty
    assert {i: f"fixed {i}" for i in bad}.items() <= published(deployment, "artist").items()
    replayed = deployment.instance.get_latest_materialization_event(dg.AssetKey("descriptor_index"))
    assert replayed is not None and replayed.run_id == rerun.run_id


def test_a_critical_failure_blocks_publishing_of_that_partition(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.register()
    assert run_with_checks(deployment, ARTISTS_0).success
    before = published(deployment, "artist")
    for resource_id in (5, 6, 9):
        execute(
            deployment.catalog.engine,
            "UPDATE music_artist SET name = :n WHERE id = :i",
            n=f"Renamed {resource_id}",
            i=resource_id,
        )

    # a regression in the rules: a control character survives, a name comes out empty
    def buggy(resource_type: str, raw: list[dict], ctx: object) -> tuple[list[dict], list]:
        records, rejections = normalize_rows(resource_type, raw, ctx)  # type: ignore[arg-type]
        for record in records:
            if record["resource_id"] == 5:
                record["name"] = "bell\u0007name"
            if record["resource_id"] == 9:
                record["name"] = ""
        return records, rejections

    monkeypatch.setattr(stages, "normalize_rows", buggy)
    result = run_with_checks(deployment, ARTISTS_0)

    assert not result.success
    assert outcome(result) == {
        "raw_suite": "pass",
        "raw_warnings": "pass",
        "normalized_suite": "ERROR",
        "normalized_warnings": "pass",
        "normalized_drift": "pass",
        "quarantine_count": "pass",
    }  # index_suite never ran: its asset was blocked
    assert result.asset_materializations_for_node("descriptor_index") == []
    assert published(deployment, "artist") == before  # no rename reached search
    summary = meta(evaluations(result)["normalized_suite"])
    assert summary["rows_validated"] == 3  # only what the run wrote
    assert set(str(summary["failed_expectations"]).split(", ")) == {
        "column_values_to_not_be_null(name)",  # the empty name is no name
        "column_values_to_not_match_regex(value)",  # every text value, one per line
    }
    rows = {r.data["expectation"]: r.data for r in summary["summary"].records}
    control = rows["column_values_to_not_match_regex(value)"]["failing_examples"]
    assert control == "id 5 name: bell\x07name"  # the value as stored, in the data's terms
    assert rows["column_values_to_not_be_null(name)"]["failing_examples"].startswith("id 9")
    page = Path(str(summary["data_docs"])).read_text()  # rendered because the suite failed
    assert "unexpected values found" in page

    # the rejected rows are not skipped as unchanged next time: the fixed rules redo them
    monkeypatch.undo()
    again = run_with_checks(deployment, ARTISTS_0)
    assert again.success
    assert meta(evaluations(again)["normalized_suite"])["rows_validated"] == 3
    names = published(deployment, "artist")
    assert {i: names[i] for i in (5, 6, 9)} == {i: f"Renamed {i}" for i in (5, 6, 9)}


def test_drift_between_two_runs_warns_when_a_source_loses_a_field(
    deployment: Deployment,
) -> None:
    deployment.register()
    execute(
        deployment.catalog.engine,
        "UPDATE music_track SET spotify_data = "
        "json_set(coalesce(spotify_data, '{}'), '$.duration_ms', 200000 + id) WHERE id <= 999",
    )
    first = run_with_checks(deployment, TRACKS_0)
    assert outcome(first)["normalized_drift"] == "pass"
    drift_meta = meta(evaluations(first)["normalized_drift"])
    assert drift_meta["profile"]["present.duration_ms.spotify_data"] == 1.0  # type: ignore[index]
    assert drift_meta["baseline"] == "none (first run)"
    # a few numbers per resource type for the check's plots, not one per field
    plotted = {
        k
        for k, v in evaluations(first)["normalized_drift"].metadata.items()
        if isinstance(v, dg.FloatMetadataValue)
    }
    assert plotted == {
        f"track/{m}"
        for m in (
            "rows",
            "mean_null_rate",
            "max_null_rate_change",
            "max_source_share_change",
            "distinct_genres",
            "distinct_tags",
            "name_length_p50",
            "description_length_p95",
        )
    }
    assert drift_meta["track/rows"] == drift_meta["rows_profiled"]
    assert drift_meta["track/max_source_share_change"] == 0.0  # no baseline yet

    execute(
        deployment.catalog.engine,
        "UPDATE music_track SET spotify_data = json_remove(spotify_data, '$.duration_ms') "
        "WHERE id <= 999",
    )
    second = run_with_checks(deployment, TRACKS_0)
    drift = evaluations(second)["normalized_drift"]
    assert (drift.passed, drift.severity) == (False, dg.AssetCheckSeverity.WARN)
    drifted = meta(drift)["drifted_metrics"]
    assert "present.duration_ms.spotify_data" in str(drifted)
    assert "null_rate.duration_ms" in str(drifted)
    assert "name" not in str(drifted)  # nothing else moved
    assert meta(drift)["track/max_source_share_change"] == 1.0  # the plot shows the drop
    assert second.asset_materializations_for_node("descriptor_index")  # drift does not block


def test_a_type_null_rate_threshold_warns_in_the_data_s_terms(deployment: Deployment) -> None:
    """`present.<field>`: a per-type null rate over the rows' own column, a warning only."""
    deployment.register()
    dep = deployment
    resources = dep.resources()
    resources["quality"] = QualitySettings(
        data_docs_dir=dep.quality.data_docs_dir,
        per_resource_type={"artist": {"present.disambiguation": 1.0}},
    )
    result = dg.materialize(
        descriptor_assets,
        partition_key=multi_partition_key(ARTISTS_0),
        instance=dep.instance,
        resources=resources,
        raise_on_error=False,
    )
    assert result.success  # a warning never blocks
    warnings = meta(evaluations(result)["normalized_warnings"])
    assert warnings["failed_expectations"] == "column_values_to_not_be_null(disambiguation)"
    (row,) = [r.data for r in warnings["summary"].records if not r.data["passed"]]
    assert row["observed"].endswith(f"unexpected of {warnings['rows_validated']}")


def test_a_run_without_the_checks_validates_nothing_and_publishes(deployment: Deployment) -> None:
    """The checks live in the asset steps, yet a run may deselect them (the benchmark's
    assets-only figure, or an operator in a hurry): then no suite runs and nothing blocks."""
    deployment.register()
    result = dg.materialize(
        descriptor_assets,
        selection=dg.AssetSelection.all().without_checks(),
        partition_key=multi_partition_key(ARTISTS_0),
        instance=deployment.instance,
        resources=deployment.resources(),
    )
    assert result.success
    assert result.get_asset_check_evaluations() == []
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("normalized_descriptors")[
            0
        ].metadata.items()
    }
    assert meta["rows_written"] > 0 and meta["checks_seconds"] < 0.05
    assert published(deployment, "artist")
