"""Contracts: seed stages, slot ids, the factored action space and the observation batch."""

import math

import pytest
import torch

from tamiyo.core import actions as A
from tamiyo.core.observation import NUM_SIGNAL_FIELDS, NUM_SLOT_FIELDS, ObservationBatch, SlotReport, TrainingSignals
from tamiyo.core.slots import SlotConfig, SlotIdError, parse_slot_id
from tamiyo.core.stages import (
    STAGE_ONE_HOT_INDEX,
    VALID_TRANSITIONS,
    IllegalTransitionError,
    SeedStage,
    check_transition,
    to_stage,
)


def test_stage_values_are_fixed():
    assert {s.name: int(s) for s in SeedStage} == {
        "UNKNOWN": 0, "DORMANT": 1, "GERMINATED": 2, "TRAINING": 3, "BLENDING": 4, "HOLDING": 6,
        "FOSSILIZED": 7, "PRUNED": 8, "EMBARGOED": 9, "RESETTING": 10,
    }
    assert sorted(STAGE_ONE_HOT_INDEX.values()) == list(range(10))


def test_retired_stage_rejected():
    with pytest.raises(ValueError, match="retired"):
        to_stage(5)
    with pytest.raises(ValueError, match="unknown seed stage"):
        to_stage(11)


@pytest.mark.parametrize("source", list(SeedStage))
@pytest.mark.parametrize("target", list(SeedStage))
def test_transition_table(source, target):
    legal = {
        (SeedStage.UNKNOWN, SeedStage.DORMANT), (SeedStage.DORMANT, SeedStage.GERMINATED),
        (SeedStage.GERMINATED, SeedStage.TRAINING), (SeedStage.GERMINATED, SeedStage.PRUNED),
        (SeedStage.TRAINING, SeedStage.BLENDING), (SeedStage.TRAINING, SeedStage.PRUNED),
        (SeedStage.BLENDING, SeedStage.HOLDING), (SeedStage.BLENDING, SeedStage.PRUNED),
        (SeedStage.HOLDING, SeedStage.FOSSILIZED), (SeedStage.HOLDING, SeedStage.BLENDING),
        (SeedStage.HOLDING, SeedStage.PRUNED), (SeedStage.PRUNED, SeedStage.EMBARGOED),
        (SeedStage.EMBARGOED, SeedStage.RESETTING), (SeedStage.RESETTING, SeedStage.DORMANT),
    }
    if (source, target) in legal:
        check_transition(source, target)
        assert target in VALID_TRANSITIONS[source]
    else:
        with pytest.raises(IllegalTransitionError, match=f"{source.name} → {target.name}"):
            check_transition(source, target)


def test_slot_ids_and_config():
    assert parse_slot_id("r2c13") == (2, 13)
    for bad in ["early", "r0", "R0C1", "r-1c0", ""]:
        with pytest.raises(SlotIdError, match="invalid slot id"):
            parse_slot_id(bad)
    config = SlotConfig.default()
    assert config.slot_ids == ("r0c0", "r0c1", "r0c2")
    assert SlotConfig.for_grid(2, 2).slot_ids == ("r0c0", "r0c1", "r1c0", "r1c1")
    assert SlotConfig.from_ids(["r1c0", "r0c2"]).slot_ids == ("r0c2", "r1c0")
    assert config.index_of("r0c2") == 2
    with pytest.raises(SlotIdError, match="unknown slot id 'r0c7'"):
        config.index_of("r0c7")
    with pytest.raises(SlotIdError, match="duplicate"):
        SlotConfig(("r0c0", "r0c0"))
    with pytest.raises(SlotIdError, match="row-major"):
        SlotConfig(("r0c1", "r0c0"))
    with pytest.raises(SlotIdError, match="at least one"):
        SlotConfig(())


