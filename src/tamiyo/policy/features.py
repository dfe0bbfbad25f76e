"""Observation features: one fixed-width float32 vector per environment.

Layout: `BaseFeature` columns `[0, 23)`, then one 39-wide `SlotFeature` block per slot in slot-config
order (slot k starts at `23 + 39·k`), then the 2 `ContextFeature` columns, then one seed-gradient column
per slot, then one gradient-measured column per slot, then the kind column, so `obs_dim(3) = 149`.
Every column is a field the environments report; there are no raw step counters, raw parameter counts or
placeholder columns.

Every column is scaled to roughly unit range here, before any running normaliser:

| base column               | value                                    | range    |
|---------------------------|------------------------------------------|----------|
| 0 EPOCH_PROGRESS          | epoch / max_epochs                       | [0, 1]   |
| 1 HOST_STABILIZED         | 1 once the host's loss has stabilised    | {0, 1}   |
| 2 TRAIN_LOSS              | train loss / loss scale                  | [0, 3]   |
| 3 VAL_LOSS                | val loss / loss scale                    | [0, 3]   |
| 4 LOSS_DELTA              | (prev − current val loss) / loss scale   | [-1, 1]  |
| 5 TRAIN_ACCURACY          | percent / 100                            | [0, 1]   |
| 6 VAL_ACCURACY            | percent / 100                            | [0, 1]   |
| 7 ACCURACY_DELTA          | points / 10                              | [-1, 1]  |
| 8 PLATEAU                 | plateau epochs / max_epochs              | [0, 1]   |
| 9 BEST_VAL_ACCURACY       | percent / 100                            | [0, 1]   |
| 10 BEST_VAL_LOSS          | loss / loss scale                        | [0, 3]   |
| 11-15 VAL_LOSS_HISTORY    | last 5 val losses / loss scale, oldest 1st | [0, 3] |
| 16-20 VAL_ACCURACY_HISTORY| last 5 val accuracies / 100              | [0, 1]   |
| 21 SEED_PARAM_SHARE       | seed params / (host + seed params)       | [0, 1]   |
| 22 SEED_BUDGET_USED       | seeds used / max seeds (0 when unlimited)| [0, 1]   |

| slot offset                 | value                                              | range   |
|-----------------------------|----------------------------------------------------|---------|
| +0 IS_ACTIVE                | 1 unless the slot is empty (DORMANT)               | {0, 1}  |
| +1..+10 STAGE_ONE_HOT       | stage at `STAGE_ONE_HOT_INDEX` (empty → DORMANT)   | {0, 1}  |
| +11 ALPHA                   | current blend alpha                                | [0, 1]  |
| +12 CONTRIBUTION            | counterfactual (accuracy points) / 10; NaN → 0     | [-1, 1] |
| +13 CONTRIBUTION_VELOCITY   | points per epoch / 10                              | [-1, 1] |
| +14 BLEND_TEMPO             | blend ramp epochs / 8                              | [0, 1]  |
| +15 ALPHA_TARGET            | alpha target                                       | [0, 1]  |
| +16 ALPHA_MODE              | AlphaMode / 2 (HOLD 0, UP 0.5, DOWN 1)             | [0, 1]  |
| +17 ALPHA_STEPS_TOTAL       | ticks / 8                                          | [0, 1]  |
| +18 ALPHA_STEPS_DONE        | ticks / 8                                          | [0, 1]  |
| +19 ALPHA_TIME_TO_TARGET    | max(total − done, 0) / 8                           | [0, 1]  |
| +20 ALPHA_VELOCITY          | (target − alpha) / max(ticks left, 1); 0 in HOLD   | [-1, 1] |
| +21 ALPHA_ALGORITHM         | (AlphaAlgorithm − 1) / 2 (ADD 0, MULTIPLY .5, GATE 1) | [0, 1] |
| +22 EPOCHS_IN_STAGE         | epochs in stage / max_epochs                       | [0, 1]  |
| +23 HAS_COUNTERFACTUAL      | 1 once a counterfactual was measured               | {0, 1}  |
| +24 IMPROVEMENT_SINCE_STAGE_START | accuracy points / 10                         | [-1, 1] |
| +25 TOTAL_IMPROVEMENT       | accuracy points since germination / 10             | [-1, 1] |
| +26..+38 BLUEPRINT_ONE_HOT  | `BlueprintAction` (empty → NOOP)                   | {0, 1}  |

| context column | value                                               | range   |
|----------------|-----------------------------------------------------|---------|
| 0 HOST_SIZE    | log10(host params) / 7                              | [0, 1]  |
| 1 INPUT_DIMS   | spatial dimensions of one input / 3 (1 = sequence, 2 = image) | [0, 1] |

| seed-gradient column k  | value                                                          | range  |
|-------------------------|----------------------------------------------------------------|--------|
| SEED_GRADIENT of slot k | r / (1 + r), r = the seed's gradient ratio; 0 until measured   | [0, 1) |

| gradient-measured column k | value                                                  | range  |
|----------------------------|--------------------------------------------------------|--------|
| GRADIENT_MEASURED of slot k | 1 once a TRAINING epoch measured the seed's gradient ratio | {0, 1} |

| kind column | value                                                                     | range  |
|-------------|---------------------------------------------------------------------------|--------|
| KIND        | the episode kind's position among the env's kinds / (kinds − 1); 0 if one | [0, 1] |

The context columns say which kind of episode this is (they are constant within one): when episodes draw their task
and host width, the right growth depends on them, and from epoch 0 on the accuracy trajectory alone does not tell.
Named kinds (`env.kinds`) may share a host size and input, so the kind column names the kind itself, as a task
descriptor would. The seed-gradient columns tell a dead seed (no gradient reaches it, so it never learns: 0 after
its first TRAINING epoch) from a healthy one (about 0.3–0.7) epochs before its contribution can be measured; the
gradient-measured columns tell that measured 0 from a seed not measured yet (or an empty slot), which the
seed-gradient column alone shows as 0 too. Columns are only ever appended, so that a controller trained before they
existed can be warm-started with zero weight on them (`tamiyo.training.module.PPOModule.load_policy_weights`).

"Loss scale" is `SignalField.LOSS_SCALE`, the per-sample loss of an uninformed predictor, so losses
are comparable across tasks. Non-finite inputs never leak out: NaN becomes 0 and ±inf the column's
bound (the first epoch's loss delta is +inf and becomes +1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cache

import torch

from tamiyo.core.actions import ALPHA_SPEED_STEPS, TEMPO_EPOCHS, AlphaAlgorithm, AlphaMode, BlueprintAction
from tamiyo.core.observation import HISTORY_LENGTH, NUM_SLOT_FIELDS, ObservationBatch, SignalField, SlotField
from tamiyo.core.stages import STAGE_ONE_HOT_INDEX, SeedStage
from tamiyo.policy.masks import checked_stages


class BaseFeature(IntEnum):
    EPOCH_PROGRESS = 0
    HOST_STABILIZED = 1
    TRAIN_LOSS = 2
    VAL_LOSS = 3
    LOSS_DELTA = 4
    TRAIN_ACCURACY = 5
    VAL_ACCURACY = 6
    ACCURACY_DELTA = 7
    PLATEAU = 8
    BEST_VAL_ACCURACY = 9
    BEST_VAL_LOSS = 10
    VAL_LOSS_HISTORY = 11  # HISTORY_LENGTH columns
    VAL_ACCURACY_HISTORY = 11 + HISTORY_LENGTH  # HISTORY_LENGTH columns
    SEED_PARAM_SHARE = 11 + 2 * HISTORY_LENGTH
    SEED_BUDGET_USED = 12 + 2 * HISTORY_LENGTH


class SlotFeature(IntEnum):
    IS_ACTIVE = 0
    STAGE_ONE_HOT = 1  # NUM_STAGES columns
    ALPHA = 11
    CONTRIBUTION = 12
    CONTRIBUTION_VELOCITY = 13
    BLEND_TEMPO = 14
    ALPHA_TARGET = 15
    ALPHA_MODE = 16
    ALPHA_STEPS_TOTAL = 17
    ALPHA_STEPS_DONE = 18
    ALPHA_TIME_TO_TARGET = 19
    ALPHA_VELOCITY = 20
    ALPHA_ALGORITHM = 21
    EPOCHS_IN_STAGE = 22
    HAS_COUNTERFACTUAL = 23
    IMPROVEMENT_SINCE_STAGE_START = 24
    TOTAL_IMPROVEMENT = 25
    BLUEPRINT_ONE_HOT = 26  # len(BlueprintAction) columns


class ContextFeature(IntEnum):
    HOST_SIZE = 0
    INPUT_DIMS = 1


BASE_FEATURES = 23
SLOT_FEATURES = 39
CONTEXT_FEATURES = len(ContextFeature)
SEED_GRADIENT_FEATURES = 2  # per slot: the ratio and whether it was measured
KIND_FEATURES = 1
HOST_SIZE_DECADES = 7.0  # log10 of the parameter count that maps to 1.0 (10 M)
INPUT_DIMS_SCALE = 3.0  # volumes map to 1.0
NUM_STAGES = len(STAGE_ONE_HOT_INDEX)
_SCALARS = slice(SlotFeature.ALPHA, SlotFeature.BLUEPRINT_ONE_HOT)  # the per-slot scalar columns

LOSS_LIMIT = 3.0  # losses above 3× an uninformed predictor's carry no more useful information
ACCURACY_POINTS_SCALE = 10.0  # accuracy deltas and contributions: 10 points = 1.0
ALPHA_STEPS_SCALE = float(max(ALPHA_SPEED_STEPS + TEMPO_EPOCHS))  # longest alpha ramp, in ticks
BLEND_TEMPO_SCALE = float(max(TEMPO_EPOCHS))
_NON_FINITE = 1e6  # ±inf is first replaced by this, then clamped to the column's bound
_MIN_LOSS_SCALE = 1e-6  # keeps a degenerate (0) loss scale from dividing by zero; columns are clamped


def obs_dim(num_slots: int) -> int:
    """Width of the feature vector for `num_slots` slots."""
    if num_slots < 1:
        raise ValueError(f"num_slots must be ≥ 1, got {num_slots}")
    return BASE_FEATURES + (SLOT_FEATURES + SEED_GRADIENT_FEATURES) * num_slots + CONTEXT_FEATURES + KIND_FEATURES


def slot_feature_index(slot: int, feature: SlotFeature) -> int:
    """Column of `feature` of slot `slot` in the flat feature vector."""
    return BASE_FEATURES + SLOT_FEATURES * slot + feature


def context_feature_index(num_slots: int, feature: ContextFeature) -> int:
    """Column of `feature` in the flat feature vector of `num_slots` slots."""
    return BASE_FEATURES + SLOT_FEATURES * num_slots + feature


def seed_gradient_feature_index(num_slots: int, slot: int) -> int:
    """Column of slot `slot`'s seed gradient in the flat feature vector of `num_slots` slots."""
    return BASE_FEATURES + SLOT_FEATURES * num_slots + CONTEXT_FEATURES + slot


