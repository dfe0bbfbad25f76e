"""The signal tracker: turns one environment's per-epoch host metrics into `TrainingSignals`.

It keeps a bounded window of validation losses and accuracies, counts plateau epochs, latches
"host stabilised" and tracks the best values seen. `update()` and the read-only `peek()` both call
`_advance`, a pure function from (configuration, state, inputs) to (next state, signals): `update`
commits the next state, `peek` discards it, so the two can never disagree.

Choices worth knowing:
* `best_val_loss` is the best loss of the episode (like `best_val_accuracy`), not the minimum of
  the history window, and `peek()` returns exactly what `update()` would, plateau count included.
* A loss at or below `_CONVERGED_LOSS` that does not regress counts as a stable epoch instead of
  freezing the stabilisation counter.
* `stabilization_epochs = 0` means the host counts as stabilised from the start.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from tamiyo.core.observation import HISTORY_LENGTH, TrainingSignals

# Below this, a previous loss is treated as converged: relative improvement is meaningless there.
_CONVERGED_LOSS = 1e-8


@dataclass(frozen=True, slots=True)
class _TrackerState:
    """Everything the tracker remembers between epochs (histories hold the newest value last)."""

    loss_history: tuple[float, ...] = ()
    accuracy_history: tuple[float, ...] = ()
    best_val_accuracy: float = 0.0
    best_val_loss: float = math.inf
    plateau_epochs: int = 0
    stable_epochs: int = 0
    stabilized: bool = False

    @property
    def prev_loss(self) -> float:
        # +inf before the first epoch, so the first loss_delta is +inf by construction.
        return self.loss_history[-1] if self.loss_history else math.inf

    @property
    def prev_accuracy(self) -> float:
        return self.accuracy_history[-1] if self.accuracy_history else 0.0


@dataclass(kw_only=True)
class SignalTracker:
    """Per-environment tracker of host training signals (accuracies in percent, losses per sample).

    `max_epochs`, `loss_scale` (per-sample loss of an uninformed predictor, ln of the class count),
    `max_seeds` (germination budget, 0 = unlimited), `input_dims` (spatial dimensions of one input:
    1 = sequence, 2 = image) and the episode's kind (`kind_index` among the env's `kinds`) are copied into every
    `TrainingSignals`.
    """

    max_epochs: int
    loss_scale: float
    max_seeds: int = 0
    input_dims: int = 1
    kind_index: int = 0
    kinds: int = 1
    plateau_threshold_pct: float = 0.5  # accuracy gain (percentage points) below which an epoch is flat
    history_window: int = 10
    stabilization_threshold: float = 0.03  # relative loss improvement below which an epoch is stable
    stabilization_epochs: int = 3  # consecutive stable epochs that latch "host stabilised"
    _state: _TrackerState = field(init=False, repr=False)
    _scale_warned: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be ≥ 1, got {self.max_epochs}")
        if not (math.isfinite(self.loss_scale) and self.loss_scale > 0):
            raise ValueError(f"loss_scale must be a positive finite number, got {self.loss_scale}")
        if self.max_seeds < 0:
            raise ValueError(f"max_seeds must be ≥ 0 (0 = unlimited), got {self.max_seeds}")
        if self.input_dims < 1:
            raise ValueError(f"input_dims must be ≥ 1, got {self.input_dims}")
        if not 0 <= self.kind_index < self.kinds:
            raise ValueError(f"kind_index must be in [0, kinds) = [0, {self.kinds}), got {self.kind_index}")
        if not math.isfinite(self.plateau_threshold_pct):
            raise ValueError(f"plateau_threshold_pct must be finite, got {self.plateau_threshold_pct}")
        if self.history_window < HISTORY_LENGTH:
            raise ValueError(
                f"history_window must be ≥ {HISTORY_LENGTH} (the observation's history length), "
                f"got {self.history_window}"
            )
        if not (math.isfinite(self.stabilization_threshold) and self.stabilization_threshold > 0):
            raise ValueError(f"stabilization_threshold must be positive and finite, got {self.stabilization_threshold}")
        if self.stabilization_epochs < 0:
            raise ValueError(f"stabilization_epochs must be ≥ 0, got {self.stabilization_epochs}")
        self.reset()

    def reset(self) -> None:
        """Forget the episode (histories, bests, counters, latch); the configuration is kept.

        The once-per-tracker scale warning stays disarmed so that it does not repeat every episode.
        """
        self._state = _TrackerState(stabilized=self.stabilization_epochs == 0)

    @property
    def is_stabilized(self) -> bool:
        return self._state.stabilized

    @property
    def loss_history(self) -> tuple[float, ...]:
        """Validation losses of the last `history_window` epochs, oldest first."""
        return self._state.loss_history

    @property
    def accuracy_history(self) -> tuple[float, ...]:
        """Validation accuracies of the last `history_window` epochs, oldest first."""
        return self._state.accuracy_history

    def update(
        self,
        epoch: int,
        train_loss: float,
        train_accuracy: float,
        val_loss: float,
        val_accuracy: float,
        host_params: int,
        seed_params: int,
        seeds_used: int,
    ) -> TrainingSignals:
        """Record one epoch and return its signals."""
        self._state, signals = _advance(
            self, self._state, epoch, train_loss, train_accuracy, val_loss, val_accuracy,
            host_params, seed_params, seeds_used,
        )
        self._warn_once_about_scale(epoch, val_accuracy=val_accuracy, train_accuracy=train_accuracy)
        return signals

    def peek(
        self,
        epoch: int,
        train_loss: float,
        train_accuracy: float,
        val_loss: float,
        val_accuracy: float,
        host_params: int,
        seed_params: int,
        seeds_used: int,
    ) -> TrainingSignals:
        """What `update` would return for these inputs, without changing anything (no warning either)."""
        _, signals = _advance(
            self, self._state, epoch, train_loss, train_accuracy, val_loss, val_accuracy,
            host_params, seed_params, seeds_used,
        )
        return signals

    def _warn_once_about_scale(self, epoch: int, **accuracies: float) -> None:
        """Accuracies are percentages; a 0–1 fraction or a value above 100 means a caller bug."""
        if self._scale_warned:
            return
        for name, value in accuracies.items():
            if value > 100 or (0 < value <= 1 and epoch > 0):
                self._scale_warned = True
                warnings.warn(
                    f"{name}={value} does not look like a percentage in [0, 100] "
                    f"(a 0–1 fraction or a value above 100?); this warning is shown once per tracker",
                    UserWarning,
                    stacklevel=3,
                )
                return


def _advance(
    tracker: SignalTracker,
    state: _TrackerState,
    epoch: int,
    train_loss: float,
    train_accuracy: float,
    val_loss: float,
    val_accuracy: float,
    host_params: int,
    seed_params: int,
    seeds_used: int,
) -> tuple[_TrackerState, TrainingSignals]:
    """The tracker state after one more epoch and that epoch's signals.

    Pure (reads `tracker` only for its configuration): the single code path of `update` and `peek`.
    """
    for name, count in (("epoch", epoch), ("host_params", host_params), ("seed_params", seed_params),
                        ("seeds_used", seeds_used)):
        if count < 0:
            raise ValueError(f"{name} must be ≥ 0, got {count}")
    if tracker.max_seeds and seeds_used > tracker.max_seeds:
        raise ValueError(f"seeds_used={seeds_used} exceeds the germination budget max_seeds={tracker.max_seeds}")
    val_loss, val_accuracy = float(val_loss), float(val_accuracy)
    loss_delta = state.prev_loss - val_loss
    accuracy_delta = val_accuracy - state.prev_accuracy
    # Written so that a NaN accuracy delta counts as "no progress" rather than resetting the count.
    plateau_epochs = 0 if accuracy_delta >= tracker.plateau_threshold_pct else state.plateau_epochs + 1

    stable_epochs, stabilized = state.stable_epochs, state.stabilized
    first_epoch = not state.loss_history
    if not stabilized and not first_epoch:
        if _is_stable_epoch(state.prev_loss, val_loss, tracker.stabilization_threshold):
            stable_epochs += 1
            stabilized = stable_epochs >= tracker.stabilization_epochs
        else:
            stable_epochs = 0

    window = tracker.history_window
    best_accuracy = state.best_val_accuracy
    best_loss = state.best_val_loss
    next_state = _TrackerState(
        loss_history=(*state.loss_history, val_loss)[-window:],
        accuracy_history=(*state.accuracy_history, val_accuracy)[-window:],
        # NaN never becomes a "best" value.
        best_val_accuracy=best_accuracy if math.isnan(val_accuracy) else max(best_accuracy, val_accuracy),
        best_val_loss=best_loss if math.isnan(val_loss) else min(best_loss, val_loss),
        plateau_epochs=plateau_epochs,
        stable_epochs=stable_epochs,
        stabilized=stabilized,
    )
    signals = TrainingSignals(
        epoch=epoch,
        max_epochs=tracker.max_epochs,
        train_loss=float(train_loss),
        val_loss=val_loss,
        loss_delta=loss_delta,
        train_accuracy=float(train_accuracy),
        val_accuracy=val_accuracy,
        accuracy_delta=accuracy_delta,
        plateau_epochs=plateau_epochs,
        host_stabilized=stabilized,
        best_val_accuracy=next_state.best_val_accuracy,
        best_val_loss=next_state.best_val_loss,
        loss_scale=tracker.loss_scale,
        host_params=host_params,
        seed_params=seed_params,
        seeds_used=seeds_used,
        max_seeds=tracker.max_seeds,
        val_loss_history=next_state.loss_history[-HISTORY_LENGTH:],
        val_accuracy_history=next_state.accuracy_history[-HISTORY_LENGTH:],
        input_dims=tracker.input_dims,
        kind_index=tracker.kind_index,
        kinds=tracker.kinds,
    )
    return next_state, signals


def _is_stable_epoch(prev_loss: float, val_loss: float, threshold: float) -> bool:
    """A stable epoch does not regress (a flat loss counts) and improves by less than `threshold`.

    A loss spike (`val_loss ≥ 1.5 · prev_loss`) is a regression, so it is
    covered by the first test; NaN fails it too.
    """
    loss_delta = prev_loss - val_loss
    if not loss_delta >= 0:
        return False
    relative = loss_delta / prev_loss if prev_loss > _CONVERGED_LOSS else 0.0
    return relative < threshold

