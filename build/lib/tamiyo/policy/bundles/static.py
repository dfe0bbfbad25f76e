"""The no-growth baseline: every env waits every epoch, so the host trains alone."""

from __future__ import annotations

from typing import Any

import torch

from tamiyo.core.actions import HEAD_NAMES, IRRELEVANT_HEAD_VALUE
from tamiyo.core.observation import ObservationBatch
from tamiyo.policy.bundles.base import FixedPolicyBundle
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import ActionResult
from tamiyo.policy.registry import register_policy


@register_policy("static")
class StaticPolicyBundle(FixedPolicyBundle):
    """Always WAIT (every head at its irrelevant value) with log-prob 0: a deterministic choice."""

    name = "static"

    def get_action(
        self,
        obs: torch.Tensor,
        hidden: Any,
        masks: ActionMasks,
        deterministic: bool = False,
        context: ObservationBatch | None = None,
    ) -> ActionResult:
        n = self._check_batch(obs, masks)
        device = masks.op.device
        actions = {
            head: torch.full((n,), IRRELEVANT_HEAD_VALUE[head], dtype=torch.long, device=device)
            for head in HEAD_NAMES
        }
        log_probs = {head: torch.zeros(n, device=device) for head in actions}
        return self._result(actions, log_probs, masks.for_op(actions["op"]), hidden)