def gradient_measured_feature_index(num_slots: int, slot: int) -> int:
    """Column of slot `slot`'s gradient-measured flag in the flat feature vector of `num_slots` slots."""
    return seed_gradient_feature_index(num_slots, num_slots) + slot


def kind_feature_index(num_slots: int) -> int:
    """Column of the episode's kind in the flat feature vector of `num_slots` slots (the last one)."""
    return obs_dim(num_slots) - KIND_FEATURES


class _Divisor(IntEnum):
    """What a base column is divided by; per-env divisors are gathered in one index_select."""

    ONE = 0
    PERCENT = 1
    ACCURACY_POINTS = 2
    MAX_EPOCHS = 3
    LOSS_SCALE = 4
    TOTAL_PARAMS = 5
    SEED_BUDGET = 6


_CONSTANT_DIVISORS = (1.0, 100.0, ACCURACY_POINTS_SCALE)  # ONE, PERCENT, ACCURACY_POINTS

# base column → (source signal column, divisor, low, high)
_LOSS = (_Divisor.LOSS_SCALE, 0.0, LOSS_LIMIT)
_FRACTION = (_Divisor.PERCENT, 0.0, 1.0)
_BASE_SPEC: dict[int, tuple[int, _Divisor, float, float]] = {
    BaseFeature.EPOCH_PROGRESS: (SignalField.EPOCH, _Divisor.MAX_EPOCHS, 0.0, 1.0),
    BaseFeature.HOST_STABILIZED: (SignalField.HOST_STABILIZED, _Divisor.ONE, 0.0, 1.0),
    BaseFeature.TRAIN_LOSS: (SignalField.TRAIN_LOSS, *_LOSS),
    BaseFeature.VAL_LOSS: (SignalField.VAL_LOSS, *_LOSS),
    BaseFeature.LOSS_DELTA: (SignalField.LOSS_DELTA, _Divisor.LOSS_SCALE, -1.0, 1.0),
    BaseFeature.TRAIN_ACCURACY: (SignalField.TRAIN_ACCURACY, *_FRACTION),
    BaseFeature.VAL_ACCURACY: (SignalField.VAL_ACCURACY, *_FRACTION),
    BaseFeature.ACCURACY_DELTA: (SignalField.ACCURACY_DELTA, _Divisor.ACCURACY_POINTS, -1.0, 1.0),
    BaseFeature.PLATEAU: (SignalField.PLATEAU_EPOCHS, _Divisor.MAX_EPOCHS, 0.0, 1.0),
    BaseFeature.BEST_VAL_ACCURACY: (SignalField.BEST_VAL_ACCURACY, *_FRACTION),
    BaseFeature.BEST_VAL_LOSS: (SignalField.BEST_VAL_LOSS, *_LOSS),
    **{BaseFeature.VAL_LOSS_HISTORY + i: (SignalField.VAL_LOSS_HISTORY + i, *_LOSS) for i in range(HISTORY_LENGTH)},
    **{
        BaseFeature.VAL_ACCURACY_HISTORY + i: (SignalField.VAL_ACCURACY_HISTORY + i, *_FRACTION)
        for i in range(HISTORY_LENGTH)
    },
    BaseFeature.SEED_PARAM_SHARE: (SignalField.SEED_PARAMS, _Divisor.TOTAL_PARAMS, 0.0, 1.0),
    BaseFeature.SEED_BUDGET_USED: (SignalField.SEEDS_USED, _Divisor.SEED_BUDGET, 0.0, 1.0),
}