def test_head_sizes_and_order():
    sizes = A.head_sizes(SlotConfig.default())
    assert list(sizes) == ["slot", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve", "op"]
    assert list(sizes.values()) == [3, 13, 4, 3, 3, 4, 5, 6]
    assert A.head_sizes(SlotConfig.for_grid(1, 5))["slot"] == 5


def test_value_tables_in_sync_with_enums():
    assert A.BLUEPRINT_IDS[A.BlueprintAction.FLEX_ATTENTION] == "flex_attention"
    assert [A.blueprint_from_id(i) for i in A.BLUEPRINT_IDS] == list(A.BlueprintAction)
    assert A.TEMPO_EPOCHS == (3, 5, 8)
    assert A.ALPHA_TARGET_VALUES == (0.5, 0.7, 1.0)
    assert A.ALPHA_SPEED_STEPS == (0, 3, 5, 8)
    assert A.ALPHA_CURVE_STEEPNESS[A.AlphaCurveAction.SIGMOID_GENTLE] == 6.0
    assert A.ALPHA_CURVE_STEEPNESS[A.AlphaCurveAction.SIGMOID_SHARP] == 24.0
    assert A.STYLE_TO_BLEND[A.GerminationStyle.GATED_GATE] == (A.BlendShape.GATED, A.AlphaAlgorithm.GATE)
    with pytest.raises(ValueError, match="unknown blueprint 'huge'"):
        A.blueprint_from_id("huge")


def test_topology_blueprint_sets():
    cnn = {b.name.lower() for b in A.topology_blueprints("cnn")}
    transformer = {b.name.lower() for b in A.topology_blueprints("transformer")}
    assert cnn == {"conv_light", "attention", "norm", "depthwise", "bottleneck", "conv_small", "conv_heavy"}
    assert transformer == {"attention", "norm", "lora", "lora_large", "mlp_small", "mlp", "flex_attention"}
    with pytest.raises(ValueError, match="unknown topology 'rnn'"):
        A.topology_blueprints("rnn")


def test_head_relevance_table():
    rel = {op.name: {h for h in A.HEAD_NAMES if A.relevance_table()[op][A.HEAD_INDEX[h]]} for op in A.LifecycleOp}
    assert rel["WAIT"] == {"op"}
    assert rel["GERMINATE"] == {"op", "slot", "blueprint", "tempo", "style", "alpha_target"}
    assert rel["SET_ALPHA_TARGET"] == {"op", "slot", "style", "alpha_target", "alpha_speed", "alpha_curve"}
    assert rel["PRUNE"] == {"op", "slot", "alpha_speed", "alpha_curve"}
    assert rel["FOSSILIZE"] == rel["ADVANCE"] == {"op", "slot"}


def test_factored_action_round_trip_and_properties():
    action = A.FactoredAction.from_indices([1, 7, 3, 0, 1, 2, 4, 1])
    assert action.to_indices() == (1, 7, 3, 0, 1, 2, 4, 1)
    assert action.blueprint_id == "conv_heavy"
    assert action.alpha_algorithm == A.AlphaAlgorithm.GATE
    assert action.tempo_epochs == 3
    assert action.alpha_target_value == 0.7
    assert action.alpha_speed_steps == 5
    assert action.alpha_curve_shape == A.AlphaCurve.SIGMOID and action.alpha_curve_steepness == 24.0
    with pytest.raises(ValueError):
        A.FactoredAction.from_indices([0, 13, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="8 indices"):
        A.FactoredAction.from_indices([0, 1])
    assert A.FactoredAction.wait().op == A.LifecycleOp.WAIT


def _signals(**overrides) -> TrainingSignals:
    base = dict(
        epoch=3, max_epochs=25, train_loss=1.5, val_loss=1.6, loss_delta=0.1, train_accuracy=40.0,
        val_accuracy=38.5, accuracy_delta=2.0, plateau_epochs=1, host_stabilized=True, best_val_accuracy=38.5,
        best_val_loss=1.6, loss_scale=math.log(10), host_params=1234, seed_params=56, seeds_used=1, max_seeds=3,
        val_loss_history=(2.0, 1.8, 1.6), val_accuracy_history=(30.0, 36.5, 38.5),
    )
    base.update(overrides)
    return TrainingSignals(**base)


def test_observation_batch_round_trip():
    slots = [SlotReport.empty(), SlotReport(stage=SeedStage.BLENDING, age=4, alpha=0.25, counterfactual=1.5,
                                           alpha_mode=A.AlphaMode.UP, blueprint=A.BlueprintAction.NORM)]
    batch = ObservationBatch.pack([_signals(), _signals(epoch=4)], [slots, list(reversed(slots))])
    assert batch.signals.shape == (2, NUM_SIGNAL_FIELDS) and batch.slots.shape == (2, 2, NUM_SLOT_FIELDS)
    assert batch.stage().tolist() == [[1, 4], [4, 1]]
    assert batch.alpha_holding().tolist() == [[True, False], [False, True]]
    signals, reports = batch.unpack(0)
    assert signals.epoch == 3 and signals.host_stabilized is True
    assert signals.val_loss_history == pytest.approx((2.0, 2.0, 2.0, 1.8, 1.6))  # left-padded, oldest first
    assert reports[0].counterfactual is None and reports[0].is_empty
    assert reports[1].counterfactual == pytest.approx(1.5) and reports[1].blueprint == A.BlueprintAction.NORM


def test_observation_batch_shape_errors():
    with pytest.raises(ValueError, match="signals must be"):
        ObservationBatch(torch.zeros(2, 3), torch.zeros(2, 3, NUM_SLOT_FIELDS))
    with pytest.raises(ValueError, match="disagree on N"):
        ObservationBatch(torch.zeros(2, NUM_SIGNAL_FIELDS), torch.zeros(3, 3, NUM_SLOT_FIELDS))
