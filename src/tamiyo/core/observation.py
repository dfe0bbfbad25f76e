"""The observation contract between environments and controllers.

An environment reports, once per epoch, its `TrainingSignals` (host-level numbers, produced by the
`SignalTracker`) and one `SlotReport` per slot of its slot configuration. A batch of environments is
packed into an `ObservationBatch`: two float32 tensors whose columns are named by `SignalField` and
`SlotField`. Everything downstream (features, action masks, the heuristic) reads these tensors, so a
batch is converted from Python objects exactly once per step.

Units: accuracies are percentages (0–100), losses are per-sample means, counts are raw. Feature
extraction (`tamiyo.policy.features`) rescales them to roughly unit range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import IntEnum

import torch

from tamiyo.core.actions import AlphaAlgorithm, AlphaCurveAction, AlphaMode, BlueprintAction, LifecycleOp
from tamiyo.core.legality import illegal_reason
from tamiyo.core.stages import SeedStage

HISTORY_LENGTH = 5


class SignalField(IntEnum):
    EPOCH = 0
    MAX_EPOCHS = 1
    TRAIN_LOSS = 2
    VAL_LOSS = 3
    LOSS_DELTA = 4  # previous − current val loss; positive = improvement; +inf on the first epoch
    TRAIN_ACCURACY = 5
    VAL_ACCURACY = 6
    ACCURACY_DELTA = 7
    PLATEAU_EPOCHS = 8
    HOST_STABILIZED = 9
    BEST_VAL_ACCURACY = 10
    BEST_VAL_LOSS = 11
    LOSS_SCALE = 12  # per-sample loss of an uninformed predictor (ln of the class count)
    HOST_PARAMS = 13
    SEED_PARAMS = 14  # parameters of live and fossilized seeds
    SEEDS_USED = 15  # germinations so far this episode
    MAX_SEEDS = 16  # germination budget; 0 = unlimited
    VAL_LOSS_HISTORY = 17  # 5 columns, oldest first, left-padded with the first value seen
    VAL_ACCURACY_HISTORY = 17 + HISTORY_LENGTH  # 5 columns
    INPUT_DIMS = 17 + 2 * HISTORY_LENGTH  # spatial dimensions of one input: 1 = sequence, 2 = image
    KIND_INDEX = INPUT_DIMS + 1  # the episode's kind: its position among the env's kinds
    KINDS = INPUT_DIMS + 2  # how many kinds the env's episodes draw from


NUM_SIGNAL_FIELDS = SignalField.KINDS + 1


class SlotField(IntEnum):
    STAGE = 0  # SeedStage value; an empty slot is DORMANT
    EPOCHS_IN_STAGE = 1
    AGE = 2  # epochs since germination
    ALPHA = 3
    ALPHA_TARGET = 4
    ALPHA_MODE = 5  # AlphaMode
    ALPHA_STEPS_TOTAL = 6
    ALPHA_STEPS_DONE = 7
    ALPHA_CURVE = 8  # AlphaCurveAction
    BLEND_TEMPO_EPOCHS = 9
    ALPHA_ALGORITHM = 10  # AlphaAlgorithm
    BLUEPRINT = 11  # BlueprintAction; NOOP when empty
    COUNTERFACTUAL = 12  # val accuracy with the seed minus with alpha forced to 0; NaN until measured
    CONTRIBUTION_VELOCITY = 13
    IMPROVEMENT_SINCE_STAGE_START = 14
    TOTAL_IMPROVEMENT = 15
    SEED_PARAMS = 16
    GRADIENT_RATIO = 17  # seed/host gradient intensity per parameter; NaN until measured, 0 for a dead seed


NUM_SLOT_FIELDS = len(SlotField)


@dataclass(frozen=True, slots=True)
class TrainingSignals:
    """Host-level training signals of one environment after one epoch."""

    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float
    loss_delta: float
    train_accuracy: float
    val_accuracy: float
    accuracy_delta: float
    plateau_epochs: int
    host_stabilized: bool
    best_val_accuracy: float
    best_val_loss: float
    loss_scale: float
    host_params: int
    seed_params: int
    seeds_used: int
    max_seeds: int
    val_loss_history: tuple[float, ...]
    val_accuracy_history: tuple[float, ...]
    input_dims: int = 1
    kind_index: int = 0
    kinds: int = 1

    def to_row(self) -> list[float]:
        scalars = [float(getattr(self, f.name)) for f in fields(self)[: SignalField.VAL_LOSS_HISTORY]]
        histories = _padded(self.val_loss_history) + _padded(self.val_accuracy_history)
        return scalars + histories + [float(self.input_dims), float(self.kind_index), float(self.kinds)]

    @classmethod
    def from_row(cls, row: list[float]) -> TrainingSignals:
        names = [f.name for f in fields(cls)]
        ints = {"epoch", "max_epochs", "plateau_epochs", "host_params", "seed_params", "seeds_used", "max_seeds"}
        values: dict[str, object] = {}
        for name, value in zip(names[: SignalField.VAL_LOSS_HISTORY], row, strict=False):
            values[name] = int(value) if name in ints else value
        values["host_stabilized"] = bool(values["host_stabilized"])
        start = SignalField.VAL_LOSS_HISTORY
        values["val_loss_history"] = tuple(row[start : start + HISTORY_LENGTH])
        start = SignalField.VAL_ACCURACY_HISTORY
        values["val_accuracy_history"] = tuple(row[start : start + HISTORY_LENGTH])
        for name, column in (("input_dims", SignalField.INPUT_DIMS), ("kind_index", SignalField.KIND_INDEX),
                             ("kinds", SignalField.KINDS)):
            values[name] = int(row[column])
        return cls(**values)  # type: ignore[arg-type]


def _padded(history: tuple[float, ...]) -> list[float]:
    """The last `HISTORY_LENGTH` values, left-padded with the oldest value (0.0 when empty)."""
    tail = list(history[-HISTORY_LENGTH:])
    pad = tail[0] if tail else 0.0
    return [pad] * (HISTORY_LENGTH - len(tail)) + tail


@dataclass(frozen=True, slots=True)
class SlotReport:
    """State of one slot after one epoch. `SlotReport.empty()` describes a free slot."""

    stage: SeedStage = SeedStage.DORMANT
    epochs_in_stage: int = 0
    age: int = 0
    alpha: float = 0.0
    alpha_target: float = 0.0
    alpha_mode: AlphaMode = AlphaMode.HOLD
    alpha_steps_total: int = 0
    alpha_steps_done: int = 0
    alpha_curve: AlphaCurveAction = AlphaCurveAction.LINEAR
    blend_tempo_epochs: int = 0
    alpha_algorithm: AlphaAlgorithm = AlphaAlgorithm.ADD
    blueprint: BlueprintAction = BlueprintAction.NOOP
    counterfactual: float | None = None
    contribution_velocity: float = 0.0
    improvement_since_stage_start: float = 0.0
    total_improvement: float = 0.0
    seed_params: int = 0
    gradient_ratio: float | None = None  # None until a TRAINING epoch measured it

    @classmethod
    def empty(cls) -> SlotReport:
        return cls()

    @property
    def is_empty(self) -> bool:
        return self.stage == SeedStage.DORMANT

    @property
    def alpha_holding(self) -> bool:
        return self.alpha_mode == AlphaMode.HOLD

    @property
    def is_dead(self) -> bool:
        """A seed that trained an epoch in TRAINING without any gradient reaching it: it can never learn."""
        return self.stage == SeedStage.TRAINING and self.epochs_in_stage >= 1 and self.gradient_ratio == 0.0

    @property
    def may_prune(self) -> bool:
        """Whether PRUNE is legal on this slot now (a seed in a prunable stage, old enough, alpha settled)."""
        return illegal_reason(LifecycleOp.PRUNE, self.stage, self.alpha_holding, self.age, budget_left=True) is None

    def to_row(self) -> list[float]:
        optional = {"counterfactual", "gradient_ratio"}  # None (not measured) travels as NaN
        row = [float(getattr(self, f.name)) if f.name not in optional else 0.0 for f in fields(self)]
        row[SlotField.COUNTERFACTUAL] = math.nan if self.counterfactual is None else float(self.counterfactual)
        row[SlotField.GRADIENT_RATIO] = math.nan if self.gradient_ratio is None else float(self.gradient_ratio)
        return row

    @classmethod
    def from_row(cls, row: list[float]) -> SlotReport:
        cf, ratio = row[SlotField.COUNTERFACTUAL], row[SlotField.GRADIENT_RATIO]
        return cls(
            stage=SeedStage(int(row[SlotField.STAGE])),
            epochs_in_stage=int(row[SlotField.EPOCHS_IN_STAGE]),
            age=int(row[SlotField.AGE]),
            alpha=row[SlotField.ALPHA],
            alpha_target=row[SlotField.ALPHA_TARGET],
            alpha_mode=AlphaMode(int(row[SlotField.ALPHA_MODE])),
            alpha_steps_total=int(row[SlotField.ALPHA_STEPS_TOTAL]),
            alpha_steps_done=int(row[SlotField.ALPHA_STEPS_DONE]),
            alpha_curve=AlphaCurveAction(int(row[SlotField.ALPHA_CURVE])),
            blend_tempo_epochs=int(row[SlotField.BLEND_TEMPO_EPOCHS]),
            alpha_algorithm=AlphaAlgorithm(int(row[SlotField.ALPHA_ALGORITHM])),
            blueprint=BlueprintAction(int(row[SlotField.BLUEPRINT])),
            counterfactual=None if math.isnan(cf) else cf,
            contribution_velocity=row[SlotField.CONTRIBUTION_VELOCITY],
            improvement_since_stage_start=row[SlotField.IMPROVEMENT_SINCE_STAGE_START],
            total_improvement=row[SlotField.TOTAL_IMPROVEMENT],
            seed_params=int(row[SlotField.SEED_PARAMS]),
            gradient_ratio=None if math.isnan(ratio) else ratio,
        )


@dataclass(frozen=True)
class ObservationBatch:
    """Raw observations of N environments: `signals [N, NUM_SIGNAL_FIELDS]`, `slots [N, S, NUM_SLOT_FIELDS]`."""

    signals: torch.Tensor
    slots: torch.Tensor

    def __post_init__(self) -> None:
        if self.signals.dim() != 2 or self.signals.shape[1] != NUM_SIGNAL_FIELDS:
            raise ValueError(f"signals must be [N, {NUM_SIGNAL_FIELDS}], got {list(self.signals.shape)}")
        if self.slots.dim() != 3 or self.slots.shape[2] != NUM_SLOT_FIELDS:
            raise ValueError(f"slots must be [N, S, {NUM_SLOT_FIELDS}], got {list(self.slots.shape)}")
        if self.slots.shape[0] != self.signals.shape[0]:
            raise ValueError(f"signals and slots disagree on N: {self.signals.shape[0]} vs {self.slots.shape[0]}")

    @classmethod
    def pack(
        cls, signals: list[TrainingSignals], slots: list[list[SlotReport]], device: torch.device | str = "cpu"
    ) -> ObservationBatch:
        """Pack per-env Python records into tensors (one tensor construction per field group)."""
        return cls(
            signals=torch.tensor([s.to_row() for s in signals], dtype=torch.float32, device=device),
            slots=torch.tensor(
                [[r.to_row() for r in env_slots] for env_slots in slots], dtype=torch.float32, device=device
            ),
        )

    @property
    def num_envs(self) -> int:
        return self.signals.shape[0]

    @property
    def num_slots(self) -> int:
        return self.slots.shape[1]

    def stage(self) -> torch.Tensor:
        return self.slots[..., SlotField.STAGE].long()

    def age(self) -> torch.Tensor:
        return self.slots[..., SlotField.AGE].long()

    def alpha_holding(self) -> torch.Tensor:
        return self.slots[..., SlotField.ALPHA_MODE] == AlphaMode.HOLD

    def seeds_used(self) -> torch.Tensor:
        return self.signals[:, SignalField.SEEDS_USED].long()

    def max_seeds(self) -> torch.Tensor:
        return self.signals[:, SignalField.MAX_SEEDS].long()

    def unpack(self, env: int) -> tuple[TrainingSignals, list[SlotReport]]:
        """Python records of one environment (for rule-based controllers and logging)."""
        signals = TrainingSignals.from_row(self.signals[env].tolist())
        return signals, [SlotReport.from_row(row) for row in self.slots[env].tolist()]
