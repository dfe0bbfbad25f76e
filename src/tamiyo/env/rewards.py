"""Reward functions of a seed-lifecycle transition: `objective` (default), `shaped`, `simplified`, `sparse`.

A reward is computed once per step, **after** the action took effect and the epoch was trained and
validated, from a `RewardInputs` record. Every function returns a `RewardResult`: the named components
(each logged on its own) and their sum. Accuracies are percentages (0–100), as in the observation.

`objective` pays, each epoch, the change of the objective's running value (`env/objective.py`:
validation accuracy minus the price of the seed parameters), so the undiscounted return is exactly
objective(final) − objective(epoch 0), and objective(epoch 0) is the untrained host's accuracy, the
same for every controller on a seed: ranking by return is ranking by the objective. By default
(`charge: effect`) a seed's price is charged as it takes effect — in proportion to its blend alpha
while live, in full once fossilized — and every seed present is charged in full at the last epoch.
A seed in TRAINING does not change the network's output yet, so charging it at germination
(`charge: present`) pays −price for germinating and +price for pruning before any benefit can show,
which taught PPO to germinate and prune. `charge: kept` charges a live seed nothing until it fossilizes, so
pruning a blending seed refunds nothing either (under `effect` it refunds the alpha-weighted share already paid).
The differences between the three are potentials (full price − charged price) that are 0 at the start and at the
end, so all have the same return.
It has no rollback penalty: a rollback already costs what it cost (the epoch's progress is undone
and the restored state's value is where the next step starts), and a flat penalty per rollback is
not potential-based, so it would rank a controller with the better final network below one with
fewer rollbacks.

How `shaped` pays:
* the reward sees the state the action produced, so a failed gate earns no success bonus and a
  germination's potential shows up in the transition that germinated;
* stage shaping is potential-based over the whole env state, F = γ·Φ(s') − Φ(s), with Φ summed over
  slots and read from the slot reports before and after the step (no reconstruction from "previous
  stage" fields), so shaping telescopes exactly along any trajectory, rollbacks included;
* a governor rollback penalises the transition where it happened (component `rollback`);
* attribution covers every measured seed, not only the slot head's sampled target (which is
  meaningless for WAIT), fossilized seeds included: each epoch pays the credited contribution of all
  seeds present, divided by `max_epochs`, so an episode's attribution is the mean contribution the
  seeds made over the episode (area under the contribution curve). Paying live seeds only would
  stop a helper's pay when it fossilizes, and PPO learns never to fossilize; a potential-based
  variant (γ·A(s') − A(s)) removed that but left no dense signal, and PPO collapsed to never growing;
* `sparse` charges the seeds' parameters, not the host's.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from tamiyo.core.actions import FactoredAction, LifecycleOp
from tamiyo.core.observation import SlotReport
from tamiyo.core.registry import Registry
from tamiyo.core.schemas import options_dataclass
from tamiyo.core.stages import LIVE_STAGES, SeedStage
from tamiyo.env.objective import DEFAULT_PARAM_WEIGHT, Objective

# Stage potentials; stages without a seed have none.
STAGE_POTENTIAL: dict[SeedStage, float] = {
    SeedStage.GERMINATED: 1.0,
    SeedStage.TRAINING: 2.0,
    SeedStage.BLENDING: 3.5,
    SeedStage.HOLDING: 5.5,
    SeedStage.FOSSILIZED: 6.0,
}
# Seeds whose parameters the env pays for (alpha-weighted while live, in full once fossilized).
_SEED_HOLDING_STAGES = LIVE_STAGES | {SeedStage.FOSSILIZED}
_MEASURED_STAGES = frozenset({SeedStage.BLENDING, SeedStage.HOLDING})


@dataclass(frozen=True, slots=True)
class RewardInputs:
    """Everything one transition's reward depends on (built by the env after the step)."""

    action: FactoredAction
    took_effect: bool  # the op changed the lifecycle (False for WAIT, a failed gate, or a rolled-back step)
    before: Sequence[SlotReport]  # slots as observed when the action was chosen
    after: Sequence[SlotReport]  # slots after the step (action, training, timed lifecycle)
    val_accuracy: float  # after the step
    host_params: int
    seed_params: int  # parameters of the seeds present after the step (live or fossilized)
    val_accuracy_before: float  # as observed when the action was chosen
    seed_params_before: int
    epoch: int  # epoch reached by this step, 1..max_epochs
    max_epochs: int
    fossil_contributions: Sequence[float]  # counterfactual of each fossilized seed when it fossilized
    rolled_back: bool
    # Training compute beyond the static host's so far (env/objective.py), after the step and before it.
    extra_compute: float = 0.0
    extra_compute_before: float = 0.0

    @property
    def is_final(self) -> bool:
        return self.epoch >= self.max_epochs

    @property
    def target_before(self) -> SlotReport:
        return self.before[self.action.slot]


