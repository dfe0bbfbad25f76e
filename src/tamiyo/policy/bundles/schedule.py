"""A fixed growth schedule: germinate one blueprint in chosen slots, then advance and fossilize ASAP.

The strongest simple baseline a learned controller must beat: it never looks at accuracy, only at
the slot stages, so it is an open-loop plan. Each epoch it takes one action, the first that applies:

0. only with `prune_dead`, `prune_unstable` or `prune_below` set (closed-loop variants, no longer fixed
   plans): PRUNE, instantly, a scheduled seed that is dead (`prune_dead`: no gradient reached it in its
   TRAINING epoch, so it can never learn), whose gradient ratio exceeds `prune_unstable` while it trains or
   blends (updates out of scale with the host's: an unstable seed, caught in TRAINING before its output
   reaches the host), or whose measured counterfactual contribution is below `prune_below` accuracy
   points, as soon as pruning is legal (alpha settled); its slot is germinated again by rule 1 once the
   embargo has passed, while the seed budget allows;
1. GERMINATE the first scheduled slot that is empty (from `start_epoch` on, while the seed budget
   allows), so every scheduled seed starts as early as possible; with `germinate_on_plateau: N` (closed
   loop) only once the host has gained less than half a point of validation accuracy for N epochs in a
   row (the observation's plateau count), so growth waits until the host stops learning on its own; with
   `germinate_below: A` (closed loop) only while the host's training accuracy is below A percent, so a host
   that fits its training data is not grown (an underfitting one lacks capacity, a fitting one does not);
2. FOSSILIZE a HOLDING seed;
3. ADVANCE a seed: the one longest in its stage among those whose gate can pass (a blending seed
   only once its alpha settled); if none can, the longest anyway (a failed gate changes nothing);
4. otherwise WAIT.

A partial `alpha_target` (half, seventy) keeps a seed blending for good: reaching HOLDING needs alpha 1.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch

from tamiyo.core.actions import (
    BLUEPRINT_IDS,
    HEAD_NAMES,
    IRRELEVANT_HEAD_VALUE,
    AlphaCurveAction,
    AlphaSpeedAction,
    AlphaTargetAction,
    FactoredAction,
    GerminationStyle,
    LifecycleOp,
    TempoAction,
    blueprint_from_id,
    topology_blueprints,
)
from tamiyo.core.observation import ObservationBatch, SlotReport, TrainingSignals
from tamiyo.core.slots import SlotConfig
from tamiyo.core.stages import ADVANCE_TARGET, SeedStage
from tamiyo.core.values import is_number
from tamiyo.policy.bundles.base import FixedPolicyBundle
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import ActionResult
from tamiyo.policy.registry import register_policy


def _choice(enum: type, value: str, key: str) -> Any:
    names = [member.name.lower() for member in enum]
    if not isinstance(value, str) or value.lower() not in names:
        raise ValueError(f"schedule {key} must be one of {names}, got {value!r}")
    return enum[value.upper()]


def _action(**relevant: int) -> FactoredAction:
    """The given heads; every other head at its irrelevant value."""
    return FactoredAction.from_indices([relevant.get(head, IRRELEVANT_HEAD_VALUE[head]) for head in HEAD_NAMES])


def _is_unstable(report: SlotReport, threshold: float | None) -> bool:
    """A training or blending seed whose gradient ratio exceeds `threshold` (never, when `threshold` is None)."""
    return (threshold is not None and report.stage in (SeedStage.TRAINING, SeedStage.BLENDING)
            and report.gradient_ratio is not None and report.gradient_ratio > threshold)


def _is_below(report: SlotReport, threshold: float | None) -> bool:
    """A seed measured below `threshold` accuracy points (never, when `threshold` is None)."""
    return threshold is not None and report.counterfactual is not None and report.counterfactual < threshold


@register_policy("schedule")
class SchedulePolicyBundle(FixedPolicyBundle):
    """Germinate `blueprint` in `slots` ("all" or a list of slot ids) from `start_epoch`, then grow ASAP."""

    name = "schedule"

    def __init__(
        self,
        slot_config: SlotConfig,
        topology: str,
        obs_dim: int | None = None,
        blueprint: str = "conv_light",
        slots: str | Sequence[str] = "all",
        start_epoch: int = 0,
        style: str = "sigmoid_add",
        tempo: str = "standard",
        alpha_target: str = "full",
        prune_below: float | None = None,
        prune_dead: bool = False,
        prune_unstable: float | None = None,
        germinate_on_plateau: int | None = None,
        germinate_below: float | None = None,
    ) -> None:
        super().__init__(slot_config, topology, obs_dim)
        self.blueprint = blueprint_from_id(blueprint)
        if self.blueprint not in topology_blueprints(topology):
            available = sorted(b.name.lower() for b in topology_blueprints(topology))
            raise ValueError(f"schedule blueprint {blueprint!r} is not available for a {topology!r} host; "
                             f"choose one of {available}")
        if slots == "all":
            self.slot_indices = tuple(range(slot_config.num_slots))
        elif isinstance(slots, str) or not slots or len(set(slots)) != len(slots):
            raise ValueError(f"schedule slots must be 'all' or a non-empty list of distinct slot ids, got {slots!r}")
        else:
            unknown = [s for s in slots if s not in slot_config.slot_ids]
            if unknown:
                raise ValueError(f"schedule slots {unknown} are not enabled slots of this env: "
                                 f"{list(slot_config.slot_ids)}")
            self.slot_indices = tuple(slot_config.index_of(s) for s in slots)
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f"schedule start_epoch must be an integer ≥ 0, got {start_epoch!r}")
        self.start_epoch = start_epoch
        self.style = _choice(GerminationStyle, style, "style")
        self.tempo = _choice(TempoAction, tempo, "tempo")
        self.alpha_target = _choice(AlphaTargetAction, alpha_target, "alpha_target")
        if prune_below is not None and (isinstance(prune_below, bool) or not isinstance(prune_below, int | float)
                                        or not math.isfinite(prune_below)):
            raise ValueError(f"schedule prune_below must be a finite number of accuracy points or null, "
                             f"got {prune_below!r}")
        self.prune_below = prune_below
        if not isinstance(prune_dead, bool):
            raise ValueError(f"schedule prune_dead must be true or false, got {prune_dead!r}")
        self.prune_dead = prune_dead
        ratio_ok = isinstance(prune_unstable, int | float) and not isinstance(prune_unstable, bool)
        if prune_unstable is not None and not (ratio_ok and math.isfinite(prune_unstable) and prune_unstable > 0):
            raise ValueError(f"schedule prune_unstable must be a gradient ratio > 0 or null, got {prune_unstable!r}")
        self.prune_unstable = prune_unstable
        plateau_ok = isinstance(germinate_on_plateau, int) and not isinstance(germinate_on_plateau, bool)
        if germinate_on_plateau is not None and not (plateau_ok and germinate_on_plateau >= 1):
            raise ValueError(f"schedule germinate_on_plateau must be an integer ≥ 1 (flat epochs) or null, "
                             f"got {germinate_on_plateau!r}")
        self.germinate_on_plateau = germinate_on_plateau
        if germinate_below is not None and not (is_number(germinate_below) and 0 < germinate_below <= 100):
            raise ValueError(f"schedule germinate_below must be a training accuracy in (0, 100] percent or null, "
                             f"got {germinate_below!r}")
        self.germinate_below = germinate_below
        self._settings = {"start_epoch": start_epoch, "style": style, "tempo": tempo, "alpha_target": alpha_target,
                          "prune_below": prune_below, "prune_dead": prune_dead, "prune_unstable": prune_unstable,
                          "germinate_on_plateau": germinate_on_plateau, "germinate_below": germinate_below}
        self._slots = "all slots" if slots == "all" else "+".join(slots)

    def describe(self) -> str:
        """How tables name it, e.g. "schedule: conv_heavy in r0c2" or "schedule: conv_small in all slots, tempo=fast"
        (settings other than the defaults are listed)."""
        defaults = inspect.signature(type(self).__init__).parameters
        extras = "".join(f", {key}={value}" for key, value in self._settings.items() if value != defaults[key].default)
        return f"schedule: {BLUEPRINT_IDS[self.blueprint]} in {self._slots}{extras}"

    def decide(self, signals: TrainingSignals, reports: Sequence[SlotReport]) -> FactoredAction:
        """The schedule's action for one env (see the module docstring for the order of preference)."""
        for slot in self.slot_indices:
            report = reports[slot]
            failing = (self.prune_dead and report.is_dead or _is_unstable(report, self.prune_unstable)
                       or _is_below(report, self.prune_below))
            if failing and report.may_prune:
                return _action(op=LifecycleOp.PRUNE, slot=slot, alpha_speed=AlphaSpeedAction.INSTANT,
                               alpha_curve=AlphaCurveAction.LINEAR)
        budget_left = signals.max_seeds == 0 or signals.seeds_used < signals.max_seeds
        plateau = self.germinate_on_plateau is None or signals.plateau_epochs >= self.germinate_on_plateau
        underfits = self.germinate_below is None or signals.train_accuracy < self.germinate_below
        if signals.epoch >= self.start_epoch and budget_left and plateau and underfits:
            for slot in self.slot_indices:
                if reports[slot].stage == SeedStage.DORMANT:
                    return _action(op=LifecycleOp.GERMINATE, slot=slot, blueprint=self.blueprint,
                                       style=self.style, tempo=self.tempo, alpha_target=self.alpha_target)
        for slot in self.slot_indices:
            if reports[slot].stage == SeedStage.HOLDING:
                return _action(op=LifecycleOp.FOSSILIZE, slot=slot)
        advancing = [slot for slot in self.slot_indices if reports[slot].stage in ADVANCE_TARGET]
        if not advancing:
            return FactoredAction.wait()
        ready = [s for s in advancing if reports[s].stage != SeedStage.BLENDING or reports[s].alpha_holding]
        slot = max(ready or advancing, key=lambda s: reports[s].epochs_in_stage)
        return _action(op=LifecycleOp.ADVANCE, slot=slot)

    def get_action(
        self,
        obs: torch.Tensor,
        hidden: Any,
        masks: ActionMasks,
        deterministic: bool = False,
        context: ObservationBatch | None = None,
    ) -> ActionResult:
        n = self._check_batch(obs, masks)
        context = self._check_context(context, n)
        decisions = [self.decide(*context.unpack(env)).to_indices() for env in range(n)]
        device = masks.op.device
        indices = torch.tensor(decisions, dtype=torch.long, device=device)
        actions = {head: indices[:, i] for i, head in enumerate(HEAD_NAMES)}
        log_probs = {head: torch.zeros(n, device=device) for head in HEAD_NAMES}
        return self._result(actions, log_probs, masks.for_op(actions["op"]), hidden)
