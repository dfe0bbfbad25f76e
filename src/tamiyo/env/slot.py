"""One injection point of a host network: the seed it holds and that seed's lifecycle.

The slot owns the seed module, its lifecycle stage (every change goes through
`tamiyo.core.stages.check_transition`), the alpha controller and the seed's metrics, and it decides what
the injection point outputs in each stage:

* empty, GERMINATED, PRUNED/EMBARGOED/RESETTING: the host features, untouched;
* TRAINING: the host features bit for bit, while the seed (fed detached features) receives the
  gradient of the output, so it learns as if it replaced the host there without disturbing the host;
* BLENDING/HOLDING: host and seed composed by the alpha algorithm at the controller's alpha, with
  gradients flowing through the seed into the host;
* FOSSILIZED: composed at alpha 1 for good; its parameters now belong to the host's optimiser.

Operations that are not legal in the current stage raise; quality-gate failures return a falsy
`GateResult` with the reason, so the environment decides what a refused step means.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tamiyo.core.actions import (
    STYLE_TO_BLEND,
    AlphaAlgorithm,
    AlphaCurve,
    AlphaCurveAction,
    BlendShape,
    BlueprintAction,
    GerminationStyle,
)
from tamiyo.core.observation import SlotReport
from tamiyo.core.slots import parse_slot_id
from tamiyo.core.stages import (
    ADVANCE_TARGET,
    LIVE_STAGES,
    PRUNABLE_STAGES,
    SeedStage,
    check_transition,
)
from tamiyo.env.alpha import DEFAULT_STEEPNESS, AlphaController, check_ramp_steps, curve_action
from tamiyo.env.blending import GateNetwork, blend, check_layout, per_sample_alpha
from tamiyo.env.gates import FULL_ALPHA, GateConfig, GateResult, check_gate
from tamiyo.env.metrics import SeedMetrics

EMBARGO_EPOCHS = 5  # cool-down after a prune before the slot starts resetting
RESETTING_EPOCHS = 1
CONTRIBUTION_VELOCITY_DECAY = 0.7
GRADIENT_RATIO_EMA_DECAY = 0.9

# The germination ramp's curve comes from the style's blend shape. GATED ramps linearly so the gate
# sees a usable alpha early instead of the near-zero start of a sigmoid.
_BLEND_RAMP: dict[BlendShape, tuple[AlphaCurve, float]] = {
    BlendShape.LINEAR: (AlphaCurve.LINEAR, DEFAULT_STEEPNESS),
    BlendShape.SIGMOID: (AlphaCurve.SIGMOID, DEFAULT_STEEPNESS),
    BlendShape.GATED: (AlphaCurve.LINEAR, DEFAULT_STEEPNESS),
}


class IllegalSlotOperationError(ValueError):
    """A lifecycle operation that is not legal in the slot's current stage or alpha state."""


@dataclass(frozen=True)
class SlotSnapshot:
    """Everything needed to put a slot back as it was: lifecycle state and copies of its modules."""

    lifecycle: dict[str, Any]
    seed: nn.Module | None
    gate: GateNetwork | None


