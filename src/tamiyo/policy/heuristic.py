"""The rule-based controller: germinate on a plateau, walk one seed at a time through its lifecycle,
fossilize it on a clear improvement and prune it otherwise.

Rule order (`HeuristicController.decide`):
1. Blueprint penalties decay once per strictly increasing epoch, before anything is decided.
2. If any slot holds a live seed (GERMINATED/TRAINING/BLENDING/HOLDING), the FIRST one in slot order
   is managed and every other slot waits its turn:
   GERMINATED → ADVANCE; TRAINING → PRUNE when failing, else ADVANCE; BLENDING → PRUNE when
   failing, ADVANCE at full settled amplitude, else WAIT; HOLDING → PRUNE on the "ransomware"
   pattern, FOSSILIZE on strict improvement above the threshold, else PRUNE.
3. Otherwise germination is considered, checks in order: embargo after a prune, host stabilised,
   too early, seed budget and a free slot, plateau long enough → GERMINATE the next blueprint of
   the rotation into the first empty slot.

Every emitted action is legal (`tamiyo.core.legality`): a PRUNE that the rules refuse (seed younger
than one epoch, or alpha still moving) becomes a WAIT that says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from tamiyo.core.actions import (
    BLUEPRINT_IDS,
    HEAD_NAMES,
    IRRELEVANT_HEAD_VALUE,
    TOPOLOGY_BLUEPRINTS,
    AlphaCurveAction,
    AlphaSpeedAction,
    AlphaTargetAction,
    BlueprintAction,
    FactoredAction,
    GerminationStyle,
    LifecycleOp,
    TempoAction,
    blueprint_from_id,
    topology_blueprints,
)
from tamiyo.core.legality import illegal_reason
from tamiyo.core.observation import SlotReport, TrainingSignals
from tamiyo.core.stages import LIVE_STAGES, SeedStage
from tamiyo.policy.decisions import Decision

DEFAULT_ROTATIONS: dict[str, tuple[str, ...]] = {
    "cnn": ("conv_light", "conv_heavy", "attention", "norm", "depthwise"),
    "transformer": ("lora", "mlp_small", "attention", "norm", "lora_large"),
}

# Penalties that decay below this are forgotten.
PENALTY_FLOOR = 0.1
# Tolerance for "alpha has reached its full target".
_ALPHA_TOLERANCE = 1e-6
# Confidence of plateau germination and of fossilization saturates at this many epochs / points.
_CONFIDENCE_SCALE = 5.0


@dataclass(frozen=True)
class HeuristicConfig:
    """Thresholds of the heuristic. Improvements are in accuracy points.

    `blueprint_rotation=None` means the topology's default rotation (`DEFAULT_ROTATIONS`).
    """

    plateau_epochs_to_germinate: int = 3
    min_epochs_before_germinate: int = 5
    prune_after_epochs_without_improvement: int = 5
    prune_if_accuracy_drops_by: float = 2.0
    min_improvement_to_fossilize: float = 0.5
    embargo_epochs_after_prune: int = 5
    blueprint_rotation: tuple[str, ...] | None = None
    blueprint_penalty_on_prune: float = 2.0
    blueprint_penalty_decay: float = 0.5
    blueprint_penalty_threshold: float = 3.0
    ransomware_contribution_threshold: float = 0.1
    ransomware_improvement_threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.blueprint_rotation is not None:
            # Accept any sequence (e.g. a Hydra ListConfig) but store an immutable tuple.
            object.__setattr__(self, "blueprint_rotation", tuple(self.blueprint_rotation))
            if not self.blueprint_rotation:
                raise ValueError("blueprint_rotation must not be empty (use None for the topology default)")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value}")
        for name in ("plateau_epochs_to_germinate", "min_epochs_before_germinate",
                     "prune_after_epochs_without_improvement", "embargo_epochs_after_prune",
                     "prune_if_accuracy_drops_by", "blueprint_penalty_on_prune"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if not 0.0 <= self.blueprint_penalty_decay <= 1.0:
            raise ValueError(f"blueprint_penalty_decay must lie in [0, 1], got {self.blueprint_penalty_decay}")
        if self.blueprint_penalty_threshold <= 0:
            raise ValueError(f"blueprint_penalty_threshold must be > 0, got {self.blueprint_penalty_threshold}")


def resolve_rotation(rotation: tuple[str, ...] | None, topology: str) -> tuple[BlueprintAction, ...]:
    """The blueprints to rotate through for `topology`; entries the topology lacks raise ValueError."""
    available = sorted(BLUEPRINT_IDS[b] for b in topology_blueprints(topology))
    ids = DEFAULT_ROTATIONS[topology] if rotation is None else rotation
    invalid = sorted({bp for bp in ids if bp not in available})
    if invalid:
        raise ValueError(
            f"blueprint_rotation contains blueprints not available for topology {topology!r}: {invalid}. "
            f"Available: {available}"
        )
    return tuple(blueprint_from_id(bp) for bp in ids)


def _action(op: LifecycleOp, slot: int | None = None, **heads: int) -> FactoredAction:
    """A canonical factored action: heads not given take their irrelevant-head value."""
    values = dict(IRRELEVANT_HEAD_VALUE, op=int(op), **heads)
    if slot is not None:
        values["slot"] = slot
    return FactoredAction.from_indices([values[head] for head in HEAD_NAMES])


class HeuristicController:
    """Rule-based seed controller for one environment (see the module docstring for the rules).

    Its only state is the blueprint penalties, the rotation position and the epochs of the last
    prune and the last penalty decay; `state_dict()` exposes them as plain containers.
    """

    def __init__(self, config: HeuristicConfig, topology: str) -> None:
        self.config = config
        self.topology = topology
        self.rotation = resolve_rotation(config.blueprint_rotation, topology)
        self.reset()

    def reset(self) -> None:
        self._penalties: dict[str, float] = {}
        self._rotation_index = 0
        self._last_prune_epoch: int | None = None
        self._last_decay_epoch: int | None = None

    @property
    def penalties(self) -> dict[str, float]:
        """Current blueprint penalties by blueprint id (a copy)."""
        return dict(self._penalties)

    def state_dict(self) -> dict[str, object]:
        return {
            "penalties": dict(self._penalties),
            "rotation_index": self._rotation_index,
            "last_prune_epoch": self._last_prune_epoch,
            "last_decay_epoch": self._last_decay_epoch,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        expected = {"penalties", "rotation_index", "last_prune_epoch", "last_decay_epoch"}
        if set(state) != expected:
            raise ValueError(f"heuristic state needs exactly the keys {sorted(expected)}, got {sorted(state)}")
        penalties = dict(state["penalties"])  # type: ignore[call-overload]
        unknown = sorted(set(penalties) - set(BLUEPRINT_IDS))
        if unknown:
            raise ValueError(f"heuristic state has penalties for unknown blueprints {unknown}")
        rotation_index = int(state["rotation_index"])  # type: ignore[call-overload]
        if not 0 <= rotation_index < len(self.rotation):
            raise ValueError(f"rotation_index {rotation_index} out of range for a rotation of {len(self.rotation)}")
        epochs = {key: state[key] for key in ("last_prune_epoch", "last_decay_epoch")}
        for key, value in epochs.items():
            if value is not None and not isinstance(value, int):
                raise ValueError(f"heuristic state {key} must be an int or None, got {value!r}")
        self._penalties = {bp: float(p) for bp, p in penalties.items()}
        self._rotation_index = rotation_index
        self._last_prune_epoch = epochs["last_prune_epoch"]  # type: ignore[assignment]
        self._last_decay_epoch = epochs["last_decay_epoch"]  # type: ignore[assignment]

    def decide(self, signals: TrainingSignals, slots: list[SlotReport]) -> Decision:
        """One decision for this epoch, given the host signals and one report per slot (slot order)."""
        if not slots:
            raise ValueError("decide needs one SlotReport per slot, got none")
        self._decay_penalties(signals.epoch)
        for index, report in enumerate(slots):
            if report.stage in LIVE_STAGES:
                return self._manage_seed(index, report, signals.epoch)
        return self._consider_germination(signals, slots)

    # ---- penalties and rotation ----
    def _decay_penalties(self, epoch: int) -> None:
        if self._last_decay_epoch is not None and epoch <= self._last_decay_epoch:
            return
        decay = self.config.blueprint_penalty_decay
        self._penalties = {bp: p * decay for bp, p in self._penalties.items() if p * decay >= PENALTY_FLOOR}
        self._last_decay_epoch = epoch

    def _next_blueprint(self) -> BlueprintAction:
        """Next rotation entry below the penalty threshold; the position advances past skipped entries.

        If every entry is penalised at or above the threshold, the least penalised one (first in
        rotation order on ties) is returned and the position ends where it started.
        """
        threshold = self.config.blueprint_penalty_threshold
        for _ in self.rotation:
            blueprint = self.rotation[self._rotation_index]
            self._rotation_index = (self._rotation_index + 1) % len(self.rotation)
            if self._penalty(blueprint) < threshold:
                return blueprint
        return min(self.rotation, key=self._penalty)

    def _penalty(self, blueprint: BlueprintAction) -> float:
        return self._penalties.get(BLUEPRINT_IDS[blueprint], 0.0)

    # ---- germination ----
    def _consider_germination(self, signals: TrainingSignals, slots: list[SlotReport]) -> Decision:
        cfg = self.config
        epoch = signals.epoch
        if self._last_prune_epoch is not None:
            since = epoch - self._last_prune_epoch
            if since < cfg.embargo_epochs_after_prune:
                return _wait(f"Embargo ({since}/{cfg.embargo_epochs_after_prune} epochs since prune)")
        if not signals.host_stabilized:
            return _wait("Host not stabilized")
        if epoch < cfg.min_epochs_before_germinate:
            return _wait(f"Too early (epoch {epoch} < {cfg.min_epochs_before_germinate})")
        if signals.max_seeds > 0 and signals.seeds_used >= signals.max_seeds:
            return _wait(f"Seed budget spent ({signals.seeds_used}/{signals.max_seeds})")
        empty = next((i for i, report in enumerate(slots) if report.is_empty), None)
        if empty is None:
            return _wait("No empty slot to germinate into")
        plateau = signals.plateau_epochs
        if plateau < cfg.plateau_epochs_to_germinate:
            return _wait(f"Training progressing normally (plateau {plateau}/{cfg.plateau_epochs_to_germinate})")
        blueprint = self._next_blueprint()
        action = _action(
            LifecycleOp.GERMINATE,
            empty,
            blueprint=int(blueprint),
            style=int(GerminationStyle.SIGMOID_ADD),
            tempo=int(TempoAction.STANDARD),
            alpha_target=int(AlphaTargetAction.FULL),
        )
        reason = f"Plateau detected ({plateau} epochs): germinate {BLUEPRINT_IDS[blueprint]}"
        return Decision(action, empty, reason, min(1.0, plateau / _CONFIDENCE_SCALE))

    # ---- seed management ----
    def _manage_seed(self, index: int, seed: SlotReport, epoch: int) -> Decision:
        improvement = seed.improvement_since_stage_start
        if seed.stage == SeedStage.GERMINATED:
            return _advance(index, "Advance to TRAINING")
        if seed.stage == SeedStage.TRAINING:
            if self._is_failing(seed):
                return self._prune(index, seed, epoch, f"Failing in TRAINING ({improvement:+.2f}%)")
            return _advance(index, f"Advance to BLENDING (improvement {improvement:+.2f}%)")
        if seed.stage == SeedStage.BLENDING:
            if self._is_failing(seed):
                return self._prune(index, seed, epoch, f"Failing in BLENDING ({improvement:+.2f}%)")
            at_full_amplitude = (
                seed.alpha_target >= 1.0 - _ALPHA_TOLERANCE
                and seed.alpha_holding
                and abs(seed.alpha - seed.alpha_target) <= _ALPHA_TOLERANCE
            )
            if at_full_amplitude:
                return _advance(index, "Advance to HOLDING (full amplitude reached)")
            return _wait(f"Blending: alpha={seed.alpha:.2f} toward {seed.alpha_target:.2f}", index)
        return self._judge_holding(index, seed, epoch)

    def _is_failing(self, seed: SlotReport) -> bool:
        cfg = self.config
        return (
            seed.epochs_in_stage >= cfg.prune_after_epochs_without_improvement
            and seed.improvement_since_stage_start < -cfg.prune_if_accuracy_drops_by
        )

    def _judge_holding(self, index: int, seed: SlotReport, epoch: int) -> Decision:
        cfg = self.config
        cf, total = seed.counterfactual, seed.total_improvement
        # "Ransomware": the host has come to depend on the seed (removing it hurts) although the
        # seed made the model worse overall; keeping it would lock in the damage.
        depends_on_seed = cf is not None and cf > cfg.ransomware_contribution_threshold
        if depends_on_seed and total < cfg.ransomware_improvement_threshold:
            reason = f"Ransomware pattern: counterfactual {cf:+.2f}% but total improvement {total:+.2f}%"
            return self._prune(index, seed, epoch, reason)
        improvement, source = (total, "total improvement") if cf is None else (cf, "counterfactual")
        if improvement > cfg.min_improvement_to_fossilize:
            action = _action(LifecycleOp.FOSSILIZE, index)
            reason = f"Fossilizing: {improvement:+.2f}% {source}"
            return Decision(action, index, reason, min(1.0, improvement / _CONFIDENCE_SCALE))
        reason = f"No improvement in HOLDING ({source} {improvement:+.2f}% ≤ {cfg.min_improvement_to_fossilize:.2f}%)"
        return self._prune(index, seed, epoch, reason)

    def _prune(self, index: int, seed: SlotReport, epoch: int, reason: str) -> Decision:
        """PRUNE (instantly) and penalise the blueprint, or WAIT when the masks would refuse PRUNE."""
        # The budget only limits germination, so it does not matter for PRUNE.
        blocker = illegal_reason(LifecycleOp.PRUNE, seed.stage, seed.alpha_holding, seed.age, budget_left=True)
        if blocker is not None:
            return _wait(f"{reason}; cannot prune yet ({blocker})", index)
        blueprint_id = BLUEPRINT_IDS[seed.blueprint]
        self._last_prune_epoch = epoch
        penalty = self._penalties.get(blueprint_id, 0.0) + self.config.blueprint_penalty_on_prune
        self._penalties[blueprint_id] = penalty
        action = _action(
            LifecycleOp.PRUNE,
            index,
            alpha_speed=int(AlphaSpeedAction.INSTANT),
            alpha_curve=int(AlphaCurveAction.LINEAR),
        )
        return Decision(action, index, reason, 1.0)


def _wait(reason: str, slot_index: int | None = None) -> Decision:
    return Decision(FactoredAction.wait(), slot_index, reason, 1.0)


def _advance(index: int, reason: str) -> Decision:
    return Decision(_action(LifecycleOp.ADVANCE, index), index, reason, 1.0)


def _check_default_rotations() -> None:
    assert set(DEFAULT_ROTATIONS) == set(TOPOLOGY_BLUEPRINTS), "every topology needs a default rotation"
    for topology, rotation in DEFAULT_ROTATIONS.items():
        resolve_rotation(rotation, topology)


_check_default_rotations()
