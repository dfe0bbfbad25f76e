"""Head relevance for a sampled or stored op: the one place that decides which heads count.

A head that is irrelevant to the op takes `IRRELEVANT_HEAD_VALUE` and contributes log-prob 0 and
entropy 0, so it gets no gradient and no entropy bonus. Both `get_action` and `evaluate_actions` go
through `HeadRelevance`, which keeps the rollout's log-probs and the update's log-probs in agreement.
Per-head tensors are stacked in the last dim in `HEAD_NAMES` order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tamiyo.core.actions import HEAD_NAMES, IRRELEVANT_HEAD_VALUE, relevance_table

# `[op, head]` relevance and `[head]` irrelevant values, moved to the op's device where they are used (a no-op on the
# CPU); plain constants, which a compiled policy traces as such.
_RELEVANCE = torch.tensor(relevance_table(), dtype=torch.bool)
_IRRELEVANT_VALUES = torch.tensor([IRRELEVANT_HEAD_VALUE[name] for name in HEAD_NAMES])


class HeadRelevance:
    """Relevance of every head for each op in `op` (any shape): `relevant` is `[*op.shape, heads]` bool."""

    def __init__(self, op: Tensor) -> None:
        self._irrelevant_values = _IRRELEVANT_VALUES.to(op.device)
        self.relevant = _RELEVANCE.to(op.device)[op]

    def fill_actions(self, actions: Tensor) -> Tensor:
        """Per-head actions `[..., heads]` with irrelevant heads set to their `IRRELEVANT_HEAD_VALUE`."""
        return torch.where(self.relevant, actions, self._irrelevant_values)

    def zero_irrelevant(self, per_head: Tensor) -> Tensor:
        """Per-head log-probs or entropies `[..., heads]` with irrelevant heads set to exactly 0."""
        return torch.where(self.relevant, per_head, 0.0)
