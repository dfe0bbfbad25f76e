"""The sanity baseline: a uniformly random choice among the legal actions.

The op is drawn uniformly among the legal ops, then every other head uniformly under the masks that
op implies (`ActionMasks.for_op`), so an illegal (op, slot) pair is never drawn. Log-probs are the
true uniform ones, −log(number of allowed choices), for the heads relevant to the op and 0 for the
others (which take their irrelevant-head value), exactly as for the learned policy.
"""

from __future__ import annotations

from typing import Any

import torch

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.bundles.base import FixedPolicyBundle
from tamiyo.policy.distribution import InvalidStateMachineError
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import ActionResult
from tamiyo.policy.registry import register_policy
from tamiyo.policy.relevance import HeadRelevance


@register_policy("random")
class RandomPolicyBundle(FixedPolicyBundle):
    """Uniform over the valid actions; `deterministic` is ignored (a uniform policy has no mode).

    With `seed` set, draws come from a private `torch.Generator` (reproducible whatever else consumes
    randomness); without it, from torch's default generator (`torch.manual_seed` governs it).
    Moving the bundle to another device restarts the private generator from `seed`.
    """

    name = "random"

    def __init__(
        self, slot_config: SlotConfig, topology: str, obs_dim: int | None = None, seed: int | None = None
    ) -> None:
        super().__init__(slot_config, topology, obs_dim)
        self.seed = seed
        self._generator = self._make_generator()

    def _make_generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(self.seed)

    def to(self, device: torch.device | str) -> RandomPolicyBundle:
        super().to(device)
        self._generator = self._make_generator()
        return self

    def get_action(
        self,
        obs: torch.Tensor,
        hidden: Any,
        masks: ActionMasks,
        deterministic: bool = False,
        context: ObservationBatch | None = None,
    ) -> ActionResult:
        self._check_batch(obs, masks)
        _require_choices({"op": masks.op})
        op = self._uniform(masks.op)
        masks_used = masks.for_op(op)
        _require_choices(masks_used)
        drawn = torch.stack([op if head == "op" else self._uniform(masks_used[head]) for head in HEAD_NAMES], dim=1)
        uniform_log_probs = torch.stack([-masks_used[head].sum(dim=1).float().log() for head in HEAD_NAMES], dim=1)
        relevance = HeadRelevance(op)
        actions = _split(relevance.fill_actions(drawn))
        log_probs = _split(relevance.zero_irrelevant(uniform_log_probs))
        return self._result(actions, log_probs, masks_used, hidden)

    def _uniform(self, mask: torch.Tensor) -> torch.Tensor:
        """One index per row, uniformly among the True entries."""
        return torch.multinomial(mask.float(), 1, generator=self._generator).squeeze(1)


def _require_choices(masks: dict[str, torch.Tensor]) -> None:
    """Every row of every mask must allow something (one device sync for all heads)."""
    empty_rows = torch.stack([~mask.any(dim=1) for mask in masks.values()])  # [heads, N]
    if bool(empty_rows.any()):
        head_index, env = (int(i) for i in empty_rows.nonzero()[0])
        raise InvalidStateMachineError(f"head {list(masks)[head_index]!r} has no valid action for env {env}")


def _split(per_head: torch.Tensor) -> dict[str, torch.Tensor]:
    """`[N, heads]` in `HEAD_NAMES` order → one `[N]` tensor per head."""
    return dict(zip(HEAD_NAMES, per_head.unbind(dim=1), strict=True))
