"""What a stage says about a row it refuses: it goes to quarantine, never silently away."""

from __future__ import annotations

from dataclasses import dataclass

MAX_RAW_VALUE_CHARS = 2000  # a quarantine row keeps a prefix of the offending value


@dataclass(frozen=True)
class Rejection:
    resource_id: int
    stage: str  # "raw" | "normalize"
    rule: str  # e.g. "json_parse", "type:popularity", "name_length@1"
    reason: str
    raw_value: str | None = None

    def clipped(self) -> Rejection:
        """A prefix of the value that any database can store: NUL shown as `\\x00`, text
        that is not valid UTF-8 with replacement characters."""
        value = self.raw_value
        if value is not None:
            value = value.replace("\x00", "\\x00")
            value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            if len(value) > MAX_RAW_VALUE_CHARS:
                value = value[:MAX_RAW_VALUE_CHARS] + f"… [{len(self.raw_value or '')} chars]"
        return Rejection(self.resource_id, self.stage, self.rule, self.reason, value)


class RejectedValue(Exception):
    """Raised inside normalization when one value makes its whole row unusable."""

    def __init__(self, rule: str, reason: str, raw_value: object = None) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.raw_value = raw_value
