"""Id-range partition keys: zero-padded so they sort, comma-free so the UI can select them."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

RESOURCE_TYPES: tuple[str, ...] = ("genre", "artist", "album", "track")
KEY_DIGITS = 9
# Catalog ids start at 1. The first range (from 0) also answers for every id below it, which no
# range key can name, so that its raw stage reads those rows and quarantines them with a reason
# (`id_sign:id`) instead of leaving them in no partition at all. The smallest BIGINT whose
# predecessor is still a BIGINT: keyset pages start after `floor - 1`.
LOWEST_ID = -(2**63) + 1


@dataclass(frozen=True, order=True)
class IdRange:
    """An inclusive range of catalog ids, the unit of partitioning within a resource type."""

    first: int
    last: int

    @property
    def key(self) -> str:
        return f"{self.first:0{KEY_DIGITS}d}-{self.last:0{KEY_DIGITS}d}"

    @classmethod
    def parse(cls, key: str) -> IdRange:
        first, sep, last = key.partition("-")
        if not sep or not first.isdigit() or not last.isdigit() or int(first) > int(last):
            raise ValueError(f"not an id-range key: {key!r} (expected e.g. 000000000-000009999)")
        return cls(int(first), int(last))

    @property
    def floor(self) -> int:
        """The lowest id the range answers for: its first id, or any id for the first range."""
        return LOWEST_ID if self.first == 0 else self.first

    def __contains__(self, resource_id: object) -> bool:
        return isinstance(resource_id, int) and self.floor <= resource_id <= self.last


def ranges_covering(max_id: int, range_size: int) -> list[IdRange]:
    """The aligned ranges that cover ids 0..max_id; extending max_id only appends ranges."""
    if range_size <= 0:
        raise ValueError("range_size must be positive")
    if max_id < 0:
        return []
    return [IdRange(start, start + range_size - 1) for start in range(0, max_id + 1, range_size)]


def range_of(resource_id: int, range_size: int) -> IdRange:
    start = (resource_id // range_size) * range_size
    return IdRange(start, start + range_size - 1)


@dataclass(frozen=True)
class DescriptorPartition:
    """One resource type × one id range: what every asset materializes at a time."""

    resource_type: str
    id_range: IdRange

    def __post_init__(self) -> None:
        if self.resource_type not in RESOURCE_TYPES:
            raise ValueError(f"unknown resource type {self.resource_type!r}")

    @property
    def key(self) -> str:
        """The same string Dagster prints for the multi-partition key (dimensions by name)."""
        return f"{self.id_range.key}|{self.resource_type}"

    @classmethod
    def from_dimensions(cls, dims: dict[str, str]) -> DescriptorPartition:
        return cls(dims["resource_type"], IdRange.parse(dims["id_range"]))


class RangeLookup:
    """Which registered id range holds an id (ranges come from the Dagster instance)."""

    def __init__(self, range_keys: Iterable[str]) -> None:
        self.ranges = sorted(IdRange.parse(k) for k in range_keys)
        self._firsts = [r.first for r in self.ranges]

    def range_of(self, resource_id: int) -> IdRange | None:
        i = max(bisect.bisect_right(self._firsts, resource_id) - 1, 0)
        if self.ranges and resource_id in self.ranges[i]:
            return self.ranges[i]
        return None

    def partitions(
        self, resource_type: str, ids: Iterable[int]
    ) -> tuple[dict[DescriptorPartition, list[int]], list[int]]:
        """Ids grouped by partition, and the ids no registered range covers yet."""
        out: dict[DescriptorPartition, list[int]] = {}
        uncovered: list[int] = []
        for resource_id in ids:
            id_range = self.range_of(int(resource_id))
            if id_range is None:
                uncovered.append(int(resource_id))
            else:
                out.setdefault(DescriptorPartition(resource_type, id_range), []).append(
                    int(resource_id)
                )
        return out, uncovered
