"""The `PolicyBundle` protocol: what every controller (learned or rule-based) offers the rollout and PPO.

A bundle acts on feature tensors (`tamiyo.policy.features`) under `ActionMasks`, and returns the
same `ActionResult` / `EvalResult` records as the network, so the training loop never special-cases
a baseline. Rule-based bundles additionally read the raw `ObservationBatch` passed as `context`.

`hidden` is opaque to the caller: pass `initial_hidden(num_envs)` at episode start, then thread each
`ActionResult.hidden` into the next call. It is an LSTM `(h, c)` pair, per-env controller state, or
None, depending on the bundle.

Every property must be cheap and must never raise: on Python 3.11 `isinstance(x, PolicyBundle)`
evaluates each protocol member with `hasattr`, so a raising property would make the check raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from torch import nn

    from tamiyo.core.observation import ObservationBatch
    from tamiyo.core.slots import SlotConfig
    from tamiyo.policy.masks import ActionMasks
    from tamiyo.policy.network import ActionResult, EvalResult

# "off" keeps eager mode; the others are `torch.compile` modes.
COMPILE_MODES: tuple[str, ...] = ("off", "default", "reduce-overhead", "max-autotune")


def validate_compile_mode(mode: str) -> str:
    """Return `mode` unchanged, or raise ValueError naming it and the accepted modes."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {list(COMPILE_MODES)}")
    return mode


@runtime_checkable
class PolicyBundle(Protocol):
    """A controller as seen by the rollout, the PPO update and checkpointing."""

    def get_action(
        self,
        obs: torch.Tensor,
        hidden: Any,
        masks: ActionMasks,
        deterministic: bool = False,
        context: ObservationBatch | None = None,
    ) -> ActionResult:
        """Choose one legal factored action per env from features `obs [N, obs_dim]` (no gradients)."""
        ...

    def evaluate_actions(
        self,
        obs: torch.Tensor,
        actions: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        hidden: Any = None,
    ) -> EvalResult:
        """Log-probs, normalised entropies and values of stored actions `[B, T]` (with gradients)."""
        ...

    def get_value(self, obs: torch.Tensor, hidden: Any = None) -> torch.Tensor:
        """State value of `obs [N, obs_dim]` → `[N]` (no gradients), e.g. to bootstrap a rollout."""
        ...

    def initial_hidden(self, batch_size: int) -> Any:
        """Fresh recurrent/controller state for `batch_size` envs at the start of an episode."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Checkpointable state; keys never carry a `torch.compile` prefix."""
        ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        ...

    def to(self, device: torch.device | str) -> PolicyBundle:
        """Move to `device` and return self; refused once the bundle is compiled."""
        ...

    def compile(self, mode: str) -> None:
        """Compile the network in place (after device placement); a no-op for "off" or no network."""
        ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def is_recurrent(self) -> bool: ...

    @property
    def is_trainable(self) -> bool: ...

    @property
    def slot_config(self) -> SlotConfig: ...

    @property
    def obs_dim(self) -> int: ...

    @property
    def hidden_dim(self) -> int: ...

    @property
    def network(self) -> nn.Module | None:
        """The trainable module (for the optimiser and gradient clipping), or None."""
        ...

    @property
    def is_compiled(self) -> bool: ...


# The member names a registered bundle class must define, derived from the protocol so they cannot drift.
PROTOCOL_MEMBERS: tuple[str, ...] = tuple(sorted(name for name in vars(PolicyBundle) if not name.startswith("_")))
