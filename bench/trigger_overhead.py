"""What alternative (c), a trigger in the catalog, would cost the catalog's own writers.

Times single-row UPDATE + COMMIT of track names (what the product's save does) without and
with a trigger that rebuilds a tsvector for the row. The trigger here does less than the real
alternative would (no normalization, no fan-out to linked rows), so it is a lower bound.

    .venv/bin/python -m bench.trigger_overhead --url postgresql://postgres@127.0.0.1:5432/bench_100000
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

TRIGGER = """
CREATE TABLE IF NOT EXISTS trigger_index (id bigint PRIMARY KEY, search tsvector);
CREATE OR REPLACE FUNCTION trigger_index_row() RETURNS trigger AS $$
BEGIN
    INSERT INTO trigger_index VALUES (NEW.id, to_tsvector('simple',
        NEW.name || ' ' || coalesce(NEW.spotify_data::text, '') || ' ' ||
        coalesce(NEW.enrichment_data::text, '')))
    ON CONFLICT (id) DO UPDATE SET search = excluded.search;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER trigger_index_row AFTER UPDATE ON music_track
    FOR EACH ROW EXECUTE FUNCTION trigger_index_row();
"""


def timed_updates(conn: psycopg.Connection, ids: list[int]) -> list[float]:
    out = []
    for i in ids:
        started = time.perf_counter()
        conn.execute("UPDATE music_track SET name = name WHERE id = %s", (i,))
        conn.commit()
        out.append((time.perf_counter() - started) * 1000)
    return out


def measure(url: str, writes: int) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        ids = [
            r[0] for r in conn.execute("SELECT id FROM music_track ORDER BY id LIMIT %s", (writes,))
        ]
        timed_updates(conn, ids[:200])  # warm up
        plain = timed_updates(conn, ids)
        conn.execute(TRIGGER)
        conn.commit()
        try:
            triggered = timed_updates(conn, ids)
        finally:
            conn.execute("DROP TRIGGER trigger_index_row ON music_track")
            conn.execute("DROP TABLE trigger_index")
            conn.commit()
    a, b = statistics.median(plain), statistics.median(triggered)
    return {
        "writes": writes,
        "median_ms_plain": round(a, 3),
        "median_ms_trigger": round(b, 3),
        "overhead_pct": round(100 * (b - a) / a, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()
    print(measure(args.url, args.writes))


if __name__ == "__main__":
    main()
