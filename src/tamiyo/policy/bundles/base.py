"""Shared behaviour of the network-free bundles (random, static, heuristic) and the legality check.

These bundles have nothing to train: `evaluate_actions` refuses, `network` is None, the value is
0 and log-probs are those of their own (deterministic or uniform) choice rule, so the rollout can
log their episodes exactly like a learned policy's.
"""

from __future__ import annotations

from typing import Any

import torch

from tamiyo.core.actions import HEAD_NAMES, topology_blueprints
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.features import obs_dim as feature_width
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import ActionResult, EvalResult
from tamiyo.policy.protocol import validate_compile_mode
from tamiyo.policy.relevance import HeadRelevance


class NotTrainableError(RuntimeError):
    """A gradient-based method was called on a bundle without trainable parameters."""


class MaskViolationError(RuntimeError):
    """A bundle produced an action that its own masks forbid."""


def check_legal(actions: dict[str, torch.Tensor], masks_used: dict[str, torch.Tensor], policy: str) -> None:
    """Raise `MaskViolationError` unless every head relevant to the chosen op is allowed by its mask.

    Irrelevant heads are skipped: they hold `IRRELEVANT_HEAD_VALUE`, which masks need not allow.
    One reduction over all heads, so the check costs a single device sync.
    """
    chosen_allowed = torch.stack(
        [masks_used[head].gather(1, actions[head].unsqueeze(1)).squeeze(1) for head in HEAD_NAMES], dim=1
    )  # [N, heads]
    allowed = chosen_allowed | ~HeadRelevance(actions["op"]).relevant
    if bool(allowed.all()):
        return
    env, head_index = (int(i) for i in (~allowed).nonzero()[0])
    head = HEAD_NAMES[head_index]
    raise MaskViolationError(
        f"{policy} policy chose illegal {head}={int(actions[head][env])} for env {env} "
        f"(op={int(actions['op'][env])}); allowed: {masks_used[head][env].nonzero().flatten().tolist()}"
    )


class FixedPolicyBundle:
    """Base class of bundles without a network; subclasses implement `get_action` (and `initial_hidden`)."""

    name: str  # registry name, used in error messages

    def __init__(self, slot_config: SlotConfig, topology: str, obs_dim: int | None = None) -> None:
        """`obs_dim` is the width of the features the bundle is given (default: the slot config's)."""
        topology_blueprints(topology)  # validates the name
        self._slot_config = slot_config
        self.topology = topology
        self._obs_dim = feature_width(slot_config.num_slots) if obs_dim is None else obs_dim
        self._device = torch.device("cpu")

    def _result(
        self,
        actions: dict[str, torch.Tensor],
        log_probs: dict[str, torch.Tensor],
        masks_used: dict[str, torch.Tensor],
        hidden: Any,
    ) -> ActionResult:
        """Check legality, then package the choice with a zero value."""
        check_legal(actions, masks_used, self.name)
        value = torch.zeros(actions["op"].shape[0], device=actions["op"].device)
        return ActionResult(actions=actions, log_probs=log_probs, value=value, hidden=hidden, masks=masks_used)

    def _check_batch(self, obs: torch.Tensor, masks: ActionMasks) -> int:
        """The number of envs, after checking that `obs` is `[N, obs_dim]` with N matching the masks."""
        if tuple(obs.shape) != (masks.num_envs, self._obs_dim):
            raise ValueError(f"obs must be [{masks.num_envs}, {self._obs_dim}] to match the masks and obs_dim, "
                             f"got {list(obs.shape)}")
        return masks.num_envs

    def _check_context(self, context: ObservationBatch | None, num_envs: int) -> ObservationBatch:
        """The raw observations a rule-based bundle decides from, checked against the batch size."""
        if context is None:
            raise ValueError(f"the {self.name!r} policy decides from raw observations: pass context=ObservationBatch")
        if context.num_envs != num_envs:
            raise ValueError(f"context has {context.num_envs} envs but the masks have {num_envs}")
        return context

    def evaluate_actions(
        self,
        obs: torch.Tensor,
        actions: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        hidden: Any = None,
    ) -> EvalResult:
        raise NotTrainableError(f"the {self.name!r} policy has no trainable parameters; evaluate_actions needs "
                                "a trainable bundle such as 'lstm'")

    def get_value(self, obs: torch.Tensor, hidden: Any = None) -> torch.Tensor:
        """Always 0: a fixed policy carries no value estimate."""
        return torch.zeros(obs.shape[:-1], device=obs.device)

    def initial_hidden(self, batch_size: int) -> Any:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            raise ValueError(f"the {self.name!r} policy has no state, got keys {sorted(state_dict)[:5]}")

    def to(self, device: torch.device | str) -> FixedPolicyBundle:
        self._device = torch.device(device)
        return self

    def compile(self, mode: str) -> None:
        """Nothing to compile; the mode is still validated so a typo never passes silently."""
        validate_compile_mode(mode)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def is_recurrent(self) -> bool:
        return False

    @property
    def is_trainable(self) -> bool:
        return False

    @property
    def slot_config(self) -> SlotConfig:
        return self._slot_config

    @property
    def obs_dim(self) -> int:
        return self._obs_dim

    @property
    def hidden_dim(self) -> int:
        return 0

    @property
    def network(self) -> None:
        return None

    @property
    def is_compiled(self) -> bool:
        return False
