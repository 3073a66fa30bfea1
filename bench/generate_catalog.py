"""A deterministic, realistically shaped catalog of N resources expanded from the real demo data.

Genres are the real genre tree. Artists, albums and tracks recombine real names, bios, tags and
Spotify objects. About a third of artists have no genre, popularity is Zipf-like, albums per
artist and tracks per album have real-world spreads, and the share of rows without enrichment or
custom_data is realistic. The same seed gives the same catalog.

    python -m bench.generate_catalog --resources 100000 --url postgresql://.../bench_100k
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.catalog_config import CatalogConfig
from descriptor_pipeline.demo.seed import SEEDED_AT, catalog_metadata, fixture_records
from descriptor_pipeline.store_engine import create_engine

BATCH = 20_000


def _zipf_rank(rng: random.Random, n: int, s: float = 1.1) -> int:
    """A rank in 1..n with P(rank) ~ 1/rank^s (inverse-CDF approximation, cheap and seeded)."""
    u = rng.random()
    return min(n, max(1, int((n ** (1 - s) * u + (1 - u)) ** (1 / (1 - s)))))


class CatalogGenerator:
    """Expands the real fixture into `resources` rows (genres stay the real tree)."""

    def __init__(self, resources: int, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        real = list(fixture_records())
        self.genres = [r for r in real if r["resource_type"] == "genre"]
        self.artists = [r for r in real if r["resource_type"] == "artist"]
        self.albums = [r for r in real if r["resource_type"] == "album"]
        self.tracks = [r for r in real if r["resource_type"] == "track"]
        self.bios = [r["enrichment_data"] for r in self.artists if r.get("enrichment_data")]
        self.words = sorted(
            {
                w
                for r in real
                if r["resource_type"] != "genre"
                for w in r["name"].split()
                if len(w) > 2
            }
        )
        rest = max(0, resources - len(self.genres))
        # shape of a catalog: ~1 artist : 2 albums : 11 tracks
        self.n_artists = max(1, rest // 14)
        self.n_albums = self.n_artists * 2
        self.n_tracks = max(0, rest - self.n_artists - self.n_albums)

    def _name(self, template: str, i: int, pool_size: int) -> str:
        if i <= pool_size:
            return template  # the real names first, with their oddities
        rng = self.rng
        return f"{template.split()[0] if template.split() else template} {rng.choice(self.words)}"

    def _custom(self) -> dict[str, Any] | None:
        rng = self.rng
        if rng.random() > 0.12:
            return None
        out: dict[str, Any] = {}
        if rng.random() < 0.5:
            out["tags"] = [rng.choice(self.genres)["name"].upper()]
        if rng.random() < 0.08:
            out["hidden"] = True
        if rng.random() < 0.04:
            out["blocked"] = True
        if rng.random() < 0.3:
            out["editorial_description"] = "Staff pick: " + rng.choice(self.words)
        return out or None

    def genre_rows(self) -> Iterator[dict[str, Any]]:
        for g in self.genres:
            yield {
                "id": g["id"],
                "name": g["name"],
                "parent_id": g.get("parent_id"),
                "spotify_data": g.get("spotify_data"),
                "enrichment_data": g.get("enrichment_data"),
                "custom_data": g.get("custom_data"),
            }

    def artist_rows(self) -> Iterator[tuple[dict[str, Any], list[int]]]:
        rng = self.rng
        for i in range(1, self.n_artists + 1):
            t = self.artists[(i - 1) % len(self.artists)]
            name = self._name(t["name"], i, len(self.artists))
            spotify = copy.deepcopy(t.get("spotify_data")) or {"type": "artist"}
            spotify["name"] = name
            spotify["popularity"] = max(0, 100 - _zipf_rank(rng, 100))
            spotify["followers"] = {"total": int(10_000_000 / _zipf_rank(rng, 1_000_000))}
            enrichment = None
            if rng.random() < 0.7:
                enrichment = copy.deepcopy(t.get("enrichment_data") or rng.choice(self.bios))
            genres = (
                []
                if rng.random() < 0.34
                else sorted(
                    {
                        self.genres[_zipf_rank(rng, len(self.genres), 0.9) - 1]["id"]
                        for _ in range(rng.randint(1, 5))
                    }
                )
            )
            yield (
                {
                    "id": i,
                    "name": name,
                    "spotify_data": spotify,
                    "enrichment_data": enrichment,
                    "custom_data": self._custom(),
                },
                genres,
            )

    def album_rows(self) -> Iterator[tuple[dict[str, Any], list[int]]]:
        rng = self.rng
        for i in range(1, self.n_albums + 1):
            t = self.albums[(i - 1) % len(self.albums)]
            name = self._name(t["name"], i, len(self.albums))
            artist = _zipf_rank(rng, self.n_artists, 0.6)
            spotify = copy.deepcopy(t.get("spotify_data")) if rng.random() < 0.8 else None
            if spotify is not None:
                spotify["name"] = name
                spotify["release_date"] = (
                    f"{rng.randint(1960, 2026)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                )
            enrichment = copy.deepcopy(t.get("enrichment_data")) if rng.random() < 0.5 else None
            yield (
                {
                    "id": i,
                    "name": name,
                    "spotify_data": spotify,
                    "enrichment_data": enrichment,
                    "custom_data": self._custom(),
                },
                [artist],
            )

    def track_rows(self) -> Iterator[tuple[dict[str, Any], list[int], list[int]]]:
        rng = self.rng
        for i in range(1, self.n_tracks + 1):
            t = self.tracks[(i - 1) % len(self.tracks)]
            name = self._name(t["name"], i, len(self.tracks))
            album = min(self.n_albums, 1 + (i - 1) * self.n_albums // max(1, self.n_tracks))
            artists = [_zipf_rank(rng, self.n_artists, 0.6)]
            if rng.random() < 0.2:
                artists.append(_zipf_rank(rng, self.n_artists, 0.6))
            spotify = copy.deepcopy(t.get("spotify_data")) if rng.random() < 0.85 else None
            if spotify is not None:
                spotify["name"] = name
                spotify["duration_ms"] = rng.randint(60_000, 600_000)
            enrichment = copy.deepcopy(t.get("enrichment_data")) if rng.random() < 0.4 else None
            yield (
                {
                    "id": i,
                    "name": name,
                    "spotify_data": spotify,
                    "enrichment_data": enrichment,
                    "custom_data": self._custom(),
                },
                [album],
                sorted(set(artists)),
            )


def _copy_rows(
    conn: sa.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    """Bulk load through COPY (PostgreSQL) or executemany (SQLite), in bounded batches."""
    n = 0
    if conn.dialect.name == "postgresql":
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
                n += 1
        return n
    placeholders = ", ".join("?" for _ in columns)
    batch: list[tuple[Any, ...]] = []
    raw = conn.connection.driver_connection
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            raw.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", batch
            )
            n += len(batch)
            batch = []
    if batch:
        raw.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", batch
        )
        n += len(batch)
    return n


def generate(url: str, resources: int, seed: int = 42) -> dict[str, int]:
    """(Re)create the demo-shaped catalog at `url` with about `resources` rows."""
    engine = create_engine(url)
    md = catalog_metadata(CatalogConfig())
    md.drop_all(engine)
    md.create_all(engine)
    gen = CatalogGenerator(resources, seed)
    stamp = SEEDED_AT

    def j(value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    base = [
        "id",
        "name",
        "spotify_data",
        "enrichment_data",
        "custom_data",
        "created_at",
        "updated_at",
    ]
    links: dict[str, list[tuple[int, int]]] = {"music_artist_genres": [], "music_album_artists": []}
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        counts["genre"] = _copy_rows(
            conn,
            "music_genre",
            [*base, "parent_id"],
            (
                (
                    r["id"],
                    r["name"],
                    j(r["spotify_data"]),
                    j(r["enrichment_data"]),
                    j(r["custom_data"]),
                    stamp,
                    stamp,
                    r["parent_id"],
                )
                for r in gen.genre_rows()
            ),
        )

        def artists() -> Iterator[tuple[Any, ...]]:
            for r, genres in gen.artist_rows():
                links["music_artist_genres"].extend((r["id"], g) for g in genres)
                yield _row(r, j, stamp)

        counts["artist"] = _copy_rows(conn, "music_artist", base, artists())

        def albums() -> Iterator[tuple[Any, ...]]:
            for r, artist_ids in gen.album_rows():
                links["music_album_artists"].extend((r["id"], a) for a in artist_ids)
                yield _row(r, j, stamp)

        counts["album"] = _copy_rows(conn, "music_album", base, albums())
        _copy_rows(
            conn,
            "music_artist_genres",
            ["artist_id", "genre_id"],
            iter(links["music_artist_genres"]),
        )
        _copy_rows(
            conn,
            "music_album_artists",
            ["album_id", "artist_id"],
            iter(links["music_album_artists"]),
        )
        links.clear()
    # tracks stream in batches with their links, so memory stays bounded at 1M
    track_rows = gen.track_rows()
    counts["track"] = 0
    while True:
        batch = [next(track_rows, None) for _ in range(BATCH)]
        batch = [b for b in batch if b is not None]
        if not batch:
            break
        with engine.begin() as conn:
            counts["track"] += _copy_rows(
                conn, "music_track", base, (_row(r, j, stamp) for r, _, _ in batch)
            )
            _copy_rows(
                conn,
                "music_track_albums",
                ["track_id", "album_id"],
                ((r["id"], a) for r, albums_, _ in batch for a in albums_),
            )
            _copy_rows(
                conn,
                "music_track_artists",
                ["track_id", "artist_id"],
                ((r["id"], a) for r, _, artists_ in batch for a in artists_),
            )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in md.sorted_tables:
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(max(id), 0) + 1 FROM {table.name}), false)"
                    )
                )
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return counts


def _row(r: dict[str, Any], j: Any, stamp: datetime) -> tuple[Any, ...]:
    return (
        r["id"],
        r["name"],
        j(r["spotify_data"]),
        j(r["enrichment_data"]),
        j(r["custom_data"]),
        stamp,
        stamp + timedelta(seconds=r["id"] % 86400),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    counts = generate(args.url, args.resources, args.seed)
    print(
        f"generated {sum(counts.values())} resources {counts} in "
        f"{time.perf_counter() - started:.1f}s at {args.url}"
    )


if __name__ == "__main__":
    main()
