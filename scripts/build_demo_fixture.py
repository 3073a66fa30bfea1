#!/usr/bin/env python3
"""Build the demo music-catalog fixture from real metadata shipped inside PyPI sdists.

The demo needs messy, *real* catalog data (non-Latin scripts, HTML bios, sources that
disagree) without network access beyond PyPI, so we mine the test resources of three
packages: beets (genre list/tree + Spotify Web API responses), musicbrainzngs
(MusicBrainz web-service XML) and pylast (recorded Last.fm responses).  Nothing is
cleaned: normalisation is the pipeline's job.  The output is byte-for-byte
deterministic so the fixture can be regenerated and diffed.

Usage: python scripts/build_demo_fixture.py [--sdist-dir DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

SDISTS: dict[str, str] = {"beets": "2.14.1", "musicbrainzngs": "0.7.1", "pylast": "7.2.0"}
DEFAULT_OUT = Path("descriptor_pipeline/demo/data/demo_catalog.jsonl")
TYPE_ORDER = ("genre", "artist", "album", "track")
SOURCE_ORDER = ("spotify", "lastfm", "musicbrainz")
MB_NS = "{http://musicbrainz.org/ns/mmd-2.0#}"
SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
# Per-user responses (charts, scrobbles, loved tracks) hold most of the real long tail and
# the only Last.fm/MusicBrainz overlaps; we keep their entities but never per-user
# counters or user names.  --skip-user-history drops them (~300 rows per type instead).
LASTFM_USER_METHOD = re.compile(r"^(user|library)\.")
# Country- or user-scoped counters are not comparable with global listeners/playcount.
LASTFM_NO_STATS = re.compile(r"^(user|library|geo)\.")
LASTFM_SKIP = {"auth.getSession", "user.getInfo", "user.getTopTags", "user.getFriends"}

Json = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def fold(text: str) -> str:
    """Match key: NFKC + casefold, '-' and whitespace runs folded to one space."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("-", " ")
    return " ".join(text.split())


def sha256_file(path: Path) -> str:
    """Hex digest used to pin inputs/outputs in SOURCES.md."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stable_int(*parts: object) -> int:
    """Seeded, platform-independent pseudo-random number (hash() is salted per run)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Archive:
    """An sdist opened read-only; records which members were actually used."""

    package: str
    version: str
    path: Path
    tar: tarfile.TarFile
    used: list[str] = field(default_factory=list)

    def names(self, pattern: str) -> list[str]:
        """Member paths (without the top folder) matching a regex, sorted for determinism."""
        prefix = f"{self.package}-{self.version}/"
        out = []
        for member in self.tar.getmembers():
            rel = member.name.removeprefix(prefix)
            if member.isfile() and re.fullmatch(pattern, rel):
                out.append(rel)
        return sorted(out)

    def read(self, rel: str) -> bytes:
        """Read one member and remember it for the provenance note."""
        handle = self.tar.extractfile(f"{self.package}-{self.version}/{rel}")
        if handle is None:
            raise FileNotFoundError(rel)
        self.used.append(rel)
        return handle.read()


def fetch_sdists(sdist_dir: Path) -> dict[str, Path]:
    """Download the pinned sdists with the running interpreter's pip unless already present."""
    found: dict[str, Path] = {}
    missing = []
    for package, version in SDISTS.items():
        path = sdist_dir / f"{package}-{version}.tar.gz"
        if path.exists():
            found[package] = path
        else:
            missing.append(f"{package}=={version}")
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*cmd, *missing, "-d", str(sdist_dir)], check=True)
        for package, version in SDISTS.items():
            found[package] = sdist_dir / f"{package}-{version}.tar.gz"
    return found


# ------------------------------------------------------------------ source records


@dataclass
class Record:
    """One entity as a single source describes it, before cross-source merging."""

    kind: str
    source: str
    ident: tuple[str, ...]
    name: str
    order: int
    artist_refs: list[tuple[str, ...]] = field(default_factory=list)
    album_refs: list[tuple[str, ...]] = field(default_factory=list)
    spotify: Json | None = None
    spotify_rank: int = 99
    enrich: Json = field(default_factory=dict)
    tags: list[Json] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)

    @property
    def mbid(self) -> str:
        return str(self.enrich.get("mbid") or "")


