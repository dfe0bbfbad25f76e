"""Decision records: one controller decision with its factored action, target slot, reason and confidence."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tamiyo.core.actions import HEAD_NAMES, HEAD_RELEVANCE, IRRELEVANT_HEAD_VALUE, FactoredAction, LifecycleOp


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision in canonical form: heads irrelevant to the op hold `IRRELEVANT_HEAD_VALUE`.

    `slot_index` is the slot the decision concerns. It must equal `action.slot` for every op but
    WAIT; a WAIT may still name the slot it is waiting on (e.g. a seed that is blending), or None.
    """

    action: FactoredAction
    slot_index: int | None
    reason: str
    confidence: float

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("a decision needs a non-empty reason")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must lie in [0, 1], got {self.confidence}")
        if self.slot_index is not None and self.slot_index < 0:
            raise ValueError(f"slot_index must be ≥ 0 or None, got {self.slot_index}")
        op = self.action.op
        if op != LifecycleOp.WAIT and self.slot_index != self.action.slot:
            raise ValueError(f"{op.name} targets slot {self.action.slot} but slot_index is {self.slot_index}")
        for head in HEAD_NAMES:
            value = int(getattr(self.action, head))
            if head not in HEAD_RELEVANCE[op] and value != IRRELEVANT_HEAD_VALUE[head]:
                raise ValueError(
                    f"head {head!r} is irrelevant to {op.name} and must be {IRRELEVANT_HEAD_VALUE[head]}, got {value}"
                )

    @property
    def op(self) -> LifecycleOp:
        return self.action.op

    @property
    def blueprint_id(self) -> str | None:
        """The germinated blueprint's id, or None when the decision does not germinate."""
        return self.action.blueprint_id if self.op == LifecycleOp.GERMINATE else None

    def __str__(self) -> str:
        parts = [self.op.name]
        if self.slot_index is not None:
            parts.append(f"slot={self.slot_index}")
        if self.blueprint_id is not None:
            parts.append(f"blueprint={self.blueprint_id}")
        return f"{' '.join(parts)} | {self.reason} | confidence={self.confidence:.2f}"