class _StraightThrough(torch.autograd.Function):
    """Forward: the host features unchanged. Backward: the output's gradient to both host and seed.

    Unlike `h + (s - s.detach())` the forward value is exact even for -0.0 or a non-finite seed output.
    """

    @staticmethod
    def forward(ctx: Any, host: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
        return host.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grad, grad


class SeedSlot(nn.Module):
    """The seed slot of one injection point; hosts call `slot(h)` with features in `layout`."""

    def __init__(self, slot_id: str, channels: int, layout: str, gates: GateConfig | None = None) -> None:
        super().__init__()
        parse_slot_id(slot_id)
        if channels < 1:
            raise ValueError(f"slot {slot_id} channels must be ≥ 1, got {channels}")
        self.slot_id = slot_id
        self.channels = channels
        self.layout = check_layout(layout)
        self.gates = gates if gates is not None else GateConfig()
        self.register_module("seed", None)
        self.register_module("gate", None)
        # Alpha lives in a buffer so it follows the slot's device and compiled graphs read it as a tensor.
        self.register_buffer("_alpha", torch.zeros(()), persistent=False)
        self._alpha_override: float | torch.Tensor | None = None
        self._reset_lifecycle()

    # ---- state ----
    def _reset_lifecycle(self) -> None:
        self.seed = None
        self.gate = None
        self.stage = SeedStage.DORMANT
        self.epochs_in_stage = 0
        self.age = 0
        self.controller = AlphaController()
        self.curve_action = AlphaCurveAction.LINEAR
        self.alpha_algorithm = AlphaAlgorithm.ADD
        self.blend_shape = BlendShape.LINEAR
        self.tempo_epochs = 0
        self.blend_target = 0.0
        self.blueprint = BlueprintAction.NOOP
        self.metrics: SeedMetrics | None = None
        self.prune_pending = False
        self._sync_alpha()

    def _sync_alpha(self) -> None:
        self._alpha.fill_(self.controller.alpha)

    @property
    def alpha(self) -> float:
        return self.controller.alpha

    @property
    def is_empty(self) -> bool:
        """True when a seed can be germinated here."""
        return self.stage is SeedStage.DORMANT

    @property
    def has_seed(self) -> bool:
        return self.seed is not None

    def _seed_parameters(self) -> list[nn.Parameter]:
        if self.seed is None:
            return []
        gate = list(self.gate.parameters()) if self.gate is not None else []
        return [*self.seed.parameters(), *gate]

    def live_seed_parameters(self) -> list[nn.Parameter]:
        """Parameters for this slot's own seed optimiser: seed (and gate) of a live, undecided seed."""
        return self._seed_parameters() if self.stage in LIVE_STAGES else []

    def fossilized_parameters(self) -> list[nn.Parameter]:
        """Parameters of a fossilized seed (and gate); they are trained by the host's optimiser."""
        return self._seed_parameters() if self.stage is SeedStage.FOSSILIZED else []

    @property
    def seed_param_count(self) -> int:
        return sum(p.numel() for p in self._seed_parameters())

    def _transition(self, target: SeedStage) -> None:
        check_transition(self.stage, target)
        self.stage = target
        self.epochs_in_stage = 0
        if self.metrics is not None:
            self.metrics.accuracy_at_stage_start = self.metrics.current_accuracy

    def _require_alpha_holding(self, op: str) -> None:
        if not self.controller.is_holding:
            raise IllegalSlotOperationError(
                f"{op} on slot {self.slot_id} while alpha is moving {self.controller.mode.name} "
                f"(tick {self.controller.steps_done}/{self.controller.steps_total}); wait until alpha holds"
            )

    # ---- lifecycle operations ----
    def germinate(
        self,
        module: nn.Module,
        blueprint: BlueprintAction,
        style: GerminationStyle,
        tempo_epochs: int,
        alpha_target: float,
        accuracy: float,
    ) -> None:
        """Plant `module` (shape-preserving) in this empty slot. `style` fixes the blend ramp shape and
        alpha algorithm, `tempo_epochs` the ramp length and `alpha_target` its end; `accuracy` is the
        current validation accuracy (the seed's improvement baseline)."""
        check_transition(self.stage, SeedStage.GERMINATED)
        if not isinstance(module, nn.Module):
            raise TypeError(f"a seed must be an nn.Module, got {type(module).__name__}")
        blueprint = BlueprintAction(blueprint)
        if blueprint is BlueprintAction.NOOP:
            raise ValueError("cannot germinate the noop blueprint")
        style = GerminationStyle(style)
        if isinstance(tempo_epochs, bool) or not isinstance(tempo_epochs, int) or tempo_epochs < 1:
            raise ValueError(f"blend tempo must be an integer ≥ 1 epoch, got {tempo_epochs!r}")
        if not 0.0 < alpha_target <= 1.0:
            raise ValueError(f"germination alpha target must be in (0, 1], got {alpha_target}")
        if not math.isfinite(accuracy):
            raise ValueError(f"accuracy at germination must be finite, got {accuracy}")
        shape, algorithm = STYLE_TO_BLEND[style]
        device = self._alpha.device
        self.seed = module.to(device)
        self.gate = GateNetwork(self.channels, self.layout).to(device) if algorithm is AlphaAlgorithm.GATE else None
        self.blueprint = blueprint
        self.blend_shape = shape
        self.alpha_algorithm = algorithm
        self.tempo_epochs = tempo_epochs
        self.blend_target = float(alpha_target)
        self.metrics = SeedMetrics(accuracy, accuracy, accuracy)
        self.age = 0
        self._transition(SeedStage.GERMINATED)

    def plant_fossil(self, module: nn.Module, blueprint: BlueprintAction, algorithm: AlphaAlgorithm,
                     accuracy: float, alpha: float = 1.0) -> None:
        """Make `module` part of the network from the start: fossilized at `alpha`, never grown.

        For control networks (a grown architecture trained from scratch as a fixed network, at the alpha
        its seed ended with). It skips the lifecycle on purpose, so it needs an empty slot; `accuracy` is
        the current validation accuracy (the seed's improvement baseline)."""
        if self.stage is not SeedStage.DORMANT:
            raise IllegalSlotOperationError(f"a fossil can only be planted in an empty slot; {self.slot_id} is "
                                            f"{self.stage.name}")
        blueprint = BlueprintAction(blueprint)
        if blueprint is BlueprintAction.NOOP:
            raise ValueError("cannot plant the noop blueprint")
        algorithm = AlphaAlgorithm(algorithm)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"a fossil's alpha must be in [0, 1], got {alpha}")
        device = self._alpha.device
        self.seed = module.to(device)
        self.gate = GateNetwork(self.channels, self.layout).to(device) if algorithm is AlphaAlgorithm.GATE else None
        self.blueprint = blueprint
        self.alpha_algorithm = algorithm
        self.blend_target = float(alpha)
        self.controller = AlphaController(float(alpha))
        self.metrics = SeedMetrics(accuracy, accuracy, accuracy)
        self.stage = SeedStage.FOSSILIZED
        self._sync_alpha()

    def advance(self) -> GateResult:
        """GERMINATED → TRAINING → BLENDING → HOLDING, each behind its gate (G1, G2, G3).

        Entering BLENDING starts the ramp to the germination target over `tempo_epochs` ticks; the
        first tick happens in this epoch's `step_epoch`. HOLDING is left only by `fossilize`, `prune`
        or a partial `set_alpha_target`, never by ADVANCE."""
        target = ADVANCE_TARGET.get(self.stage)
        if target is None:
            hint = "; use fossilize()" if self.stage is SeedStage.HOLDING else ""
            raise IllegalSlotOperationError(
                f"ADVANCE is not legal on slot {self.slot_id} in stage {self.stage.name}{hint}"
            )
        result = self._check_gate(target)
        if not result:
            return result
        self._transition(target)
        if target is SeedStage.BLENDING:
            curve, steepness = _BLEND_RAMP[self.blend_shape]
            self.controller.retarget(self.blend_target, self.tempo_epochs, curve, steepness)
            self.curve_action = curve_action(curve, steepness)
            self._sync_alpha()
        return result

    def set_alpha_target(
        self,
        target: float,
        steps: int,
        curve: AlphaCurve = AlphaCurve.LINEAR,
        steepness: float = DEFAULT_STEEPNESS,
        alpha_algorithm: AlphaAlgorithm | None = None,
    ) -> None:
        """Ramp alpha to `target` ∈ (0, 1] over `steps` ticks (0 = now). Legal in BLENDING/HOLDING while
        alpha holds; a partial target from HOLDING returns the seed to BLENDING. `alpha_algorithm`, when
        given, switches the composition (a GATE switch gets a fresh gate)."""
        if self.stage not in (SeedStage.BLENDING, SeedStage.HOLDING):
            raise IllegalSlotOperationError(
                f"SET_ALPHA_TARGET is not legal on slot {self.slot_id} in stage {self.stage.name}"
            )
        self._require_alpha_holding("SET_ALPHA_TARGET")
        if not 0.0 < target <= 1.0:
            raise ValueError(f"alpha target must be in (0, 1] (removing a seed is PRUNE), got {target}")
        algorithm = self.alpha_algorithm if alpha_algorithm is None else AlphaAlgorithm(alpha_algorithm)
        action = curve_action(curve, steepness)
        self.controller.retarget(target, check_ramp_steps(steps), curve, steepness)
        self.curve_action = action
        if self.stage is SeedStage.HOLDING and target < FULL_ALPHA:
            self._transition(SeedStage.BLENDING)
        if algorithm is not self.alpha_algorithm:
            self.alpha_algorithm = algorithm
            is_gate = algorithm is AlphaAlgorithm.GATE
            self.gate = GateNetwork(self.channels, self.layout).to(self._alpha.device) if is_gate else None
        self._sync_alpha()

    def prune(
        self, steps: int = 0, curve: AlphaCurve = AlphaCurve.LINEAR, steepness: float = DEFAULT_STEEPNESS
    ) -> None:
        """Remove the seed: now when `steps` is 0 or alpha is already 0 (→ PRUNED, module dropped),
        otherwise ramp alpha down to 0 over `steps` ticks (from HOLDING via BLENDING) and remove it in
        the `step_epoch` that reaches 0."""
        if self.stage not in PRUNABLE_STAGES:
            check_transition(self.stage, SeedStage.PRUNED)  # raises with the allowed transitions
        self._require_alpha_holding("PRUNE")
        check_ramp_steps(steps)
        if steps == 0 or self.controller.alpha == 0.0:
            self._remove_seed()
            return
        action = curve_action(curve, steepness)
        self.controller.retarget(0.0, steps, curve, steepness)
        self.curve_action = action
        if self.stage is SeedStage.HOLDING:
            self._transition(SeedStage.BLENDING)
        self.prune_pending = True

    def _remove_seed(self) -> None:
        self._transition(SeedStage.PRUNED)
        self.seed = None
        self.gate = None
        self.controller = AlphaController()
        self.prune_pending = False
        self._sync_alpha()

    def fossilize(self) -> GateResult:
        """HOLDING → FOSSILIZED behind gate G5; the seed then stays blended at alpha 1 for good."""
        check_transition(self.stage, SeedStage.FOSSILIZED)
        result = self._check_gate(SeedStage.FOSSILIZED)
        if result:
            self._transition(SeedStage.FOSSILIZED)
        return result

    def step_epoch(self) -> bool:
        """Advance the timed lifecycle by one epoch; True when a scheduled prune removed the seed.

        BLENDING ticks alpha; a removed seed goes PRUNED → EMBARGOED at once (so the controller never
        observes PRUNED), then EMBARGOED for 5 epochs and RESETTING for 1 before the slot is empty."""
        pruned_now = False
        if self.stage is SeedStage.BLENDING:
            reached = self.controller.step()
            self._sync_alpha()
            if reached and self.prune_pending:
                self._remove_seed()
                pruned_now = True
        if self.stage is SeedStage.DORMANT:
            return pruned_now
        self.age += 1
        if self.stage is SeedStage.PRUNED:
            self._transition(SeedStage.EMBARGOED)
            return pruned_now
        self.epochs_in_stage += 1
        if self.stage is SeedStage.EMBARGOED and self.epochs_in_stage >= EMBARGO_EPOCHS:
            self._transition(SeedStage.RESETTING)
        elif self.stage is SeedStage.RESETTING and self.epochs_in_stage >= RESETTING_EPOCHS:
            self._transition(SeedStage.DORMANT)
            self._reset_lifecycle()
        return pruned_now

    # ---- metrics ----
    def _require_metrics(self) -> SeedMetrics:
        if self.metrics is None or self.seed is None:
            raise IllegalSlotOperationError(f"slot {self.slot_id} holds no seed (stage {self.stage.name})")
        return self.metrics

    def record_validation(self, accuracy: float, counterfactual: float | None) -> None:
        """Record this epoch's validation accuracy and, when measured, the seed's counterfactual
        contribution (accuracy with the seed minus with its alpha forced to 0, in points)."""
        metrics = self._require_metrics()
        metrics.current_accuracy = float(accuracy)
        if counterfactual is None:
            return
        if metrics.counterfactual is not None:
            change = counterfactual - metrics.counterfactual
            metrics.contribution_velocity = (
                CONTRIBUTION_VELOCITY_DECAY * metrics.contribution_velocity + (1 - CONTRIBUTION_VELOCITY_DECAY) * change
            )
        metrics.counterfactual = float(counterfactual)

    def record_gradient_ratio(self, ratio: float) -> None:
        """Record a per-parameter seed/host gradient-norm ratio (smoothed; strict G2 reads it)."""
        metrics = self._require_metrics()
        previous = metrics.gradient_ratio
        decay = GRADIENT_RATIO_EMA_DECAY
        metrics.gradient_ratio = float(ratio) if previous is None else decay * previous + (1 - decay) * float(ratio)

    # ---- gates ----
    def _check_gate(self, target: SeedStage) -> GateResult:
        return check_gate(target, self.gates, self._require_metrics(), self.epochs_in_stage, self.controller)

    # ---- forward ----
    @contextmanager
    def alpha_override(self, alpha: float | torch.Tensor) -> Iterator[None]:
        """Temporarily compose a blending/holding/fossilized seed at `alpha` (a float in [0, 1] or a
        per-sample `[B]` tensor, e.g. for a fused counterfactual pass over a repeated batch)."""
        if not isinstance(alpha, torch.Tensor):
            alpha = float(alpha)
            if not 0.0 <= alpha <= 1.0:
                raise ValueError(f"alpha override must be in [0, 1], got {alpha}")
        previous = self._alpha_override
        self._alpha_override = alpha
        try:
            yield
        finally:
            self._alpha_override = previous

    def force_alpha_zero(self) -> AbstractContextManager[None]:
        """Counterfactual view: the slot outputs the host features without running the seed."""
        return self.alpha_override(0.0)

    def _run_seed(self, seed_input: torch.Tensor) -> torch.Tensor:
        out = self.seed(seed_input)
        if out.shape != seed_input.shape:
            raise ValueError(
                f"seed {self.blueprint.name.lower()} at slot {self.slot_id} changed the feature shape "
                f"{list(seed_input.shape)} → {list(out.shape)}; seeds must be shape-preserving"
            )
        return out

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # Explicit `is` tests on purpose: torch.compile (2.13) installs no guard for `stage in <frozenset>`,
        # so a compiled host would keep running the graph of the stage it was first traced in.
        stage = self.stage
        if stage is SeedStage.TRAINING:
            if not torch.is_grad_enabled():
                return h  # the output is h either way; without a backward pass the seed has nothing to learn
            return _StraightThrough.apply(h, self._run_seed(h.detach()))
        if stage is not SeedStage.BLENDING and stage is not SeedStage.HOLDING and stage is not SeedStage.FOSSILIZED:
            return h
        alpha = self._alpha if self._alpha_override is None else self._alpha_override
        if isinstance(alpha, float):
            if alpha == 0.0:
                return h
        elif alpha.dim() == 1:
            alpha = per_sample_alpha(alpha, h)
        return blend(self.alpha_algorithm, h, self._run_seed(h), h, alpha, self.gate)

    # ---- reporting and rollback ----
    def report(self) -> SlotReport:
        if self.metrics is None:  # only an empty slot has no metrics
            return SlotReport.empty()
        ctl = self.controller
        return SlotReport(
            stage=self.stage,
            epochs_in_stage=self.epochs_in_stage,
            age=self.age,
            alpha=ctl.alpha,
            alpha_target=ctl.target,
            alpha_mode=ctl.mode,
            alpha_steps_total=ctl.steps_total,
            alpha_steps_done=ctl.steps_done,
            alpha_curve=self.curve_action,
            blend_tempo_epochs=self.tempo_epochs,
            alpha_algorithm=self.alpha_algorithm,
            blueprint=self.blueprint,
            counterfactual=self.metrics.counterfactual,
            contribution_velocity=self.metrics.contribution_velocity,
            improvement_since_stage_start=self.metrics.improvement_since_stage_start,
            total_improvement=self.metrics.total_improvement,
            seed_params=self.seed_param_count,
            gradient_ratio=self.metrics.gradient_ratio,
        )

    def snapshot(self) -> SlotSnapshot:
        """A copy of the slot's lifecycle state and seed/gate weights for a later `restore`."""
        lifecycle = {
            "stage": int(self.stage),
            "epochs_in_stage": self.epochs_in_stage,
            "age": self.age,
            "controller": self.controller.state_dict(),
            "curve_action": int(self.curve_action),
            "alpha_algorithm": int(self.alpha_algorithm),
            "blend_shape": int(self.blend_shape),
            "tempo_epochs": self.tempo_epochs,
            "blend_target": self.blend_target,
            "blueprint": int(self.blueprint),
            "metrics": None if self.metrics is None else dataclasses.asdict(self.metrics),
            "prune_pending": self.prune_pending,
        }
        return SlotSnapshot(lifecycle, copy.deepcopy(self.seed), copy.deepcopy(self.gate))

    def restore(self, snapshot: SlotSnapshot) -> None:
        """Put the slot back to `snapshot`. Seed and gate are fresh copies (new parameter objects), so
        optimisers holding this slot's parameters must be rebuilt."""
        state = snapshot.lifecycle
        device = self._alpha.device
        self.seed = None if snapshot.seed is None else copy.deepcopy(snapshot.seed).to(device)
        self.gate = None if snapshot.gate is None else copy.deepcopy(snapshot.gate).to(device)
        self.stage = SeedStage(state["stage"])
        self.epochs_in_stage = state["epochs_in_stage"]
        self.age = state["age"]
        self.controller = AlphaController()
        self.controller.load_state_dict(state["controller"])
        self.curve_action = AlphaCurveAction(state["curve_action"])
        self.alpha_algorithm = AlphaAlgorithm(state["alpha_algorithm"])
        self.blend_shape = BlendShape(state["blend_shape"])
        self.tempo_epochs = state["tempo_epochs"]
        self.blend_target = state["blend_target"]
        self.blueprint = BlueprintAction(state["blueprint"])
        self.metrics = None if state["metrics"] is None else SeedMetrics(**state["metrics"])
        self.prune_pending = state["prune_pending"]
        self._sync_alpha()

    def extra_repr(self) -> str:
        return f"slot_id={self.slot_id}, channels={self.channels}, layout={self.layout}, stage={self.stage.name}"