class Registry:
    """Per-source store that folds repeated sightings of one entity into one Record."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.records: dict[tuple[str, tuple[str, ...]], Record] = {}

    def add(self, kind: str, ident: tuple[str, ...], name: str, **kw: Any) -> tuple[str, ...]:
        """Insert or enrich a record; first non-empty value wins so input order matters."""
        rec = self.records.get((kind, ident))
        if rec is None:
            rec = Record(kind, self.source, ident, name, len(self.records))
            self.records[(kind, ident)] = rec
        for ref in kw.get("artist_refs") or []:
            if ref is not None and ref not in rec.artist_refs:
                rec.artist_refs.append(ref)
        for ref in kw.get("album_refs") or []:
            if ref is not None and ref not in rec.album_refs:
                rec.album_refs.append(ref)
        spotify, rank = kw.get("spotify"), kw.get("spotify_rank", 99)
        if spotify is not None and rank < rec.spotify_rank:
            rec.spotify, rec.spotify_rank = spotify, rank
        for key, value in (kw.get("enrich") or {}).items():
            if value is None or value == {} or value == []:
                continue
            # An empty Last.fm <mbid/> is kept only until a real one shows up.
            if key not in rec.enrich or rec.enrich[key] == "":
                rec.enrich[key] = value
        seen = {t["name"] for t in rec.tags}
        for tag in kw.get("tags") or []:
            if tag["name"] not in seen:
                rec.tags.append(tag)
                seen.add(tag["name"])
        for genre in kw.get("genres") or []:
            if genre not in rec.genres:
                rec.genres.append(genre)
        return ident

    def of_kind(self, kind: str) -> list[Record]:
        return [r for (k, _), r in self.records.items() if k == kind]


# ------------------------------------------------------------------------- genres


def load_genres(beets: Archive) -> tuple[list[str], dict[str, str]]:
    """genres.txt order first, then tree-only names; parent = first parent in the tree."""
    base = "beetsplug/lastgenre/"
    names = [ln for ln in beets.read(base + "genres.txt").decode("utf-8").splitlines() if ln]
    tree = yaml.safe_load(beets.read(base + "genres-tree.yaml"))
    parents: dict[str, str] = {}
    tree_order: list[str] = []

    def walk(node: Any, parent: str | None) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child, parent)
        elif isinstance(node, dict):
            for key, children in node.items():
                walk(str(key), parent)
                walk(children or [], str(key))
        elif node is not None:
            name = str(node)
            tree_order.append(name)
            if parent is not None and name not in parents:
                parents[name] = parent

    walk(tree, None)
    known = set(names)
    for name in tree_order:
        if name not in known:
            names.append(name)
            known.add(name)
    return names, parents


# ------------------------------------------------------------------------ spotify


def load_spotify(beets: Archive, reg: Registry) -> None:
    """Real Spotify Web API objects from beets' test resources (full objects beat embeds)."""

    def artist(obj: Json, rank: int) -> tuple[str, ...] | None:
        # beets' multi-artist fixture overwrote two ids with "12345"/"Foo": not real data.
        if not SPOTIFY_ID.fullmatch(str(obj.get("id", ""))):
            return None
        ident = (obj["id"], obj["name"])
        return reg.add(
            "artist", ident, obj["name"], spotify=obj, spotify_rank=rank, genres=obj.get("genres")
        )

    def album(obj: Json, rank: int) -> tuple[str, ...]:
        ident = (obj["id"], obj["name"])
        artists = [artist(a, rank + 1) for a in obj.get("artists", [])]
        reg.add(
            "album",
            ident,
            obj["name"],
            spotify=obj,
            spotify_rank=rank,
            artist_refs=artists,
            genres=obj.get("genres"),
        )
        for item in (obj.get("tracks") or {}).get("items", []):
            track(item, rank + 2, ident)
        return ident

    def track(obj: Json, rank: int, album_ref: tuple[str, ...] | None = None) -> None:
        ident = (obj["id"], obj["name"])
        artists = [artist(a, rank + 1) for a in obj.get("artists", [])]
        if "album" in obj:
            album_ref = album(obj["album"], rank + 1)
        reg.add(
            "track",
            ident,
            obj["name"],
            spotify=obj,
            spotify_rank=rank,
            artist_refs=artists,
            album_refs=[album_ref],
        )

    for rel in beets.names(r"test/rsrc/spotify/.*\.json"):
        doc = json.loads(beets.read(rel))
        if doc.get("type") == "album":
            album(doc, 0)
        elif doc.get("type") == "track":
            track(doc, 0)
        else:  # a /v1/search response: {"tracks": {"items": [...]}}
            for item in (doc.get("tracks") or {}).get("items", []):
                track(item, 1)