class _Derived(IntEnum):
    """Per-slot values computed from several slot fields, appended after the `SlotField` columns."""

    TICKS_LEFT = NUM_SLOT_FIELDS
    ALPHA_VELOCITY = NUM_SLOT_FIELDS + 1
    STAGE_PROGRESS = NUM_SLOT_FIELDS + 2  # epochs in stage / max_epochs
    HAS_COUNTERFACTUAL = NUM_SLOT_FIELDS + 3


# slot scalar column → (source column of `SlotField` or `_Derived`, shift, divisor, low, high);
# value = (x − shift) / divisor, clamped to [low, high].
_POINTS = (0.0, ACCURACY_POINTS_SCALE, -1.0, 1.0)
_STEPS = (0.0, ALPHA_STEPS_SCALE, 0.0, 1.0)
_UNIT = (0.0, 1.0, 0.0, 1.0)
_SLOT_SPEC: dict[int, tuple[int, float, float, float, float]] = {
    SlotFeature.ALPHA: (SlotField.ALPHA, *_UNIT),
    SlotFeature.CONTRIBUTION: (SlotField.COUNTERFACTUAL, *_POINTS),
    SlotFeature.CONTRIBUTION_VELOCITY: (SlotField.CONTRIBUTION_VELOCITY, *_POINTS),
    SlotFeature.BLEND_TEMPO: (SlotField.BLEND_TEMPO_EPOCHS, 0.0, BLEND_TEMPO_SCALE, 0.0, 1.0),
    SlotFeature.ALPHA_TARGET: (SlotField.ALPHA_TARGET, *_UNIT),
    SlotFeature.ALPHA_MODE: (SlotField.ALPHA_MODE, 0.0, float(max(AlphaMode)), 0.0, 1.0),
    SlotFeature.ALPHA_STEPS_TOTAL: (SlotField.ALPHA_STEPS_TOTAL, *_STEPS),
    SlotFeature.ALPHA_STEPS_DONE: (SlotField.ALPHA_STEPS_DONE, *_STEPS),
    SlotFeature.ALPHA_TIME_TO_TARGET: (_Derived.TICKS_LEFT, *_STEPS),
    SlotFeature.ALPHA_VELOCITY: (_Derived.ALPHA_VELOCITY, 0.0, 1.0, -1.0, 1.0),
    SlotFeature.ALPHA_ALGORITHM: (
        SlotField.ALPHA_ALGORITHM, float(min(AlphaAlgorithm)), float(max(AlphaAlgorithm) - min(AlphaAlgorithm)),
        0.0, 1.0,
    ),
    SlotFeature.EPOCHS_IN_STAGE: (_Derived.STAGE_PROGRESS, *_UNIT),
    SlotFeature.HAS_COUNTERFACTUAL: (_Derived.HAS_COUNTERFACTUAL, *_UNIT),
    SlotFeature.IMPROVEMENT_SINCE_STAGE_START: (SlotField.IMPROVEMENT_SINCE_STAGE_START, *_POINTS),
    SlotFeature.TOTAL_IMPROVEMENT: (SlotField.TOTAL_IMPROVEMENT, *_POINTS),
}


