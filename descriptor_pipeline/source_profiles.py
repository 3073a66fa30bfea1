"""Source profiles: which path of a provider's payload feeds which canonical field (pure).

`schema.py` holds the default paths. A catalog whose JSON columns hold another provider's shape
(Discogs, MusicBrainz, …) names profiles in its mapping file (`source_profiles`); each profile is
a YAML file that, for one JSON column, replaces the default paths of the fields it lists. The
profile and its version are recorded in the provenance of every value read through it, and a
changed profile re-normalizes the rows (the input hash carries the profiles' fingerprint), so
exactly the documents whose values changed are published again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from descriptor_pipeline.schema import FIELDS, FieldSpec, Source, SourcePath

SHIPPED = Path(__file__).parent / "profiles"
PROFILE_SOURCES = (Source.SPOTIFY, Source.ENRICHMENT, Source.CUSTOM)


class ProfileError(ValueError):
    """A profile that cannot be used, with what to fix."""


class FieldPaths(BaseModel):
    """The paths of one canonical field in this payload, most authoritative first."""

    model_config = ConfigDict(extra="forbid")
    paths: list[str]
    first: bool = Field(
        default=False, description="Read before every other source of the field, not in place."
    )

    @field_validator("paths")
    @classmethod
    def _well_formed(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if path != "[]" and any(not part.removesuffix("[]") for part in path.split(".")):
                raise ValueError(f"malformed path {path!r} (dotted keys, `key[]` for a list)")
        return paths


class SourceProfile(BaseModel):
    """One provider's payload shape in one JSON column of the catalog."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    source: Literal["spotify_data", "enrichment_data", "custom_data"]
    doc: str = ""
    replace_defaults: bool = Field(
        default=False,
        description="Drop every default path of this column: the provider's keys mean other "
        "things (Discogs' `aliases` are other artists, not other spellings).",
    )
    fields: dict[str, dict[str, FieldPaths]]

    @field_validator("fields", mode="before")
    @classmethod
    def _lists_are_paths(cls, fields: Any) -> Any:
        """`aliases: [a, b]` is short for `aliases: {paths: [a, b]}`."""
        if not isinstance(fields, dict):
            return fields
        return {
            t: {f: {"paths": v} if isinstance(v, list) else v for f, v in specs.items()}
            if isinstance(specs, dict)
            else specs
            for t, specs in fields.items()
        }

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def paths_for(self, resource_type: str, field: str) -> FieldPaths | None:
        return self.fields.get(resource_type, {}).get(field)


def load_profile(name_or_path: str) -> SourceProfile:
    """A shipped profile by name (`discogs`) or a YAML file by path; validated."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SHIPPED / f"{name_or_path}.yaml"
        if not path.is_file():
            shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml")))
            raise ProfileError(f"no source profile named {name_or_path!r}; shipped: {shipped}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        profile = SourceProfile.model_validate(data)
    except FileNotFoundError:
        raise ProfileError(f"source profile file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"source profile {path} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise ProfileError(f"source profile {path}: {problems}") from None
    _check_fields(profile, path)
    return profile


def _check_fields(profile: SourceProfile, where: Path) -> None:
    for resource_type, fields in profile.fields.items():
        if resource_type not in FIELDS:
            raise ProfileError(f"{where}: unknown resource type {resource_type!r}")
        known = {f.name: f for f in FIELDS[resource_type]}
        for name in fields:
            if name not in known:
                raise ProfileError(
                    f"{where}: {resource_type} has no field {name!r}; fields: {', '.join(known)}"
                )


def _overlay(spec: FieldSpec, profile: SourceProfile, resource_type: str) -> FieldSpec:
    source = Source(profile.source)
    wanted = profile.paths_for(resource_type, spec.name)
    if wanted is None and not profile.replace_defaults:
        return spec
    ours = tuple(SourcePath(source, p, profile.tag) for p in (wanted.paths if wanted else ()))
    kept = [s for s in spec.sources if s.source != source]
    if wanted is not None and wanted.first:
        return replace(spec, sources=(*ours, *kept))
    at = next((i for i, s in enumerate(spec.sources) if s.source == source), None)
    if at is None:  # the field had no path in this column: the profile's come last
        return replace(spec, sources=(*kept, *ours))
    before = [s for s in spec.sources[:at] if s.source != source]
    after = [s for s in spec.sources[at:] if s.source != source]
    return replace(spec, sources=(*before, *ours, *after))


def apply_profiles(
    profiles: Sequence[SourceProfile],
    fields: Mapping[str, tuple[FieldSpec, ...]] = FIELDS,
) -> dict[str, tuple[FieldSpec, ...]]:
    """The schema's fields with each profile's paths in place of its column's defaults."""
    columns = [p.source for p in profiles]
    duplicated = {c for c in columns if columns.count(c) > 1}
    if duplicated:
        raise ProfileError(f"two source profiles describe the same column: {sorted(duplicated)}")
    out = {t: tuple(specs) for t, specs in fields.items()}
    for profile in profiles:
        for resource_type, specs in out.items():
            out[resource_type] = tuple(_overlay(s, profile, resource_type) for s in specs)
    return out


def fingerprint(profiles: Sequence[SourceProfile]) -> str:
    """Changes when any profile's content does: part of every row's input hash."""
    text = "|".join(p.model_dump_json() for p in profiles)
    return hashlib.sha256(text.encode()).hexdigest()[:16] if profiles else ""


def resolve(
    names_by_type: Mapping[str, Sequence[str]],
) -> tuple[dict[str, tuple[FieldSpec, ...]], str]:
    """Each type's fields with its own profiles applied (a catalog may hold Discogs releases
    and MusicBrainz recordings), and one fingerprint of the whole assignment."""
    loaded = {n: load_profile(n) for names in names_by_type.values() for n in names}
    fields = dict(FIELDS)
    parts = []
    for resource_type, names in sorted(names_by_type.items()):
        profiles = [loaded[n] for n in names]
        fields[resource_type] = apply_profiles(profiles)[resource_type]
        if profiles:
            parts.append(f"{resource_type}:{fingerprint(profiles)}")
    return fields, hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if parts else ""