# ------------------------------------------------------------------------- last.fm


def lastfm_bodies(pylast: Archive, with_user: bool) -> Iterator[tuple[str, ET.Element]]:
    """(method, parsed <lfm>) for every successful recorded Last.fm response."""
    for rel in pylast.names(r"tests/cassettes/.*\.yaml"):
        doc = yaml.safe_load(pylast.read(rel))
        for inter in doc.get("interactions", []):
            req = inter.get("request", {})
            query = parse_qs(req.get("body") or "")
            query = query or parse_qs(req.get("uri", "").partition("?")[2])
            method = (query.get("method") or [""])[0]
            body = inter.get("response", {}).get("body", {}).get("string")
            if not isinstance(body, str) or method in LASTFM_SKIP:
                continue
            if LASTFM_USER_METHOD.match(method) and not with_user:
                continue
            # Search responses use an undeclared "opensearch:" prefix; declare it.
            body = body.replace(
                "<lfm ", '<lfm xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" ', 1
            )
            root = ET.fromstring(body.encode("utf-8"))
            if root.get("status") == "ok" and len(root):
                yield method, root


def _text(el: ET.Element, path: str) -> str | None:
    found = el.find(path)
    return None if found is None else (found.text or "")


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") and value.lstrip("-").isdigit() else None


