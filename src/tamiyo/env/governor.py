"""The governor: a watchdog that rolls an environment back to its last healthy state.

After every epoch the env asks `check(train_loss, val_loss)`. A NaN/inf loss or a validation loss that
explodes (above `explosion_factor` × the best of the last `window` healthy epochs, and above the
per-sample loss of an uninformed predictor) restores the last good snapshot and returns the reason.
Otherwise the env calls `commit` once the epoch's bookkeeping is done, and the snapshot taken then
becomes the new last good state.

What a snapshot holds is the target's business (`Snapshottable`); for a `SeedEnv` it is the host, the
seed modules, the slots' lifecycle state, the optimiser states and the last validation metrics.

It snapshots after
every healthy epoch and only after the health check (never a state that just produced NaN), the
snapshot includes the seed modules and slot state (no "zombie" slots), the explosion test works on
per-sample losses, and the env penalises the transition in which the rollback happened.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol


class Snapshottable(Protocol):
    def snapshot(self) -> Any:
        """An independent copy of the state (later training must not change it)."""

    def restore(self, snapshot: Any) -> None:
        """Return to the state of `snapshot` (which stays usable for another restore)."""


@dataclass(frozen=True)
class GovernorConfig:
    enabled: bool = True
    explosion_factor: float = 4.0
    window: int = 5  # healthy epochs whose best validation loss is the explosion baseline

    def __post_init__(self) -> None:
        if not (math.isfinite(self.explosion_factor) and self.explosion_factor > 1.0):
            raise ValueError(f"governor explosion_factor must be a finite number > 1, got {self.explosion_factor}")
        if self.window < 1:
            raise ValueError(f"governor window must be ≥ 1, got {self.window}")


class Governor:
    """Per-env watchdog; `loss_scale` is the per-sample loss of an uninformed predictor (ln of the class count)."""

    def __init__(self, target: Snapshottable, config: GovernorConfig, loss_scale: float) -> None:
        if not (math.isfinite(loss_scale) and loss_scale > 0):
            raise ValueError(f"governor loss_scale must be positive and finite, got {loss_scale}")
        self.target = target
        self.config = config
        self.loss_scale = loss_scale
        self._recent: deque[float] = deque(maxlen=config.window)
        self._snapshot: Any = None
        self.rollbacks = 0

    def reset(self, val_loss: float) -> None:
        """Start an episode: the target's current state (validated with `val_loss`) is the first good one."""
        if not math.isfinite(val_loss):
            raise ValueError(f"an episode cannot start from a non-finite validation loss ({val_loss})")
        self._recent.clear()
        self.rollbacks = 0
        self.commit(val_loss)

    def diagnose(self, train_loss: float, val_loss: float) -> str | None:
        """Why this epoch is unhealthy, or None if it is healthy (no side effects)."""
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            return f"non-finite loss (train {train_loss}, val {val_loss})"
        if self._recent:
            threshold = max(self.config.explosion_factor * min(self._recent), self.loss_scale)
            if val_loss > threshold:
                return f"validation loss exploded to {val_loss:.4g} (threshold {threshold:.4g})"
        return None

    def check(self, train_loss: float, val_loss: float) -> str | None:
        """Roll the target back if this epoch is unhealthy; return the reason, or None if healthy."""
        if not self.config.enabled:
            return None
        if self._snapshot is None:
            raise RuntimeError("governor.check before reset: there is no good state to roll back to")
        reason = self.diagnose(train_loss, val_loss)
        if reason is not None:
            self.target.restore(self._snapshot)
            self.rollbacks += 1
        return reason

    def commit(self, val_loss: float) -> None:
        """Record a healthy epoch and snapshot the target as the last good state."""
        if not self.config.enabled:
            return
        self._recent.append(val_loss)
        self._snapshot = self.target.snapshot()
