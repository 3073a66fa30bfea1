"""The dry run (`descriptor-pipeline profile`): what normalization makes of a catalog sample,
read without writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from descriptor_pipeline import cli
from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.demo.seed import inject_bad_rows, seed_catalog
from descriptor_pipeline.dry_run import profile_catalog, profile_rows
from descriptor_pipeline.rules import GenreVocabulary, NormalizationContext

CTX = NormalizationContext(GenreVocabulary.from_names(["rock", "shoegaze"]))


def _row(resource_id: int, name: str | None, **documents: object) -> dict[str, object]:
    row: dict[str, object] = {
        "resource_id": resource_id,
        "name": name,
        "source_updated_at": "2026-01-01T00:00:00+00:00",
        "links": "{}",
        "spotify_data": None,
        "enrichment_data": None,
        "custom_data": None,
    }
    for column, value in documents.items():
        row[column] = value if isinstance(value, str) else json.dumps(value)
    return row


def test_coverage_examples_and_refusals_per_field() -> None:
    rows = [
        _row(1, "Slowdive", enrichment_data={"bio": {"summary": "<p>From [a=Reading]</p>"}}),
        _row(2, "  Ｒｉｄｅ ", custom_data={"tags": ["Shoegaze", "dream"]}),
        _row(3, "Bad JSON", spotify_data='{"name": "unterminated'),
        _row(4, None),  # no name from any source
    ]
    report = profile_rows("artist", rows, CTX)
    assert (report["rows_sampled"], report["rows_normalized"], report["rows_refused"]) == (4, 2, 2)
    refused = {r["id"]: r["rule"] for r in report["refused"]}
    assert refused == {3: "json_parse:spotify_data", 4: "required:name"}
    fields = report["fields"]
    assert fields["name"]["coverage"] == 1.0
    # a name is shown as the catalog writes it, only trimmed
    assert fields["name"]["examples"] == [{"id": 2, "before": "  Ｒｉｄｅ ", "after": "Ｒｉｄｅ"}]
    description = fields["description"]
    assert description["coverage"] == 0.5
    assert description["source_coverage"] == {"enrichment_data.bio.summary": 0.5}
    assert description["examples"][0]["after"] == "From Reading"
    assert fields["genres"]["examples"][0] == {
        "id": 2, "before": ["Shoegaze", "dream"], "after": ["shoegaze"]
    }  # fmt: skip
    assert fields["genres"]["value_from"] == {"custom_data.tags": 1}


@pytest.fixture
def demo_catalog(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    source = open_catalog(url)
    seed_catalog(source.engine, source.config)
    inject_bad_rows(source.engine, source.config)
    return url


def _fingerprint(url: str) -> list[tuple[str, int]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        return [
            (t, conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in tables
        ]


def test_the_demo_catalog_profiled_from_the_cli_reads_only(
    demo_catalog: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DESCRIPTOR_CATALOG_URL", demo_catalog)
    monkeypatch.setenv("DESCRIPTOR_PIPELINE_DATA", str(tmp_path / "data"))
    before = _fingerprint(demo_catalog)
    assert cli.main(["profile", "--sample", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert _fingerprint(demo_catalog) == before
    assert set(report) == {"genre", "artist", "album", "track"}
    # the newest ids are sampled too: that is where the injected bad rows are
    rules = {r["rule"] for part in report.values() for r in part["refused"]}
    assert {"json_parse:spotify_data", "popularity:int_range@1", "name_length@1"} <= rules
    for part in report.values():
        assert part["rows_sampled"] == 40
        assert part["rows_normalized"] + part["rows_refused"] == 40
        assert part["fields"]["name"]["coverage"] == 1.0
    assert report["album"]["rows_with_fields_dropped"] == 1  # published without popularity
    assert cli.main(["profile", "--sample", "5", "--type", "album"]) == 0
    text = capsys.readouterr().out
    assert "== album: 5 sampled" in text
    assert "  field dropped album:" in text and "[popularity:int_range@1]" in text


def test_a_sample_out_of_bounds_is_refused(demo_catalog: str) -> None:
    with pytest.raises(ValueError, match="between 1 and 10000"):
        profile_catalog(open_catalog(demo_catalog), ["genre"], 50_000)
