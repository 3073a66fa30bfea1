"""The versioned normalization rules and the genre vocabulary they map onto (pure: no I/O).

A rule's version is recorded in the provenance of every value it touched and folded into the
`normalization_version` of every row, so bumping one re-publishes exactly what it produced.
`docs/schema.md` lists them (generated from `RULES`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from selectolax.lexbor import LexborHTMLParser

from descriptor_pipeline.rejections import RejectedValue
from descriptor_pipeline.schema import FIELDS, SCHEMA_VERSION, FieldSpec

NAME_MAX_CHARS = 512
DESCRIPTION_MAX_CHARS = 2000
LIST_MAX_ITEMS = 50
INT_MAX = 10**12


@dataclass(frozen=True)
class NormalizationContext:
    """What normalization needs besides the row: the genre tree's vocabulary, and the fields
    with the catalog's source profiles applied (`source_profiles.py`)."""

    genre_vocabulary: GenreVocabulary
    fields: Mapping[str, tuple[FieldSpec, ...]] = field(default_factory=lambda: FIELDS)
    profiles_fingerprint: str = ""  # "" without profiles: input hashes stay as they were


@dataclass(frozen=True)
class Rule:
    name: str
    version: int
    applies_to: Literal["text", "list", "int"]
    fn: Callable[..., Any]
    doc: str

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"


# ---------------------------------------------------------------- text rules


def _nfkc(value: str, ctx: NormalizationContext) -> str:
    return unicodedata.normalize("NFKC", value)


def _nfc(value: str, ctx: NormalizationContext) -> str:
    """Names are shown: canonical composition only, so "™" or full-width letters stay as the
    catalog wrote them; search text and comparison keys fold with NFKC (documents.search_key)."""
    return unicodedata.normalize("NFC", value)


# Characters no stored value may hold (the quality suite checks that none survived): C0/C1
# controls, zero-width characters, line/paragraph separators, the BOM, and since version 2 the
# bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+061C), which let a
# name display as something else.
CONTROL_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)


def _control_chars(value: str, ctx: NormalizationContext) -> str:
    return CONTROL_CHARS.sub(" ", value)


_SPACE = re.compile(r"\s+")


def _whitespace(value: str, ctx: NormalizationContext) -> str:
    return _SPACE.sub(" ", value).strip()


# Elements whose boundaries separate words (`<h2>Two</h2><p>Three</p>` is "Two Three"), and
# elements whose content is not text at all.
_BLOCK_TAGS = (
    "address,article,aside,blockquote,br,caption,dd,div,dl,dt,figcaption,figure,footer,h1,h2,"
    "h3,h4,h5,h6,header,hr,li,main,nav,ol,p,pre,section,table,tbody,td,tfoot,th,thead,tr,ul"
)
_NOT_TEXT_TAGS = ["script", "style", "noscript", "template", "iframe", "object", "svg"]


def _strip_html(value: str, ctx: NormalizationContext) -> str:
    """Text of an HTML fragment through a real HTML5 parser (lexbor, via selectolax): entities
    decoded exactly once, block boundaries kept as spaces, script and style content dropped."""
    if "<" not in value and "&" not in value:
        return value
    tree = LexborHTMLParser(value)
    tree.strip_tags(_NOT_TEXT_TAGS)
    for node in tree.css(_BLOCK_TAGS):
        node.insert_before(" ")
        node.insert_after(" ")
    body = tree.body
    return "" if body is None else body.text(deep=True, separator="")