def load_lastfm(pylast: Archive, reg: Registry, with_user: bool) -> dict[str, Json]:
    """Artists/albums/tracks from Last.fm responses; returns per-tag data for genres."""
    tag_info: dict[str, Json] = {}

    def wiki(el: ET.Element) -> Json | None:
        node = el.find("bio")
        node = el.find("wiki") if node is None else node
        if node is None:
            return None
        bio = {k: node.findtext(k) for k in ("summary", "content") if node.find(k) is not None}
        return bio or None

    def tags(el: ET.Element, path: str) -> list[Json]:
        out = []
        for tag in el.findall(path):
            item: Json = {"name": tag.findtext("name") or ""}
            count = _int(tag.findtext("count"))
            if count is not None:
                item["count"] = count
            out.append(item)
        return out

    def common(el: ET.Element, method: str, ms_duration: bool = False) -> Json:
        enrich: Json = {"source": "lastfm", "mbid": _text(el, "mbid"), "url": _text(el, "url")}
        if not LASTFM_NO_STATS.match(method):
            stats = el.find("stats")
            holder = el if stats is None else stats
            enrich["listeners"] = _int(holder.findtext("listeners"))
            enrich["playcount"] = _int(holder.findtext("playcount"))
        duration = _int(el.findtext("duration"))
        if duration is not None:
            enrich["duration_ms"] = duration if ms_duration else duration * 1000
        enrich["bio"] = wiki(el)
        return enrich

    def artist(el: ET.Element, method: str, ctx: list[Json]) -> tuple[str, ...] | None:
        if el.find("name") is None:  # <artist mbid="...">Name</artist>
            name = el.text or ""
            enrich: Json = {"source": "lastfm", "mbid": el.get("mbid")}
        else:
            name = el.findtext("name") or ""
            enrich = common(el, method)
        if not name:
            return None
        for sim in el.findall("similar/artist"):
            artist(sim, "artist.getSimilar", [])
        return reg.add("artist", (name,), name, enrich=enrich, tags=tags(el, "tags/tag") + ctx)

    def artist_of(el: ET.Element, method: str) -> tuple[str, ...] | None:
        node = el.find("artist")
        return None if node is None else artist(node, method, [])

    def album(el: ET.Element, method: str, ctx: list[Json]) -> tuple[str, ...] | None:
        if el.find("name") is not None:
            name = el.findtext("name") or ""
        elif el.find("title") is not None:  # track.getInfo's <album><title>
            name = el.findtext("title") or ""
        else:  # <album mbid="">Name</album> in scrobble lists
            name = el.text or ""
        if not name:
            return None
        art = artist_of(el, method)
        ident = (name, art[0] if art else "")
        reg.add(
            "album",
            ident,
            name,
            artist_refs=[art],
            enrich=common(el, method),
            tags=tags(el, "tags/tag") + ctx,
        )
        for trk in el.findall("tracks/track"):
            track(trk, method, [], ident)
        return ident

    def track(
        el: ET.Element, method: str, ctx: list[Json], album_ref: tuple[str, ...] | None = None
    ) -> None:
        name = el.findtext("name") or ""
        art = artist_of(el, method)
        alb = el.find("album")
        if alb is not None:
            album_ref = album(alb, method, []) or album_ref
        enrich = common(el, method, ms_duration=method == "track.getInfo")
        reg.add(
            "track",
            (name, art[0] if art else ""),
            name,
            artist_refs=[art],
            album_refs=[album_ref],
            enrich=enrich,
            tags=tags(el, "toptags/tag") + ctx,
        )

    def walk(el: ET.Element, method: str, ctx: list[Json]) -> None:
        if el.tag == "artist":
            artist(el, method, ctx)
        elif el.tag == "album":
            album(el, method, ctx)
        elif el.tag == "track":
            track(el, method, ctx)
        elif el.tag == "tag" and method.startswith("tag."):
            name = el.findtext("name") or ""
            entry = tag_info.setdefault(name, {})
            count = _int(el.findtext("count")) or _int(el.findtext("total"))
            if count is not None:
                entry.setdefault("count", count)
            if el.find("url") is not None:
                entry.setdefault("url", el.findtext("url"))
            bio = wiki(el)
            if bio:
                entry.setdefault("bio", bio)
        elif el.tag == "toptags" and el.get("artist") and el.get("album"):
            # album.getTopTags: counted tags for an album addressed by attributes.
            art = reg.add("artist", (el.get("artist", ""),), el.get("artist", ""))
            ident = (el.get("album", ""), art[0])
            reg.add("album", ident, ident[0], artist_refs=[art], tags=tags(el, "tag"))
        else:
            # tag.getTop{Artists,Albums,Tracks}: the container names the tag its items carry.
            sub = [{"name": el.get("tag", "")}] if el.get("tag") else ctx
            for child in el:
                walk(child, method, sub)

    for method, root in lastfm_bodies(pylast, with_user):
        for child in root:
            walk(child, method, [])
    return tag_info


# --------------------------------------------------------------------- musicbrainz