def _check_layout() -> None:
    assert max(BaseFeature) + 1 == BASE_FEATURES
    assert len(_CONSTANT_DIVISORS) == _Divisor.MAX_EPOCHS and max(_Divisor) == _Divisor.SEED_BUDGET
    assert sorted(_BASE_SPEC) == list(range(BASE_FEATURES)), "every base column needs exactly one spec"
    assert sorted(_SLOT_SPEC) == list(range(_SCALARS.start, _SCALARS.stop))
    assert SlotFeature.STAGE_ONE_HOT + NUM_STAGES == SlotFeature.ALPHA
    assert SlotFeature.BLUEPRINT_ONE_HOT + len(BlueprintAction) == SLOT_FEATURES
    assert [STAGE_ONE_HOT_INDEX[s] for s in SeedStage] == list(range(NUM_STAGES))


_check_layout()


@dataclass(frozen=True)
class _Constants:
    """Index and bound tensors of one device, built once instead of on every call."""

    base_source: torch.Tensor  # [23] signal columns
    base_divisor: torch.Tensor  # [23] _Divisor per column
    base_low: torch.Tensor
    base_high: torch.Tensor
    constant_divisors: torch.Tensor  # [1, 3]
    slot_source: torch.Tensor  # [15] slot columns
    slot_shift: torch.Tensor
    slot_divisor: torch.Tensor
    slot_low: torch.Tensor
    slot_high: torch.Tensor
    stage_values: torch.Tensor  # [10] stage value at each one-hot position
    blueprint_values: torch.Tensor  # [13]