# Discogs' markup and BBCode (https://support.discogs.com/hc/articles/360005006334): named
# links keep their name, numbered references ([a123], [r=456]) and images have no text,
# formatting tags go and keep their content.
_MARKUP_NAMED = re.compile(r"\[(?:a|l)=([^\]\[]+)\]", re.IGNORECASE)
_MARKUP_NUMBERED = re.compile(r"\[(?:a|l|r|m|t)=?\d+\]", re.IGNORECASE)
_MARKUP_LINK = re.compile(r"\[url=[^\]]*\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL)
_MARKUP_NO_TEXT = re.compile(r"\[(url|img)\].*?\[/\1\]", re.IGNORECASE | re.DOTALL)
_MARKUP_FORMAT = re.compile(
    r"\[/?(?:b|i|u|s|quote|code|size|color|center|list|\*)(?:=[^\]]*)?\]", re.IGNORECASE
)


def _strip_markup(value: str, ctx: NormalizationContext) -> str:
    if "[" not in value:
        return value
    value = _MARKUP_NAMED.sub(r"\1", value)
    value = _MARKUP_LINK.sub(r"\1", value)
    value = _MARKUP_NO_TEXT.sub(" ", value)
    value = _MARKUP_NUMBERED.sub(" ", value)
    return _MARKUP_FORMAT.sub("", value)


_LASTFM_READ_MORE = re.compile(r"\s*Read more on Last\.fm\.?\s*$", re.IGNORECASE)


def _lastfm_boilerplate(value: str, ctx: NormalizationContext) -> str:
    return _LASTFM_READ_MORE.sub("", value)


def _name_length(value: str, ctx: NormalizationContext) -> str:
    if len(value) > NAME_MAX_CHARS:
        raise RejectedValue(
            "name_length@1", f"name of {len(value)} chars exceeds {NAME_MAX_CHARS}", value
        )
    return value


def _description_length(value: str, ctx: NormalizationContext) -> str:
    if len(value) <= DESCRIPTION_MAX_CHARS:
        return value
    cut = value[:DESCRIPTION_MAX_CHARS]
    space = cut.rfind(" ")
    return (cut[:space] if space > DESCRIPTION_MAX_CHARS * 0.8 else cut).rstrip() + "…"


# ---------------------------------------------------------------- list rules


def _casefold_dedupe(
    values: list[tuple[str, str]], ctx: NormalizationContext
) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for value, origin in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            out.append((value, origin))
    return out


def _list_length(values: list[tuple[str, str]], ctx: NormalizationContext) -> list[tuple[str, str]]:
    return values[:LIST_MAX_ITEMS]


def _genre_alias(values: list[tuple[str, str]], ctx: NormalizationContext) -> list[tuple[str, str]]:
    vocab = ctx.genre_vocabulary
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for value, origin in values:
        canonical = vocab.canonical(value)
        if canonical is not None and canonical not in seen:
            seen.add(canonical)
            out.append((canonical, origin))
    return out


def _not_genre(values: list[tuple[str, str]], ctx: NormalizationContext) -> list[tuple[str, str]]:
    return [(v, o) for v, o in values if ctx.genre_vocabulary.canonical(v) is None]


# ---------------------------------------------------------------- int rules

_YEAR = re.compile(r"^\s*(\d{4})(?:$|[-/ T])")


def _year(value: object, ctx: NormalizationContext) -> int | None:
    if isinstance(value, bool):
        raise RejectedValue("year@1", f"release date is a boolean: {value!r}", value)
    if isinstance(value, int):
        year = value
    elif isinstance(value, str):
        if not value.strip():
            return None
        match = _YEAR.match(value)
        if match is None:
            raise RejectedValue("year@1", f"release date not a date: {value!r}", value)
        year = int(match.group(1))
    else:
        raise RejectedValue("year@1", f"release date of type {type(value).__name__}", value)
    if not 1000 <= year <= 2100:
        raise RejectedValue("year@1", f"release year {year} outside 1000..2100", value)
    return year


def _int_range(value: object, ctx: NormalizationContext) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RejectedValue("int_range@1", f"expected a number, got {type(value).__name__}", value)
    try:
        number = int(float(value)) if isinstance(value, str | float) else value
    except ValueError:
        raise RejectedValue("int_range@1", f"expected a number, got {value!r}", value) from None
    if not 0 <= number <= INT_MAX:
        raise RejectedValue("int_range@1", f"number {number} outside 0..{INT_MAX}", value)
    return number


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("nfkc", 1, "text", _nfkc, "Unicode NFKC: full-width and compatibility forms fold."),
        Rule(
            "nfc",
            1,
            "text",
            _nfc,
            "Unicode NFC for displayed names: compatibility forms (™, full-width) are kept; "
            "search text folds them (NFKC).",
        ),
        Rule(
            "control_chars",
            2,
            "text",
            _control_chars,
            "Control, zero-width, line/paragraph separator and bidi embedding, override and "
            "isolate characters become spaces.",
        ),
        Rule("whitespace", 1, "text", _whitespace, "Runs of white space collapse; ends trimmed."),
        Rule(
            "strip_html",
            2,
            "text",
            _strip_html,
            "HTML reduced to its text by an HTML5 parser (selectolax): entities decoded once, "
            "block elements separate words, script/style content dropped.",
        ),
        Rule(
            "strip_markup",
            1,
            "text",
            _strip_markup,
            "Discogs markup and BBCode reduced to text: [a=Name] and [l=Label] keep the name, "
            "[url=…]text[/url] keeps the text, numbered references and images go.",
        ),
        Rule(
            "lastfm_boilerplate",
            1,
            "text",
            _lastfm_boilerplate,
            "The trailing 'Read more on Last.fm' link text is dropped.",
        ),
        Rule(
            "name_length",
            1,
            "text",
            _name_length,
            f"A name over {NAME_MAX_CHARS} chars rejects the row (quarantine).",
        ),
        Rule(
            "description_length",
            1,
            "text",
            _description_length,
            f"Descriptions cut at a word boundary near {DESCRIPTION_MAX_CHARS} chars.",
        ),
        Rule(
            "casefold_dedupe",
            1,
            "list",
            _casefold_dedupe,
            "Values equal after case folding keep their first (highest-precedence) spelling.",
        ),
        Rule("list_length", 1, "list", _list_length, f"At most {LIST_MAX_ITEMS} values."),
        Rule(
            "genre_alias",
            1,
            "list",
            _genre_alias,
            "Values mapped onto the genre tree's canonical names; others dropped from genres.",
        ),
        Rule("not_genre", 1, "list", _not_genre, "Keeps only values that are not tree genres."),
        Rule("year", 1, "int", _year, "Year from a date string (YYYY, YYYY-MM, YYYY-MM-DD)."),
        Rule("int_range", 1, "int", _int_range, f"Non-negative integer up to {INT_MAX}."),
    )
}