def load_musicbrainz(mbngs: Archive, reg: Registry) -> None:
    """Artists, releases/release groups (albums) and recordings (tracks) from MB XML."""

    def qualify(path: str) -> str:
        return "/".join(MB_NS + part for part in path.split("/"))

    def t(el: ET.Element, path: str) -> str | None:
        return el.findtext(qualify(path))

    def find(el: ET.Element, path: str) -> list[ET.Element]:
        return el.findall(qualify(path))

    def mb_tags(el: ET.Element) -> list[Json]:
        out = []
        for tag in find(el, "tag-list/tag"):
            item: Json = {"name": t(tag, "name") or ""}
            if _int(tag.get("count")) is not None:
                item["count"] = _int(tag.get("count"))
            out.append(item)
        return out

    def artist(el: ET.Element) -> tuple[str, ...] | None:
        mbid, name = el.get("id"), t(el, "name")
        if not mbid or name is None:
            return None
        span = {k: t(el, f"life-span/{k}") for k in ("begin", "end")}
        aliases = [
            {
                "name": a.text or "",
                "locale": a.get("locale"),
                "sort_name": a.get("sort-name"),
                "type": a.get("type"),
            }
            for a in find(el, "alias-list/alias")
        ]
        enrich = {
            "source": "musicbrainz",
            "mbid": mbid,
            "aliases": aliases,
            "disambiguation": t(el, "disambiguation"),
            "country": t(el, "country"),
            "type": el.get("type"),
            "life_span": {k: v for k, v in span.items() if v},
        }
        for rel in find(el, "relation-list"):
            walk(rel)
        return reg.add("artist", (mbid,), name, enrich=enrich, tags=mb_tags(el))

    def credits(el: ET.Element) -> list[tuple[str, ...] | None]:
        return [artist(a) for a in find(el, "artist-credit/name-credit/artist")]

    def album(el: ET.Element, fallback: list[tuple[str, ...] | None]) -> tuple[str, ...] | None:
        title = t(el, "title")
        if title is None:
            return None
        arts = credits(el) or fallback
        first = next((a for a in arts if a), None)
        first_name = reg.records[("artist", first)].name if first else ""
        ident = (title, first_name)
        labels = [t(li, "label/name") for li in find(el, "label-info-list/label-info")]
        enrich = {
            "source": "musicbrainz",
            "mbid": el.get("id"),
            "release_date": t(el, "date") or t(el, "first-release-date"),
            "country": t(el, "country"),
            "label": next((x for x in labels if x), None),
            "type": el.get("type")
            or next((g.get("type") for g in find(el, "release-group") if g.get("type")), None),
            "disambiguation": t(el, "disambiguation"),
        }
        reg.add("album", ident, title, artist_refs=arts, enrich=enrich, tags=mb_tags(el))
        for trk in find(el, "medium-list/medium/track-list/track"):
            for rec in find(trk, "recording"):
                recording(rec, arts, ident, t(trk, "length"))
        return ident

    def recording(
        el: ET.Element,
        fallback: list[tuple[str, ...] | None],
        album_ref: tuple[str, ...] | None,
        length: str | None = None,
    ) -> None:
        mbid, title = el.get("id"), t(el, "title")
        if not mbid or title is None:
            return
        arts = credits(el) or fallback
        albums = [album_ref] + [album(r, arts) for r in find(el, "release-list/release")]
        isrcs = [i.get("id") or i.text or "" for i in find(el, "isrc-list/isrc")]
        enrich = {
            "source": "musicbrainz",
            "mbid": mbid,
            "isrcs": isrcs,
            "duration_ms": _int(t(el, "length")) or _int(length),
            "disambiguation": t(el, "disambiguation"),
        }
        for rel in find(el, "relation-list"):
            walk(rel)
        reg.add(
            "track",
            (mbid,),
            title,
            artist_refs=arts,
            album_refs=albums,
            enrich=enrich,
            tags=mb_tags(el),
        )

    def walk(el: ET.Element) -> None:
        tag = el.tag.removeprefix(MB_NS)
        if tag == "artist":
            artist(el)
        elif tag in ("release", "release-group"):
            album(el, [])
        elif tag == "recording":
            recording(el, [], None)
        elif tag not in ("label", "instrument", "place", "area"):
            for child in el:
                walk(child)

    for rel in mbngs.names(r"test/data/.*\.xml"):
        walk(ET.fromstring(mbngs.read(rel)))


# ------------------------------------------------------------------------ merging


@dataclass
class Entity:
    """A catalog row: at most one Record per source."""

    kind: str
    records: dict[str, Record] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.records[next(s for s in SOURCE_ORDER if s in self.records)].name


