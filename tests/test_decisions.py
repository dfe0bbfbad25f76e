import dataclasses

import pytest

from tamiyo.core.actions import (
    AlphaCurveAction,
    AlphaSpeedAction,
    AlphaTargetAction,
    BlueprintAction,
    FactoredAction,
    GerminationStyle,
    LifecycleOp,
    TempoAction,
)
from tamiyo.policy.decisions import Decision


def germinate(slot: int = 1) -> FactoredAction:
    return FactoredAction(
        slot, BlueprintAction.CONV_HEAVY, GerminationStyle.SIGMOID_ADD, TempoAction.STANDARD,
        AlphaTargetAction.FULL, AlphaSpeedAction.INSTANT, AlphaCurveAction.LINEAR, LifecycleOp.GERMINATE,
    )


def op_action(op: LifecycleOp, slot: int) -> FactoredAction:
    return dataclasses.replace(FactoredAction.wait(), op=op, slot=slot)


def test_str_names_op_slot_blueprint_reason_and_confidence():
    decision = Decision(germinate(1), 1, "Plateau detected (3 epochs)", 0.6)
    assert str(decision) == "GERMINATE slot=1 blueprint=conv_heavy | Plateau detected (3 epochs) | confidence=0.60"
    assert decision.blueprint_id == "conv_heavy"
    assert decision.op == LifecycleOp.GERMINATE


def test_wait_without_target_and_with_target():
    assert str(Decision(FactoredAction.wait(), None, "Host not stabilized", 1.0)) == (
        "WAIT | Host not stabilized | confidence=1.00"
    )
    waiting_on = Decision(FactoredAction.wait(), 2, "Blending: alpha=0.50", 1.0)
    assert str(waiting_on).startswith("WAIT slot=2 | ")
    assert waiting_on.blueprint_id is None


def test_blueprint_id_only_for_germinate():
    assert Decision(op_action(LifecycleOp.FOSSILIZE, 0), 0, "good", 0.2).blueprint_id is None


@pytest.mark.parametrize("reason", ["", "   "])
def test_empty_reason_rejected(reason):
    with pytest.raises(ValueError, match="non-empty reason"):
        Decision(FactoredAction.wait(), None, reason, 1.0)


@pytest.mark.parametrize("confidence", [-0.01, 1.01, float("nan"), float("inf")])
def test_confidence_outside_unit_interval_rejected(confidence):
    with pytest.raises(ValueError, match=r"confidence must lie in \[0, 1\]"):
        Decision(FactoredAction.wait(), None, "x", confidence)


def test_slot_index_must_match_the_action_slot_except_for_wait():
    with pytest.raises(ValueError, match="PRUNE targets slot 2 but slot_index is 0"):
        Decision(op_action(LifecycleOp.PRUNE, 2), 0, "x", 1.0)
    with pytest.raises(ValueError, match="slot_index is None"):
        Decision(op_action(LifecycleOp.ADVANCE, 1), None, "x", 1.0)
    with pytest.raises(ValueError, match="slot_index must be ≥ 0"):
        Decision(FactoredAction.wait(), -1, "x", 1.0)


def test_irrelevant_heads_must_be_canonical():
    sloppy = dataclasses.replace(op_action(LifecycleOp.ADVANCE, 0), blueprint=BlueprintAction.NORM)
    with pytest.raises(ValueError, match="head 'blueprint' is irrelevant to ADVANCE and must be 0, got 3"):
        Decision(sloppy, 0, "x", 1.0)
    # For WAIT even the slot head is irrelevant.
    with pytest.raises(ValueError, match="head 'slot' is irrelevant to WAIT"):
        Decision(dataclasses.replace(FactoredAction.wait(), slot=2), 2, "x", 1.0)


def test_decision_is_frozen():
    decision = Decision(FactoredAction.wait(), None, "x", 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.reason = "y"  # type: ignore[misc]