def normalization_version(rules: dict[str, Rule]) -> str:
    """Schema version + a digest of every rule@version: any bump gives a new version."""
    digest = hashlib.sha256(",".join(sorted(r.tag for r in rules.values())).encode())
    return f"s{SCHEMA_VERSION}-{digest.hexdigest()[:10]}"


NORMALIZATION_VERSION = normalization_version(RULES)


# ---------------------------------------------------------------- genre vocabulary

_GENRE_SEPARATORS = re.compile(r"[\s\-_/.]+")


def genre_key(value: str) -> str:
    """The spelling-insensitive key of a genre name: 'Hip-Hop', 'hip hop', 'HIP_HOP' agree."""
    folded = unicodedata.normalize("NFKC", value).casefold().replace("&", " and ")
    return _GENRE_SEPARATORS.sub(" ", folded).strip()


@dataclass(frozen=True)
class GenreVocabulary:
    by_key: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> GenreVocabulary:
        by_key: dict[str, str] = {}
        for name in names:
            if name and name.strip():
                canonical = _whitespace(unicodedata.normalize("NFKC", name), None)  # type: ignore[arg-type]
                by_key.setdefault(genre_key(name), canonical)
        return cls(by_key)

    def canonical(self, value: str) -> str | None:
        return self.by_key.get(genre_key(value))

    @cached_property
    def fingerprint(self) -> str:
        """Computed once per vocabulary (it is frozen), not once per row."""
        digest = hashlib.sha256()
        for key in sorted(self.by_key):
            digest.update(f"{key}\x1f{self.by_key[key]}\x1e".encode())
        return digest.hexdigest()[:16]