@dataclass(frozen=True, slots=True)
class RewardResult:
    total: float
    components: dict[str, float]


# ------------------------------------------------------------------ shared terms
def stage_potential(reports: Sequence[SlotReport], per_epoch: float, max_progress: float) -> float:
    """Φ(s): Σ over seeded slots of the stage potential plus a capped bonus for epochs spent in the stage."""
    total = 0.0
    for report in reports:
        base = STAGE_POTENTIAL.get(report.stage)
        if base is not None:
            total += base + min(per_epoch * report.epochs_in_stage, max_progress)
    return total


def seed_attribution(counterfactual: float, improvement: float) -> float:
    """Credit for a seed that adds `counterfactual` accuracy points while the model improved by `improvement`.

    Harm is paid in full. Help is capped by the geometric mean with the improvement since germination,
    so a seed cannot collect credit for "contribution" that the model as a whole never gained (e.g. a
    seed that the host merely learned to depend on).
    """
    if counterfactual < 0:
        return counterfactual
    if improvement <= 0:
        return 0.0
    return math.sqrt(counterfactual * min(counterfactual, improvement))


def credited_contribution(reports: Sequence[SlotReport]) -> float:
    """Credited contribution of the seeds in `reports`, in accuracy points.

    Blending/holding seeds count with `seed_attribution` of their latest counterfactual; a fossilized
    seed keeps the counterfactual measured when it fossilized (it is no longer measured), so its credit
    is fixed for good. Pruning a seed removes its credit: a helper's removal costs it, a harmer's pays.
    """
    total = 0.0
    for r in reports:
        if r.counterfactual is None:
            continue
        if r.stage in _MEASURED_STAGES:
            total += seed_attribution(r.counterfactual, r.total_improvement)
        elif r.stage == SeedStage.FOSSILIZED:
            total += r.counterfactual
    return total


def seed_params(reports: Sequence[SlotReport]) -> int:
    return sum(r.seed_params for r in reports if r.stage in _SEED_HOLDING_STAGES)


def charged_params(reports: Sequence[SlotReport], charge: str = "effect") -> float:
    """Seed parameters charged before the last epoch: fossilized seeds in full, and live seeds weighted by their
    blend alpha (`effect`) or not at all (`kept`)."""
    total = 0.0
    for r in reports:
        if r.stage == SeedStage.FOSSILIZED:
            total += r.seed_params
        elif r.stage in LIVE_STAGES and charge == "effect":
            total += r.alpha * r.seed_params
    return total


def _contributing(fossil_contributions: Sequence[float], threshold: float) -> int:
    return sum(1 for c in fossil_contributions if c >= threshold)


RewardFunction = Callable[[RewardInputs, Any], RewardResult]
# Reward functions with their config dataclass, by name: `make_reward(name, ...)` and the `reward` group.
REWARDS: Registry[tuple[type, RewardFunction]] = Registry("reward")


def register_reward(name: str, config_type: type) -> Callable[[RewardFunction], RewardFunction]:
    """Decorator registering a reward function and its config dataclass under `name`."""

    def decorate(function: RewardFunction) -> RewardFunction:
        REWARDS.register(name)((config_type, function))
        return function

    return decorate


def _check_config(config: Any) -> None:
    for item in fields(config):
        value = getattr(config, item.name)
        if isinstance(value, str):
            continue  # choices are checked by their config
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            name = f"{type(config).__name__}.{item.name}"
            raise ValueError(f"reward config {name} must be finite and ≥ 0, got {value!r}")
    if hasattr(config, "gamma") and not 0.0 < config.gamma <= 1.0:
        raise ValueError(f"reward gamma must be in (0, 1], got {config.gamma}")


# ------------------------------------------------------------------ objective
PRICE_CHARGES = ("effect", "kept", "present")


@dataclass(frozen=True)
class ObjectiveRewardConfig:
    param_weight: float = DEFAULT_PARAM_WEIGHT  # the objective's; Hydra takes it from `objective.param_weight`
    compute_weight: float = 0.0  # the objective's; Hydra takes it from `objective.compute_weight`
    param_price: float = 0.0  # the objective's; Hydra takes it from `objective.param_price`
    # When a seed's price is paid: effect (alpha-weighted, in full at the end) | kept (once fossilized, and for every
    # seed present at the end) | present (in full from germination).
    charge: str = "effect"

    def __post_init__(self) -> None:
        _check_config(self)
        if self.charge not in PRICE_CHARGES:
            raise ValueError(f"objective reward charge must be one of {PRICE_CHARGES}, got {self.charge!r}")


