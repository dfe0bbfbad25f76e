"""The alpha controller: moves a seed's blend amplitude one tick per epoch along a curve to a target.

Alpha only changes through `retarget` (legal while the controller holds) and `step` (one tick). The
last tick lands exactly on the target, so gates can compare alpha with the target without tolerance
games, and the controller then holds again.
"""

from __future__ import annotations

import math
from typing import Any

from tamiyo.core.actions import ALPHA_CURVE_SHAPES, ALPHA_CURVE_STEEPNESS, AlphaCurve, AlphaCurveAction, AlphaMode

DEFAULT_STEEPNESS = 12.0


class AlphaRetargetError(RuntimeError):
    """`retarget` was called while alpha was still moving towards an earlier target."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def curve_progress(curve: AlphaCurve, steepness: float, t: float) -> float:
    """Fraction of the way from start to target after a fraction `t` ∈ [0, 1] of the ticks.

    Every curve maps 0 → 0 and 1 → 1. SIGMOID is rescaled so its ends meet 0 and 1 exactly;
    `steepness` (k > 0) only shapes SIGMOID.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"curve position t must be in [0, 1], got {t}")
    if not steepness > 0.0:
        raise ValueError(f"alpha curve steepness must be > 0, got {steepness}")
    curve = AlphaCurve(curve)
    if curve is AlphaCurve.LINEAR:
        return t
    if curve is AlphaCurve.COSINE:
        return 0.5 * (1.0 - math.cos(math.pi * t))
    low, high = _sigmoid(-steepness / 2.0), _sigmoid(steepness / 2.0)
    return (_sigmoid(steepness * (t - 0.5)) - low) / (high - low)


def curve_action(curve: AlphaCurve, steepness: float) -> AlphaCurveAction:
    """The alpha_curve head value that describes `(curve, steepness)`; steepness only matters for SIGMOID."""
    for action, (shape, k) in enumerate(zip(ALPHA_CURVE_SHAPES, ALPHA_CURVE_STEEPNESS, strict=True)):
        if shape == curve and (curve != AlphaCurve.SIGMOID or k == steepness):
            return AlphaCurveAction(action)
    raise ValueError(
        f"no alpha_curve action for curve {AlphaCurve(curve).name} with steepness {steepness}; "
        f"sigmoid steepness must be one of {sorted(set(ALPHA_CURVE_STEEPNESS[2:]))}"
    )


class AlphaController:
    """Alpha, its current ramp (start → target over `steps_total` ticks along `curve`) and the tick count."""

    def __init__(self, alpha: float = 0.0) -> None:
        alpha = _check_unit(alpha, "alpha")
        self.alpha = alpha
        self.start = alpha
        self.target = alpha
        self.mode = AlphaMode.HOLD
        self.curve = AlphaCurve.LINEAR
        self.steepness = DEFAULT_STEEPNESS
        self.steps_total = 0
        self.steps_done = 0

    @property
    def is_holding(self) -> bool:
        return self.mode is AlphaMode.HOLD

    def retarget(
        self,
        target: float,
        steps: int,
        curve: AlphaCurve = AlphaCurve.LINEAR,
        steepness: float = DEFAULT_STEEPNESS,
    ) -> None:
        """Start a ramp from the current alpha to `target` over `steps` ticks (0 = jump now and hold)."""
        if not self.is_holding:
            raise AlphaRetargetError(
                f"cannot retarget alpha to {target} while it is moving {self.mode.name} towards {self.target} "
                f"(tick {self.steps_done}/{self.steps_total}); retargeting is only legal while alpha holds"
            )
        target = _check_unit(target, "alpha target")
        check_ramp_steps(steps)
        curve_progress(curve, steepness, 0.0)  # validates curve and steepness before any state changes
        self.start = self.alpha
        self.target = target
        self.curve = AlphaCurve(curve)
        self.steepness = float(steepness)
        self.steps_done = 0
        if steps == 0 or target == self.alpha:
            self.alpha = target
            self.steps_total = 0
            self.mode = AlphaMode.HOLD
        else:
            self.steps_total = steps
            self.mode = AlphaMode.UP if target > self.alpha else AlphaMode.DOWN

    def step(self) -> bool:
        """Advance one tick; True when this tick reached the target (alpha then equals it exactly)."""
        if self.is_holding:
            return False
        self.steps_done += 1
        if self.steps_done >= self.steps_total:
            self.alpha = self.target
            self.mode = AlphaMode.HOLD
            return True
        progress = curve_progress(self.curve, self.steepness, self.steps_done / self.steps_total)
        alpha = self.start + (self.target - self.start) * progress
        # Guard against float overshoot so alpha stays between start and target.
        self.alpha = min(max(alpha, min(self.start, self.target)), max(self.start, self.target))
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "start": self.start,
            "target": self.target,
            "mode": int(self.mode),
            "curve": int(self.curve),
            "steepness": self.steepness,
            "steps_total": self.steps_total,
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"alpha controller state keys {sorted(state)} do not match {sorted(expected)}")
        self.alpha = _check_unit(state["alpha"], "alpha")
        self.start = _check_unit(state["start"], "alpha start")
        self.target = _check_unit(state["target"], "alpha target")
        self.mode = AlphaMode(state["mode"])
        self.curve = AlphaCurve(state["curve"])
        self.steepness = float(state["steepness"])
        self.steps_total = int(state["steps_total"])
        self.steps_done = int(state["steps_done"])


def check_ramp_steps(steps: int) -> int:
    """Validate a ramp length in ticks (0 = instant)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"alpha ramp steps must be an integer ≥ 0, got {steps!r}")
    return steps


def _check_unit(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value