@cache
def _constants(device: torch.device) -> _Constants:
    base = [_BASE_SPEC[i] for i in range(BASE_FEATURES)]
    slot = [_SLOT_SPEC[i] for i in range(_SCALARS.start, _SCALARS.stop)]
    stage_values = sorted(SeedStage, key=STAGE_ONE_HOT_INDEX.__getitem__)

    def floats(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device)

    def longs(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    return _Constants(
        base_source=longs([b[0] for b in base]),
        base_divisor=longs([b[1] for b in base]),
        base_low=floats([b[2] for b in base]),
        base_high=floats([b[3] for b in base]),
        constant_divisors=floats(list(_CONSTANT_DIVISORS)).unsqueeze(0),
        slot_source=longs([s[0] for s in slot]),
        slot_shift=floats([s[1] for s in slot]),
        slot_divisor=floats([s[2] for s in slot]),
        slot_low=floats([s[3] for s in slot]),
        slot_high=floats([s[4] for s in slot]),
        stage_values=longs([int(s) for s in stage_values]),
        blueprint_values=longs([int(b) for b in BlueprintAction]),
    )


def _finite_clamped(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return x.nan_to_num_(nan=0.0, posinf=_NON_FINITE, neginf=-_NON_FINITE).clamp_(low, high)


def _base_features(signals: torch.Tensor, max_epochs: torch.Tensor, const: _Constants) -> torch.Tensor:
    loss_scale = signals[:, SignalField.LOSS_SCALE].clamp_min(_MIN_LOSS_SCALE)
    total_params = (signals[:, SignalField.HOST_PARAMS] + signals[:, SignalField.SEED_PARAMS]).clamp_min(1.0)
    max_seeds = signals[:, SignalField.MAX_SEEDS]
    seed_budget = torch.where(max_seeds > 0, max_seeds, torch.inf)  # unlimited budget → 0 used
    per_env = torch.stack((max_epochs, loss_scale, total_params, seed_budget), dim=1)  # _Divisor order
    divisors = torch.cat((const.constant_divisors.expand(signals.shape[0], -1), per_env), dim=1)
    values = signals.index_select(1, const.base_source) / divisors.index_select(1, const.base_divisor)
    return _finite_clamped(values, const.base_low, const.base_high)


def _slot_scalars(slots: torch.Tensor, max_epochs: torch.Tensor, const: _Constants) -> torch.Tensor:
    """The `[N, S, 15]` scalar columns `SlotFeature.ALPHA … TOTAL_IMPROVEMENT`."""
    ticks_left = slots[..., SlotField.ALPHA_STEPS_TOTAL] - slots[..., SlotField.ALPHA_STEPS_DONE]
    gap = slots[..., SlotField.ALPHA_TARGET] - slots[..., SlotField.ALPHA]
    moving = slots[..., SlotField.ALPHA_MODE] != AlphaMode.HOLD
    counterfactual = slots[..., SlotField.COUNTERFACTUAL]
    derived = torch.stack(
        (
            ticks_left,
            torch.where(moving, gap / ticks_left.clamp_min(1.0), 0.0),
            slots[..., SlotField.EPOCHS_IN_STAGE] / max_epochs.unsqueeze(1),
            (~counterfactual.isnan()).to(slots.dtype),  # NaN = not yet measured
        ),
        dim=-1,
    )
    columns = torch.cat((slots, derived), dim=-1).index_select(2, const.slot_source)
    return _finite_clamped((columns - const.slot_shift) / const.slot_divisor, const.slot_low, const.slot_high)


def _context_features(signals: torch.Tensor) -> torch.Tensor:
    """The `[N, 2]` `ContextFeature` columns."""
    host_size = signals[:, SignalField.HOST_PARAMS].clamp_min(1.0).log10() / HOST_SIZE_DECADES
    input_dims = signals[:, SignalField.INPUT_DIMS] / INPUT_DIMS_SCALE
    return torch.stack((host_size, input_dims), dim=1).nan_to_num_(nan=0.0).clamp_(0.0, 1.0)


def _kind_feature(signals: torch.Tensor) -> torch.Tensor:
    """The `[N]` kind column: the kind's position over the last position (0 when the env has one kind)."""
    last = (signals[:, SignalField.KINDS] - 1.0).clamp_min(1.0)
    return (signals[:, SignalField.KIND_INDEX] / last).nan_to_num_(nan=0.0).clamp_(0.0, 1.0)


def _seed_gradient_features(slots: torch.Tensor) -> torch.Tensor:
    """The `[N, 2S]` seed-gradient columns then gradient-measured flags: r / (1 + r) maps every ratio into [0, 1)
    without a scale to choose; an unmeasured ratio (NaN) shows as 0 with its flag at 0."""
    raw = slots[..., SlotField.GRADIENT_RATIO]
    ratio = raw.nan_to_num(nan=0.0, posinf=_NON_FINITE).clamp_(0.0, _NON_FINITE)
    return torch.cat((ratio / (1.0 + ratio), (~raw.isnan()).float()), dim=-1)


def extract_features(obs: ObservationBatch) -> torch.Tensor:
    """Features `[N, obs_dim(S)]` (float32) of every env, computed as whole-batch tensor ops."""
    const = _constants(obs.signals.device)
    n, num_slots = obs.num_envs, obs.num_slots
    stages = checked_stages(obs)
    max_epochs = obs.signals[:, SignalField.MAX_EPOCHS].clamp_min(1.0)

    out = torch.empty(n, obs_dim(num_slots), dtype=torch.float32, device=obs.signals.device)
    out[:, :BASE_FEATURES] = _base_features(obs.signals, max_epochs, const)
    context_start = BASE_FEATURES + SLOT_FEATURES * num_slots
    gradient_start = context_start + CONTEXT_FEATURES
    out[:, context_start:gradient_start] = _context_features(obs.signals)
    out[:, gradient_start:-KIND_FEATURES] = _seed_gradient_features(obs.slots)
    out[:, -KIND_FEATURES] = _kind_feature(obs.signals)
    block = out[:, BASE_FEATURES:context_start].view(n, num_slots, SLOT_FEATURES)
    block[..., SlotFeature.IS_ACTIVE] = stages != SeedStage.DORMANT
    block[..., SlotFeature.STAGE_ONE_HOT : SlotFeature.ALPHA] = stages.unsqueeze(-1) == const.stage_values
    block[..., _SCALARS] = _slot_scalars(obs.slots, max_epochs, const)
    blueprint = obs.slots[..., SlotField.BLUEPRINT].long().unsqueeze(-1)
    block[..., SlotFeature.BLUEPRINT_ONE_HOT :] = blueprint == const.blueprint_values
    return out