def merge(registries: dict[str, Registry]) -> dict[str, list[Entity]]:
    """Join records of different sources on MBID, else on folded name (+ first artist)."""
    out: dict[str, list[Entity]] = {}
    for kind in ("artist", "album", "track"):
        entities: list[Entity] = []
        by_key: dict[tuple[str, str], list[Entity]] = {}
        by_mbid: dict[str, list[Entity]] = {}
        for source in SOURCE_ORDER:
            reg = registries[source]
            for rec in reg.of_kind(kind):
                artist_name = ""
                if kind != "artist":
                    first = next((a for a in rec.artist_refs if a), None)
                    artist_name = reg.records[("artist", first)].name if first else ""
                key = (fold(rec.name), fold(artist_name))
                candidates = by_mbid.get(rec.mbid, []) if rec.mbid else []
                candidates = candidates + by_key.get(key, [])
                target = next(
                    (
                        e
                        for e in candidates
                        if source not in e.records
                        and not any(
                            r.mbid and rec.mbid and r.mbid != rec.mbid for r in e.records.values()
                        )
                    ),
                    None,
                )
                if target is None:
                    target = Entity(kind)
                    entities.append(target)
                    by_key.setdefault(key, []).append(target)
                target.records[source] = rec
                if rec.mbid:
                    by_mbid.setdefault(rec.mbid, []).append(target)
        out[kind] = entities
    return out


def enrichment(records: dict[str, Record]) -> Json | None:
    """Combine Last.fm and MusicBrainz views; Last.fm wins on scalar conflicts."""
    parts = [records[s] for s in ("lastfm", "musicbrainz") if s in records]
    parts = [p for p in parts if p.enrich or p.tags]
    if not parts:
        return None
    out: Json = {"source": "+".join(p.source for p in parts)}
    for part in parts:
        for key, value in part.enrich.items():
            if key != "source" and (key not in out or (key == "mbid" and not out[key])):
                out[key] = value
    all_tags = [tag for p in parts for tag in p.tags]
    if all_tags:
        out["tags"] = all_tags
    return out


# -------------------------------------------------------------------- custom data


def first_sentence(text: str) -> str | None:
    """A real sentence to reuse as an editorial blurb (text before any Last.fm link)."""
    text = text.split("<a href")[0]
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) >= 12 else None


