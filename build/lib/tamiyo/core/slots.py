"""Slot ids (`r{row}c{col}`) and slot configurations (the ordered set of enabled slots)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SLOT_ID = re.compile(r"^r(\d+)c(\d+)$")


class SlotIdError(ValueError):
    """A malformed slot id or one that is not in the slot configuration."""


def parse_slot_id(slot_id: str) -> tuple[int, int]:
    """Return `(row, col)` of a slot id such as ``"r0c2"``."""
    match = _SLOT_ID.match(slot_id) if isinstance(slot_id, str) else None
    if match is None:
        raise SlotIdError(f"invalid slot id {slot_id!r}: expected the form 'r<row>c<col>', e.g. 'r0c1'")
    return int(match.group(1)), int(match.group(2))


def format_slot_id(row: int, col: int) -> str:
    return f"r{row}c{col}"


@dataclass(frozen=True)
class SlotConfig:
    """The enabled slots of a task, in row-major order; the slot head indexes into this order."""

    slot_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        ids = tuple(self.slot_ids)
        object.__setattr__(self, "slot_ids", ids)
        if not ids:
            raise SlotIdError("a slot configuration needs at least one slot")
        if len(set(ids)) != len(ids):
            raise SlotIdError(f"duplicate slot ids in {list(ids)}")
        keys = [parse_slot_id(s) for s in ids]
        if keys != sorted(keys):
            raise SlotIdError(f"slot ids must be in row-major order, got {list(ids)}")

    @classmethod
    def default(cls) -> SlotConfig:
        return cls.for_grid(1, 3)

    @classmethod
    def for_grid(cls, rows: int, cols: int) -> SlotConfig:
        if rows < 1 or cols < 1:
            raise SlotIdError(f"a slot grid needs rows ≥ 1 and cols ≥ 1, got {rows}×{cols}")
        return cls(tuple(format_slot_id(r, c) for r in range(rows) for c in range(cols)))

    @classmethod
    def from_ids(cls, slot_ids: list[str] | tuple[str, ...]) -> SlotConfig:
        """Build a configuration from ids in any order (they are sorted row-major)."""
        return cls(tuple(sorted(slot_ids, key=parse_slot_id)))

    @property
    def num_slots(self) -> int:
        return len(self.slot_ids)

    def index_of(self, slot_id: str) -> int:
        """Strict lookup: the slot head index of `slot_id`, or `SlotIdError`."""
        parse_slot_id(slot_id)
        try:
            return self.slot_ids.index(slot_id)
        except ValueError:
            raise SlotIdError(f"unknown slot id {slot_id!r}; enabled slots: {list(self.slot_ids)}") from None

    def slot_id(self, index: int) -> str:
        if not 0 <= index < len(self.slot_ids):
            raise SlotIdError(f"slot index {index} out of range for {len(self.slot_ids)} slots")
        return self.slot_ids[index]
