"""Alpha controller: curves at known points, snapping onto the target, HOLD-only retargeting."""

from __future__ import annotations

import math

import pytest

from tamiyo.core.actions import AlphaCurve, AlphaCurveAction, AlphaMode
from tamiyo.env.alpha import AlphaController, AlphaRetargetError, curve_action, curve_progress


def ramp(target: float, steps: int, curve: AlphaCurve, steepness: float = 12.0, start: float = 0.0) -> list[float]:
    ctl = AlphaController(start)
    ctl.retarget(target, steps, curve, steepness)
    alphas = []
    for _ in range(steps):
        ctl.step()
        alphas.append(ctl.alpha)
    assert ctl.is_holding
    return alphas


def test_linear_three_ticks() -> None:
    assert ramp(1.0, 3, AlphaCurve.LINEAR) == pytest.approx([1 / 3, 2 / 3, 1.0], abs=1e-12)


def test_sigmoid_three_and_eight_ticks_match_reference_ramps() -> None:
    assert ramp(1.0, 3, AlphaCurve.SIGMOID) == pytest.approx([0.117, 0.883, 1.0], abs=1e-3)
    expected = [0.009, 0.045, 0.181, 0.500, 0.819, 0.955, 0.991, 1.0]
    assert ramp(1.0, 8, AlphaCurve.SIGMOID) == pytest.approx(expected, abs=1e-3)


def test_cosine_midpoint_and_quarter() -> None:
    assert curve_progress(AlphaCurve.COSINE, 12.0, 0.5) == pytest.approx(0.5)
    assert curve_progress(AlphaCurve.COSINE, 12.0, 0.25) == pytest.approx(0.5 * (1 - math.cos(math.pi / 4)))


@pytest.mark.parametrize("curve", list(AlphaCurve))
@pytest.mark.parametrize("steepness", [6.0, 12.0, 24.0])
def test_every_curve_maps_ends_to_zero_and_one(curve: AlphaCurve, steepness: float) -> None:
    assert curve_progress(curve, steepness, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert curve_progress(curve, steepness, 1.0) == pytest.approx(1.0, abs=1e-12)


def test_steeper_sigmoid_starts_slower() -> None:
    gentle, sharp = (curve_progress(AlphaCurve.SIGMOID, k, 0.25) for k in (6.0, 24.0))
    assert sharp < gentle < 0.25


def test_last_tick_snaps_exactly_and_holds() -> None:
    ctl = AlphaController()
    ctl.retarget(0.7, 3, AlphaCurve.SIGMOID, 24.0)
    assert ctl.mode is AlphaMode.UP
    assert [ctl.step() for _ in range(3)] == [False, False, True]
    assert ctl.alpha == 0.7 and ctl.mode is AlphaMode.HOLD
    assert (ctl.steps_done, ctl.steps_total) == (3, 3)
    assert ctl.step() is False and ctl.alpha == 0.7  # holding: ticks do nothing


def test_ramp_down_moves_monotonically_to_zero() -> None:
    alphas = ramp(0.0, 4, AlphaCurve.COSINE, start=1.0)
    assert alphas[-1] == 0.0
    assert all(a > b for a, b in zip([1.0, *alphas], alphas, strict=False))


def test_zero_steps_jump_and_hold() -> None:
    ctl = AlphaController(0.2)
    ctl.retarget(0.9, 0)
    assert (ctl.alpha, ctl.mode, ctl.steps_total) == (0.9, AlphaMode.HOLD, 0)


def test_retarget_while_moving_raises() -> None:
    ctl = AlphaController()
    ctl.retarget(1.0, 5)
    ctl.step()
    with pytest.raises(AlphaRetargetError, match="only legal while alpha holds"):
        ctl.retarget(0.5, 2)


@pytest.mark.parametrize(
    ("target", "steps", "steepness", "message"),
    [(1.5, 3, 12.0, "alpha target"), (float("nan"), 3, 12.0, "alpha target"), (1.0, -1, 12.0, "steps"),
     (1.0, 2.5, 12.0, "steps"), (1.0, 3, 0.0, "steepness")],
)
def test_bad_retarget_arguments_raise_and_change_nothing(target, steps, steepness, message) -> None:
    ctl = AlphaController(0.3)
    before = ctl.state_dict()
    with pytest.raises(ValueError, match=message):
        ctl.retarget(target, steps, AlphaCurve.SIGMOID, steepness)
    assert ctl.state_dict() == before


def test_state_dict_round_trip_mid_ramp() -> None:
    ctl = AlphaController()
    ctl.retarget(1.0, 5, AlphaCurve.COSINE)
    ctl.step()
    ctl.step()
    clone = AlphaController()
    clone.load_state_dict(ctl.state_dict())
    assert clone.state_dict() == ctl.state_dict()
    assert clone.step() == ctl.step() and clone.alpha == ctl.alpha
    with pytest.raises(ValueError, match="keys"):
        clone.load_state_dict({"alpha": 0.0})


def test_curve_action_lookup() -> None:
    assert curve_action(AlphaCurve.LINEAR, 6.0) is AlphaCurveAction.LINEAR
    assert curve_action(AlphaCurve.COSINE, 12.0) is AlphaCurveAction.COSINE
    assert curve_action(AlphaCurve.SIGMOID, 6.0) is AlphaCurveAction.SIGMOID_GENTLE
    assert curve_action(AlphaCurve.SIGMOID, 24.0) is AlphaCurveAction.SIGMOID_SHARP
    with pytest.raises(ValueError, match="steepness 7.0"):
        curve_action(AlphaCurve.SIGMOID, 7.0)