@register_reward("objective", ObjectiveRewardConfig)
def objective(inputs: RewardInputs, config: ObjectiveRewardConfig) -> RewardResult:
    """The change of the objective's running value: accuracy gained minus the price of parameters added and of
    the compute spent beyond the static host's (paid epoch by epoch, as it is spent)."""
    judge = Objective(config.param_weight, config.compute_weight, config.param_price)
    host = inputs.host_params
    if config.charge == "present":
        before, after = inputs.seed_params_before, inputs.seed_params
    else:
        before = charged_params(inputs.before, config.charge)
        after = inputs.seed_params if inputs.is_final else charged_params(inputs.after, config.charge)
    components = {
        "accuracy": inputs.val_accuracy - inputs.val_accuracy_before,
        "params": judge.price(before, host) - judge.price(after, host),
    }
    if config.compute_weight:
        spent = judge.compute_price(inputs.extra_compute) - judge.compute_price(inputs.extra_compute_before)
        components["compute"] = -spent
    return RewardResult(sum(components.values()), components)


# ------------------------------------------------------------------ shaped
@dataclass(frozen=True)
class ShapedConfig:
    """Costs and penalties are magnitudes (subtracted)."""

    contribution_weight: float = 1.0
    pbrs_weight: float = 0.3
    gamma: float = 0.995  # must equal the PPO discount for the shaping to be policy-invariant
    epoch_progress_bonus: float = 0.3
    max_progress_bonus: float = 2.0
    rent_weight: float = 0.5
    max_rent: float = 8.0
    base_slot_rent_ratio: float = 0.0039  # rent of an occupied slot, as a fraction of the host's params
    germinate_cost: float = 0.02
    set_alpha_target_cost: float = 0.005
    prune_cost: float = 0.005
    fossilize_cost: float = 0.01
    fossilize_base_bonus: float = 0.5
    fossilize_contribution_scale: float = 0.1
    fossilize_noncontributing_penalty: float = 0.2
    min_fossil_contribution: float = 1.0  # accuracy points a seed must add to count as contributing
    terminal_accuracy_weight: float = 0.05  # per accuracy point at the final step
    fossil_terminal_bonus: float = 3.0  # per contributing fossilized seed at the final step
    rollback_penalty: float = 10.0

    def __post_init__(self) -> None:
        _check_config(self)


_OP_COST_FIELD = {
    LifecycleOp.GERMINATE: "germinate_cost",
    LifecycleOp.SET_ALPHA_TARGET: "set_alpha_target_cost",
    LifecycleOp.PRUNE: "prune_cost",
    LifecycleOp.FOSSILIZE: "fossilize_cost",
}


@register_reward("shaped", ShapedConfig)
def shaped(inputs: RewardInputs, config: ShapedConfig) -> RewardResult:
    """Counterfactual attribution + stage PBRS − parameter rent + action shaping + terminal bonus."""
    c = config
    attribution = credited_contribution(inputs.after) / inputs.max_epochs
    pbrs = c.gamma * stage_potential(inputs.after, c.epoch_progress_bonus, c.max_progress_bonus) - stage_potential(
        inputs.before, c.epoch_progress_bonus, c.max_progress_bonus
    )
    host = max(inputs.host_params, 1)
    occupied = sum(1 for r in inputs.after if r.stage in _SEED_HOLDING_STAGES)
    effective = c.base_slot_rent_ratio * host * occupied + charged_params(inputs.after)
    rent = min(c.rent_weight * math.log1p(effective / host), c.max_rent)
    terminal = 0.0
    if inputs.is_final:
        fossils = _contributing(inputs.fossil_contributions, c.min_fossil_contribution)
        terminal = c.terminal_accuracy_weight * inputs.val_accuracy + c.fossil_terminal_bonus * fossils
    components = {
        "attribution": c.contribution_weight * attribution,
        "pbrs": c.pbrs_weight * pbrs,
        "rent": -rent,
        "action": _shaped_action_term(inputs, c),
        "terminal": terminal,
        "rollback": -c.rollback_penalty if inputs.rolled_back else 0.0,
    }
    return RewardResult(sum(components.values()), components)


