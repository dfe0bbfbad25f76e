"""The learned policy: `FactoredRecurrentActorCritic` behind the `PolicyBundle` interface.

Compilation never wraps the module: the bundle compiles the network's `evaluate_actions` (the PPO
update's forward and backward over whole rollouts, where compilation can pay off), so `network`
stays the plain module that the optimiser, gradient clipping and checkpoints see, and state-dict keys
never gain `_orig_mod.`. Compiled and eager checkpoints are therefore the same thing. Once compiled,
the bundle refuses to move or change dtype: the graphs were specialised to the placement they were
traced on.

`get_action` stays eager: it runs under `torch.inference_mode()`, and inductor crashes on view ops
under inference mode ("Cannot set version_counter for inference tensor", pytorch/pytorch#180823).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from tamiyo.core.actions import topology_blueprints
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.features import obs_dim as feature_width
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import ActionResult, EvalResult, FactoredRecurrentActorCritic, Hidden
from tamiyo.policy.protocol import validate_compile_mode
from tamiyo.policy.registry import register_policy


class CompiledPlacementError(RuntimeError):
    """A compiled bundle was asked to change device or dtype."""


@register_policy("lstm")
class LSTMPolicyBundle:
    """Factored recurrent actor-critic; `obs_dim` defaults to the feature width of the slot config."""

    name = "lstm"

    def __init__(
        self,
        slot_config: SlotConfig,
        topology: str,
        obs_dim: int | None = None,
        feature_dim: int = 128,
        hidden_dim: int = 128,
        num_layers: int = 1,
        op_conditioning: bool = True,
        op_init_logits: Mapping[str, float] | None = None,
    ) -> None:
        topology_blueprints(topology)  # validates the name
        self.topology = topology
        self._slot_config = slot_config
        self._network = FactoredRecurrentActorCritic(
            obs_dim=feature_width(slot_config.num_slots) if obs_dim is None else obs_dim,
            slot_config=slot_config,
            feature_dim=feature_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            op_conditioning=op_conditioning,
            op_init_logits=op_init_logits,
        )
        self._compile_mode = "off"
        self._evaluate_actions: Callable[..., EvalResult] = self._network.evaluate_actions

    # ---- acting and learning ----

    def get_action(
        self,
        obs: Tensor,
        hidden: Hidden | None,
        masks: ActionMasks,
        deterministic: bool = False,
        context: ObservationBatch | None = None,
    ) -> ActionResult:
        """Sample (or arg-max) one action per env under inference mode; `context` is not needed."""
        return self._network.get_action(obs, hidden, masks, deterministic)

    def evaluate_actions(
        self,
        obs: Tensor,
        actions: Mapping[str, Tensor],
        masks: Mapping[str, Tensor],
        hidden: Hidden | None = None,
    ) -> EvalResult:
        return self._evaluate_actions(obs, actions, masks, hidden)

    def get_value(self, obs: Tensor, hidden: Hidden | None = None) -> Tensor:
        """Value of `obs [B, D]` → `[B]` (or `[B, T, D]` → `[B, T]`), without gradients.

        Called once per rollout (to bootstrap), so it stays eager.
        """
        with torch.inference_mode():
            if obs.dim() == 2:
                return self._network.value(obs.unsqueeze(1), hidden)[:, 0]
            return self._network.value(obs, hidden)

    def initial_hidden(self, batch_size: int) -> Hidden:
        """Zero `(h, c)`, each `[num_layers, batch_size, hidden_dim]`, usable in rollouts and training."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        return self._network.initial_hidden(batch_size)

    # ---- state ----

    def state_dict(self) -> dict[str, Any]:
        return self._network.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self._network.load_state_dict(state_dict)

    # ---- placement and compilation ----

    def _refuse_if_compiled(self, method: str) -> None:
        if self.is_compiled:
            raise CompiledPlacementError(
                f"cannot call .{method}() on a policy compiled with mode {self._compile_mode!r}: "
                "create the policy on the target device and compile after placement"
            )

    def to(self, device: torch.device | str) -> LSTMPolicyBundle:
        self._refuse_if_compiled("to")
        self._network.to(device)
        return self

    def cuda(self) -> LSTMPolicyBundle:
        self._refuse_if_compiled("cuda")
        self._network.cuda()
        return self

    def cpu(self) -> LSTMPolicyBundle:
        self._refuse_if_compiled("cpu")
        self._network.cpu()
        return self

    def half(self) -> LSTMPolicyBundle:
        self._refuse_if_compiled("half")
        self._network.half()
        return self

    def float(self) -> LSTMPolicyBundle:
        self._refuse_if_compiled("float")
        self._network.float()
        return self

    def double(self) -> LSTMPolicyBundle:
        self._refuse_if_compiled("double")
        self._network.double()
        return self

    def bfloat16(self) -> LSTMPolicyBundle:
        self._refuse_if_compiled("bfloat16")
        self._network.bfloat16()
        return self

    def compile(self, mode: str) -> None:
        """Compile `evaluate_actions` with `torch.compile(mode=mode, dynamic=True)` (traced on first call).

        "off" does nothing. Compiling again with the same mode is a no-op; with another mode it raises
        (build a fresh bundle instead). `dynamic=True` avoids a recompile per batch size.
        """
        validate_compile_mode(mode)
        if mode == "off" or mode == self._compile_mode:
            return
        if self.is_compiled:
            raise RuntimeError(
                f"policy is already compiled with mode {self._compile_mode!r}; cannot recompile as {mode!r}"
            )
        self._evaluate_actions = torch.compile(self._network.evaluate_actions, mode=mode, dynamic=True)
        self._compile_mode = mode

    # ---- properties (cheap, never raise) ----

    @property
    def device(self) -> torch.device:
        return next(self._network.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._network.parameters()).dtype

    @property
    def is_recurrent(self) -> bool:
        return True

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def slot_config(self) -> SlotConfig:
        return self._slot_config

    @property
    def obs_dim(self) -> int:
        return self._network.obs_dim

    @property
    def hidden_dim(self) -> int:
        return self._network.hidden_dim

    @property
    def num_layers(self) -> int:
        return self._network.num_layers

    @property
    def op_conditioning(self) -> bool:
        return self._network.op_conditioning

    @property
    def network(self) -> FactoredRecurrentActorCritic:
        return self._network

    @property
    def is_compiled(self) -> bool:
        return self._compile_mode != "off"

    @property
    def compile_mode(self) -> str:
        return self._compile_mode
