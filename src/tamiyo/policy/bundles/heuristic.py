"""The rule-based controller as a bundle, so its episodes run and log exactly like a learned policy's.

The controller's memory (blueprint penalties, rotation position, last prune and decay epochs) is
per env and lives in `hidden`, a `ControllerStates` holding one controller state dict per env. Like
an LSTM state, it is reset with `initial_hidden(num_envs)` at episode start and threaded from one
`get_action` to the next; the bundle itself holds only the rule engine, which is loaded with each
env's state before deciding for that env.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.bundles.base import FixedPolicyBundle
from tamiyo.policy.heuristic import HeuristicConfig, HeuristicController
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import ActionResult
from tamiyo.policy.registry import register_policy


@dataclass(frozen=True)
class ControllerStates:
    """Per-env heuristic controller state, the heuristic bundle's `hidden` (a distinct type, so it is
    never mistaken for an LSTM `(h, c)` tuple)."""

    states: tuple[dict[str, object], ...]

    def __len__(self) -> int:
        return len(self.states)


@register_policy("heuristic")
class HeuristicPolicyBundle(FixedPolicyBundle):
    """Decisions of `HeuristicController` (configured by `HeuristicConfig` fields), log-prob 0."""

    name = "heuristic"
    options_type = HeuristicConfig

    def __init__(self, slot_config: SlotConfig, topology: str, obs_dim: int | None = None, **config: Any) -> None:
        super().__init__(slot_config, topology, obs_dim)
        self._controller = HeuristicController(HeuristicConfig(**config), topology)
        self._fresh_state = self._controller.state_dict()

    def initial_hidden(self, batch_size: int) -> ControllerStates:
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        return ControllerStates(tuple(copy.deepcopy(self._fresh_state) for _ in range(batch_size)))

    def get_action(
        self,
        obs: torch.Tensor,
        hidden: ControllerStates | None,
        masks: ActionMasks,
        deterministic: bool = False,
        context: ObservationBatch | None = None,
    ) -> ActionResult:
        """One controller decision per env; `hidden=None` starts every env fresh."""
        n = self._check_batch(obs, masks)
        context = self._check_context(context, n)
        states = self.initial_hidden(n) if hidden is None else hidden
        if len(states) != n:
            raise ValueError(f"hidden holds {len(states)} controller states but the batch has {n} envs")

        decisions, new_states = [], []
        for env, state in enumerate(states.states):
            self._controller.load_state_dict(state)
            decisions.append(self._controller.decide(*context.unpack(env)))
            new_states.append(self._controller.state_dict())

        device = masks.op.device
        indices = torch.tensor([d.action.to_indices() for d in decisions], dtype=torch.long, device=device)
        actions = {head: indices[:, i] for i, head in enumerate(HEAD_NAMES)}
        log_probs = {head: torch.zeros(n, device=device) for head in HEAD_NAMES}
        return self._result(actions, log_probs, masks.for_op(actions["op"]), ControllerStates(tuple(new_states)))