def _shaped_action_term(inputs: RewardInputs, c: ShapedConfig) -> float:
    """Cost of any attempted op, plus the bonus or penalty of a fossilize that took effect."""
    op = inputs.action.op
    term = -getattr(c, _OP_COST_FIELD[op]) if op in _OP_COST_FIELD else 0.0
    if not inputs.took_effect:
        return term
    target = inputs.target_before
    cf = target.counterfactual
    if op == LifecycleOp.FOSSILIZE:
        if cf is not None and cf >= c.min_fossil_contribution:
            term += c.fossilize_base_bonus + c.fossilize_contribution_scale * cf
        else:
            term -= c.fossilize_noncontributing_penalty
    return term


# ------------------------------------------------------------------ simplified
@dataclass(frozen=True)
class SimplifiedConfig:
    pbrs_weight: float = 0.3
    gamma: float = 0.995
    epoch_progress_bonus: float = 0.3
    max_progress_bonus: float = 2.0
    action_cost: float = 0.01  # any op other than WAIT
    terminal_accuracy_weight: float = 0.03  # per accuracy point (3 per unit fraction)
    fossil_terminal_bonus: float = 2.0
    min_fossil_contribution: float = 1.0
    rollback_penalty: float = 10.0

    def __post_init__(self) -> None:
        _check_config(self)


@register_reward("simplified", SimplifiedConfig)
def simplified(inputs: RewardInputs, config: SimplifiedConfig) -> RewardResult:
    """Stage PBRS, a flat cost per op, and the terminal bonus."""
    c = config
    pbrs = c.gamma * stage_potential(inputs.after, c.epoch_progress_bonus, c.max_progress_bonus) - stage_potential(
        inputs.before, c.epoch_progress_bonus, c.max_progress_bonus
    )
    terminal = 0.0
    if inputs.is_final:
        fossils = _contributing(inputs.fossil_contributions, c.min_fossil_contribution)
        terminal = c.terminal_accuracy_weight * inputs.val_accuracy + c.fossil_terminal_bonus * fossils
    components = {
        "pbrs": c.pbrs_weight * pbrs,
        "action": -c.action_cost if inputs.action.op != LifecycleOp.WAIT else 0.0,
        "terminal": terminal,
        "rollback": -c.rollback_penalty if inputs.rolled_back else 0.0,
    }
    return RewardResult(sum(components.values()), components)


# ------------------------------------------------------------------ sparse
@dataclass(frozen=True)
class SparseConfig:
    scale: float = 1.0
    param_budget: float = 500_000.0
    param_penalty_weight: float = 0.1
    rollback_penalty: float = 1.0

    def __post_init__(self) -> None:
        _check_config(self)
        if self.param_budget <= 0:
            raise ValueError(f"sparse param_budget must be > 0, got {self.param_budget}")


@register_reward("sparse", SparseConfig)
def sparse(inputs: RewardInputs, config: SparseConfig) -> RewardResult:
    """Zero until the final step, then the final accuracy minus a charge for the seeds' parameters."""
    c = config
    terminal = 0.0
    if inputs.is_final:
        charge = c.param_penalty_weight * seed_params(inputs.after) / c.param_budget
        terminal = c.scale * min(max(inputs.val_accuracy / 100.0 - charge, -1.0), 1.0)
    components = {"terminal": terminal, "rollback": -c.rollback_penalty if inputs.rolled_back else 0.0}
    return RewardResult(sum(components.values()), components)


# ------------------------------------------------------------------ registry
@dataclass(frozen=True)
class Reward:
    """A reward function bound to its configuration; call it with a `RewardInputs`."""

    name: str
    config: Any
    function: Callable[[RewardInputs, Any], RewardResult]

    def __call__(self, inputs: RewardInputs) -> RewardResult:
        return self.function(inputs, self.config)


def reward_options(name: str) -> type:
    """The options of the `reward` group for reward `name`, as a dataclass: `name` and every field of the reward's
    config with its default, but `gamma`, which is always PPO's discount (`ppo.gamma`). `conf/reward/<name>.yaml`
    extends it, so a key the reward lacks or a value of the wrong type is refused when the config is composed."""
    config_type, _ = REWARDS.get(name)
    hints = typing.get_type_hints(config_type)
    own = [(item.name, hints[item.name], item.default) for item in fields(config_type) if item.name != "gamma"]
    return options_dataclass(f"{config_type.__name__}Options", name, own)


def make_reward(name: str, **config: float | str) -> Reward:
    """The reward `name` with its config fields overridden by `config` (unknown fields are refused)."""
    config_type, function = REWARDS.get(name)
    known = {f.name for f in fields(config_type)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"reward {name!r} has no config fields {unknown}; known: {sorted(known)}")
    return Reward(name, config_type(**config), function)