def recase(name: str) -> str:
    """Curator-style casing fix: capitalise each word, keep the rest of the spelling."""
    return re.sub(r"\S+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), name)


def custom_data(row: Json, popular: list[str]) -> Json | None:
    """Sparse editorial overrides (~12% of rows, hidden ~1%, blocked ~0.5%), seeded."""
    n = stable_int(row["resource_type"], row["id"], row["name"])
    enrich = row["enrichment_data"] or {}
    bio = (enrich.get("bio") or {}).get("content") or (enrich.get("bio") or {}).get("summary")
    blurb = first_sentence(bio) if bio else enrich.get("disambiguation")
    # Only ~30 rows carry prose, so curators describe those more often than the rest.
    selected = n % 100 < (50 if blurb else 12)
    hidden = stable_int("hidden", row["resource_type"], row["id"]) % 1000 < 10
    blocked = stable_int("blocked", row["resource_type"], row["id"]) % 1000 < 5
    if not (selected or hidden or blocked):
        return None
    out: Json = {}
    if selected:
        choice = 1 if blurb and (n >> 40) % 4 else (n >> 48) % 4
        fixed = recase(row["name"])
        if choice == 0 and fixed != row["name"]:
            out["name_override"] = fixed
        elif choice == 1 and blurb:
            out["editorial_description"] = blurb
        elif choice == 2:
            sources = (["spotify"] if row["spotify_data"] else []) + (
                enrich["source"].split("+") if enrich else []
            )
            out["note"] = f"imported from {' + '.join(sources) or 'beets genre list'}"
        if not out or (n >> 56) % 3 == 0:
            real_tags = [t["name"] for t in enrich.get("tags", [])][:2]
            curated = [recase(t) if (n >> 8) % 2 else t.lower() for t in real_tags]
            curated.append(popular[(n >> 24) % len(popular)])
            out["tags"] = curated
    if hidden:
        out["hidden"] = True
    if blocked:
        out["blocked"] = True
        out.setdefault("note", "blocked on request of rights holder")
    return out


# -------------------------------------------------------------------------- build


def build_rows(archives: dict[str, Archive], with_user: bool) -> list[Json]:
    """Load every source, merge, and emit rows in contract order."""
    genre_names, parents = load_genres(archives["beets"])
    regs = {s: Registry(s) for s in SOURCE_ORDER}
    load_spotify(archives["beets"], regs["spotify"])
    tag_info = load_lastfm(archives["pylast"], regs["lastfm"], with_user)
    load_musicbrainz(archives["musicbrainzngs"], regs["musicbrainz"])
    entities = merge(regs)

    genre_id: dict[str, int] = {name: i for i, name in enumerate(genre_names, 1)}
    genre_by_fold: dict[str, int] = {}
    for name, gid in genre_id.items():
        genre_by_fold.setdefault(fold(name), gid)
    genre_enrich: dict[int, Json] = {}
    for tag_name, info in tag_info.items():
        gid = genre_by_fold.get(fold(tag_name))
        if gid is None:
            continue
        entry = genre_enrich.setdefault(gid, {"source": "lastfm", "tags": []})
        item: Json = {"name": tag_name}
        if "count" in info:
            item["count"] = info["count"]
        entry["tags"].append(item)
        for key in ("bio", "url"):
            if key in info:
                entry.setdefault(key, info[key])

    rows: list[Json] = []
    for name, gid in genre_id.items():
        parent = parents.get(name)
        rows.append(
            {
                "resource_type": "genre",
                "id": gid,
                "name": name,
                "parent_id": genre_id.get(parent) if parent else None,
                "spotify_data": None,
                "enrichment_data": genre_enrich.get(gid),
                "links": {},
            }
        )

    ids: dict[tuple[str, str, tuple[str, ...]], int] = {}
    for kind, ents in entities.items():
        for i, ent in enumerate(ents, 1):
            for rec in ent.records.values():
                ids[(kind, rec.source, rec.ident)] = i

    def resolve(kind: str, ent: Entity, attr: str) -> list[int]:
        out: list[int] = []
        for rec in ent.records.values():
            for ref in getattr(rec, attr):
                rid = ids.get((kind, rec.source, ref)) if ref else None
                if rid is not None and rid not in out:
                    out.append(rid)
        return out

    for kind, ents in entities.items():
        for i, ent in enumerate(ents, 1):
            spot = ent.records.get("spotify")
            enrich = enrichment(ent.records)
            if kind == "artist":
                labels = [g for r in ent.records.values() for g in r.genres]
                labels += [t["name"] for t in (enrich or {}).get("tags", [])]
                gids = [genre_by_fold.get(fold(x)) for x in labels]
                links: Json = {"genre": list(dict.fromkeys(g for g in gids if g))}
            elif kind == "album":
                links = {"artist": resolve("artist", ent, "artist_refs")}
            else:
                links = {
                    "album": resolve("album", ent, "album_refs"),
                    "artist": resolve("artist", ent, "artist_refs"),
                }
            rows.append(
                {
                    "resource_type": kind,
                    "id": i,
                    "name": ent.name,
                    "spotify_data": spot.spotify if spot else None,
                    "enrichment_data": enrich,
                    "links": links,
                }
            )

    # Curators pick from the genres Last.fm users actually tag with (real top tags).
    popular = [name for name, gid in genre_id.items() if gid in genre_enrich] or genre_names
    for row in rows:
        row["custom_data"] = custom_data(row, popular)
    rows.sort(key=lambda r: (TYPE_ORDER.index(r["resource_type"]), r["id"]))
    return rows


def write_sources(
    path: Path, out: Path, rows: list[Json], archives: dict[str, Archive], with_user: bool
) -> None:
    """Provenance + licence note, regenerated with the fixture so counts never drift."""
    counts = {k: sum(r["resource_type"] == k for r in rows) for k in TYPE_ORDER}
    lines = [
        "# Demo catalog fixture: sources and licences",
        "",
        f"`{out.name}` is generated by `python scripts/build_demo_fixture.py`"
        + ("" if with_user else " --skip-user-history")
        + ". Do not edit it by hand.",
        "It is built only from test resources shipped in three PyPI sdists (downloaded with",
        "`pip download --no-deps --no-binary :all:`); nothing is cleaned or normalised.",
        "Rows are merged across sources on MBID or on NFKC-casefolded name (+ first artist).",
        "`custom_data` is synthetic editorial data derived deterministically from real values.",
        "",
        "## Sources",
        "",
    ]
    notes = {
        "beets": (
            "MIT licence (beets authors). Genre list/tree from the `lastgenre` plugin;"
            " Spotify Web API responses recorded by the beets test suite (`spotify_data`).",
        ),
        "musicbrainzngs": (
            "Code: BSD-2-Clause (musicbrainzngs authors). The XML is MusicBrainz web-service"
            " output; MusicBrainz core data is CC0 (public domain dedication).",
        ),
        "pylast": (
            "Code and cassettes: Apache-2.0 (pylast authors). Recorded Last.fm API responses."
            " Last.fm wiki/bio text (`bio.summary`, `bio.content`) is user-contributed text"
            " by Last.fm users, licensed CC-BY-SA (see the licence line kept inside each"
            " `content`); attribution: Last.fm and its contributing users, via the"
            " `Read more on Last.fm` links kept in the text.",
        ),
    }
    for package, arch in archives.items():
        used = sorted(set(arch.used))
        lines += [
            f"### {package} {arch.version}",
            "",
            f"- sdist: `{arch.path.name}` sha256 `{sha256_file(arch.path)}`",
            f"- {notes[package][0]}",
            f"- files read ({len(used)}):",
            *[f"  - `{rel}`" for rel in used],
            "",
        ]
    lines += [
        "## Known quirks (kept on purpose)",
        "",
        "- beets edited two Spotify artist objects in `multiartist_track.json` to"
        ' `"12345"/"Foo"` and `"67890"/"Bar"`; they stay inside `spotify_data` but get no'
        " artist rows (their `uri` still points at Project Skylate / Sugar Shrill).",
        "- `japanese_track_request.json` reuses the Spotify ids of Happy / Pharrell Williams /"
        " Despicable Me 2 for 思想犯 / ヨルシカ / 盗作, so two rows can share one Spotify id.",
        "- Last.fm `getInfo` tags carry no count (the `count` key is then absent); empty"
        ' `<mbid/>` is kept as `"mbid": ""`; `track.getInfo` durations are ms, all other'
        " Last.fm durations are seconds (converted to `duration_ms`).",
        "- Per-user Last.fm responses (public weekly charts, scrobbles, loved tracks) supply"
        " most long-tail rows and the Last.fm/MusicBrainz overlaps; only entity names, MBIDs"
        " and URLs are taken (no user names, timestamps or per-user counts)."
        " `--skip-user-history` leaves them out.",
        "- Distinct entities of one source are never merged, so near-duplicates remain"
        " (Nirvana vs Ｎｉｒｖａｎａ, four MusicBrainz artists called Dynamo, dozens of"
        " albums called Nevermind).",
        "",
        "## Output",
        "",
        f"- `{out.name}` sha256 `{sha256_file(out)}` ({out.stat().st_size} bytes)",
        *[f"- {kind}: {n} rows" for kind, n in counts.items()],
        "",
        "Regenerate: `python scripts/build_demo_fixture.py [--sdist-dir DIR] [--out PATH]`;",
        "the output is byte-identical between runs.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist-dir", type=Path, help="reuse (or download into) this folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--skip-user-history",
        action="store_true",
        help="ignore per-user Last.fm charts/scrobbles (~4k fewer thin rows)",
    )
    args = parser.parse_args(argv)
    with_user = not args.skip_user_history

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        sdist_dir = args.sdist_dir or Path(tmp)
        sdist_dir.mkdir(parents=True, exist_ok=True)
        paths = fetch_sdists(sdist_dir)
        archives = {
            pkg: Archive(
                pkg, SDISTS[pkg], paths[pkg], stack.enter_context(tarfile.open(paths[pkg], "r:gz"))
            )
            for pkg in SDISTS
        }
        rows = build_rows(archives, with_user)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(
                    json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                    + "\n"
                )
        write_sources(args.out.parent / "SOURCES.md", args.out, rows, archives, with_user)
    counts = {k: sum(r["resource_type"] == k for r in rows) for k in TYPE_ORDER}
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
