"""Observation features: widths, named offsets, scaling, finiteness and batch consistency."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tamiyo.core.actions import AlphaAlgorithm, AlphaMode, BlueprintAction
from tamiyo.core.observation import (
    NUM_SIGNAL_FIELDS,
    NUM_SLOT_FIELDS,
    ObservationBatch,
    SlotField,
    SlotReport,
    TrainingSignals,
)
from tamiyo.core.stages import STAGE_ONE_HOT_INDEX, SeedStage
from tamiyo.policy.features import (
    BASE_FEATURES,
    LOSS_LIMIT,
    SLOT_FEATURES,
    BaseFeature,
    ContextFeature,
    SlotFeature,
    context_feature_index,
    extract_features,
    gradient_measured_feature_index,
    kind_feature_index,
    obs_dim,
    seed_gradient_feature_index,
    slot_feature_index,
)


def signals(**overrides: object) -> TrainingSignals:
    values = dict(
        epoch=5, max_epochs=25, train_loss=1.15, val_loss=2.3, loss_delta=0.23, train_accuracy=80.0,
        val_accuracy=70.0, accuracy_delta=2.5, plateau_epochs=5, host_stabilized=True, best_val_accuracy=75.0,
        best_val_loss=0.46, loss_scale=2.3, host_params=9000, seed_params=1000, seeds_used=1, max_seeds=4,
        val_loss_history=(2.3, 1.15), val_accuracy_history=(50.0, 60.0, 70.0),
    )
    values.update(overrides)
    return TrainingSignals(**values)  # type: ignore[arg-type]


BLENDING_SLOT = SlotReport(
    stage=SeedStage.BLENDING, epochs_in_stage=5, age=7, alpha=0.4, alpha_target=1.0, alpha_mode=AlphaMode.UP,
    alpha_steps_total=5, alpha_steps_done=2, blend_tempo_epochs=5, alpha_algorithm=AlphaAlgorithm.GATE,
    blueprint=BlueprintAction.ATTENTION, counterfactual=3.0, contribution_velocity=-2.0,
    improvement_since_stage_start=1.5, total_improvement=12.0, seed_params=1000,
)


def features_of(sig: TrainingSignals, slots: list[SlotReport]) -> torch.Tensor:
    return extract_features(ObservationBatch.pack([sig], [slots]))[0]


@pytest.mark.parametrize(("num_slots", "width"), [(1, 67), (2, 108), (3, 149), (5, 231)])
def test_obs_dim(num_slots: int, width: int) -> None:
    assert obs_dim(num_slots) == width
    out = extract_features(ObservationBatch.pack([signals()] * 2, [[SlotReport.empty()] * num_slots] * 2))
    assert out.shape == (2, width) and out.dtype == torch.float32


def test_obs_dim_rejects_zero_slots() -> None:
    with pytest.raises(ValueError, match="num_slots must be ≥ 1, got 0"):
        obs_dim(0)


def test_slot_blocks_tile_the_vector() -> None:
    assert (BASE_FEATURES, SLOT_FEATURES) == (23, 39)
    assert slot_feature_index(0, SlotFeature.IS_ACTIVE) == 23
    last_slot_end = slot_feature_index(2, SlotFeature.BLUEPRINT_ONE_HOT) + len(BlueprintAction)
    assert last_slot_end == context_feature_index(3, ContextFeature.HOST_SIZE)
    assert context_feature_index(3, ContextFeature.INPUT_DIMS) + 1 == seed_gradient_feature_index(3, 0)
    assert seed_gradient_feature_index(3, 2) + 1 == gradient_measured_feature_index(3, 0)
    assert gradient_measured_feature_index(3, 2) + 1 == kind_feature_index(3) == obs_dim(3) - 1


@pytest.mark.parametrize(
    ("host_params", "input_dims", "expected"),
    [(230, 1, (math.log10(230) / 7, 1 / 3)), (6218, 2, (math.log10(6218) / 7, 2 / 3)), (10**9, 5, (1.0, 1.0))],
)
def test_context_columns_tell_the_host_size_and_input_kind(
    host_params: int, input_dims: int, expected: tuple[float, float]
) -> None:
    out = features_of(signals(host_params=host_params, input_dims=input_dims), [SlotReport.empty()] * 3)
    context = out[context_feature_index(3, ContextFeature.HOST_SIZE) : seed_gradient_feature_index(3, 0)]
    assert context.tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("kind_index", "kinds", "expected"), [(0, 1, 0.0), (0, 2, 0.0), (1, 2, 1.0), (1, 3, 0.5)])
def test_the_kind_column_tells_the_episodes_kind(kind_index: int, kinds: int, expected: float) -> None:
    out = features_of(signals(kind_index=kind_index, kinds=kinds), [SlotReport.empty()] * 3)
    assert out[kind_feature_index(3)].item() == pytest.approx(expected)


def test_seed_gradient_columns_tell_a_dead_seed_from_a_healthy_one() -> None:
    dead = SlotReport(stage=SeedStage.TRAINING, epochs_in_stage=1, age=2, gradient_ratio=0.0)
    healthy = SlotReport(stage=SeedStage.TRAINING, epochs_in_stage=1, age=2, gradient_ratio=0.75)
    out = features_of(signals(), [dead, SlotReport.empty(), healthy])
    columns = out[seed_gradient_feature_index(3, 0) : gradient_measured_feature_index(3, 0)]
    assert columns.tolist() == pytest.approx([0.0, 0.0, 0.75 / 1.75], abs=1e-6)


def test_gradient_measured_columns_tell_a_dead_seed_from_one_not_measured_yet() -> None:
    dead = SlotReport(stage=SeedStage.TRAINING, epochs_in_stage=1, age=2, gradient_ratio=0.0)
    unmeasured = SlotReport(stage=SeedStage.GERMINATED, epochs_in_stage=1, age=1)
    out = features_of(signals(), [dead, unmeasured, SlotReport.empty()])
    ratios = out[seed_gradient_feature_index(3, 0) : gradient_measured_feature_index(3, 0)]
    assert ratios.tolist() == [0.0, 0.0, 0.0]
    assert out[gradient_measured_feature_index(3, 0) : kind_feature_index(3)].tolist() == [1.0, 0.0, 0.0]


def test_an_unmeasured_gradient_ratio_travels_through_the_observation_tensor_as_none() -> None:
    batch = ObservationBatch.pack([signals()], [[SlotReport(gradient_ratio=0.0), SlotReport()]])
    _, reports = batch.unpack(0)
    assert [r.gradient_ratio for r in reports] == [0.0, None]


def test_base_block_values() -> None:
    base = features_of(signals(), [SlotReport.empty()])[:BASE_FEATURES]
    expected = {
        BaseFeature.EPOCH_PROGRESS: 0.2, BaseFeature.HOST_STABILIZED: 1.0, BaseFeature.TRAIN_LOSS: 0.5,
        BaseFeature.VAL_LOSS: 1.0, BaseFeature.LOSS_DELTA: 0.1, BaseFeature.TRAIN_ACCURACY: 0.8,
        BaseFeature.VAL_ACCURACY: 0.7, BaseFeature.ACCURACY_DELTA: 0.25, BaseFeature.PLATEAU: 0.2,
        BaseFeature.BEST_VAL_ACCURACY: 0.75, BaseFeature.BEST_VAL_LOSS: 0.2, BaseFeature.SEED_PARAM_SHARE: 0.1,
        BaseFeature.SEED_BUDGET_USED: 0.25,
    }
    for column, value in expected.items():
        assert base[column].item() == pytest.approx(value, abs=1e-6), column.name
    losses = base[BaseFeature.VAL_LOSS_HISTORY : BaseFeature.VAL_LOSS_HISTORY + 5]
    accuracies = base[BaseFeature.VAL_ACCURACY_HISTORY : BaseFeature.VAL_ACCURACY_HISTORY + 5]
    assert losses.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5])  # left-padded with the oldest value
    assert accuracies.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.6, 0.7])


def test_live_slot_block_values() -> None:
    out = features_of(signals(), [SlotReport.empty(), BLENDING_SLOT])
    block = out[slot_feature_index(1, SlotFeature.IS_ACTIVE) : slot_feature_index(2, SlotFeature.IS_ACTIVE)]
    expected = {
        SlotFeature.IS_ACTIVE: 1.0, SlotFeature.ALPHA: 0.4, SlotFeature.CONTRIBUTION: 0.3,
        SlotFeature.CONTRIBUTION_VELOCITY: -0.2, SlotFeature.BLEND_TEMPO: 5 / 8, SlotFeature.ALPHA_TARGET: 1.0,
        SlotFeature.ALPHA_MODE: 0.5, SlotFeature.ALPHA_STEPS_TOTAL: 5 / 8, SlotFeature.ALPHA_STEPS_DONE: 2 / 8,
        SlotFeature.ALPHA_TIME_TO_TARGET: 3 / 8, SlotFeature.ALPHA_VELOCITY: 0.6 / 3, SlotFeature.ALPHA_ALGORITHM: 1.0,
        SlotFeature.EPOCHS_IN_STAGE: 5 / 25, SlotFeature.HAS_COUNTERFACTUAL: 1.0,
        SlotFeature.IMPROVEMENT_SINCE_STAGE_START: 0.15, SlotFeature.TOTAL_IMPROVEMENT: 1.0,  # 12 points, clamped
    }
    for offset, value in expected.items():
        assert block[offset].item() == pytest.approx(value, abs=1e-6), offset.name
    stage = block[SlotFeature.STAGE_ONE_HOT : SlotFeature.ALPHA]
    assert stage.nonzero().flatten().tolist() == [STAGE_ONE_HOT_INDEX[SeedStage.BLENDING]]
    blueprint = block[SlotFeature.BLUEPRINT_ONE_HOT :]
    assert blueprint.nonzero().flatten().tolist() == [BlueprintAction.ATTENTION]
    assert blueprint.sum().item() == 1.0


def test_empty_slot_block_is_inactive_dormant_noop() -> None:
    out = features_of(signals(), [SlotReport.empty(), BLENDING_SLOT])
    block = out[slot_feature_index(0, SlotFeature.IS_ACTIVE) : slot_feature_index(1, SlotFeature.IS_ACTIVE)]
    expected = torch.zeros(SLOT_FEATURES)
    expected[SlotFeature.STAGE_ONE_HOT + STAGE_ONE_HOT_INDEX[SeedStage.DORMANT]] = 1.0
    expected[SlotFeature.BLUEPRINT_ONE_HOT + BlueprintAction.NOOP] = 1.0
    assert torch.equal(block, expected)


@pytest.mark.parametrize("stage", list(SeedStage), ids=lambda s: s.name)
def test_stage_one_hot_is_exact_for_every_stage(stage: SeedStage) -> None:
    out = features_of(signals(), [SlotReport(stage=stage)])
    one_hot = out[slot_feature_index(0, SlotFeature.STAGE_ONE_HOT) : slot_feature_index(0, SlotFeature.ALPHA)]
    expected = torch.zeros(len(STAGE_ONE_HOT_INDEX))
    expected[STAGE_ONE_HOT_INDEX[stage]] = 1.0
    assert torch.equal(one_hot, expected)
    assert out[slot_feature_index(0, SlotFeature.IS_ACTIVE)].item() == float(stage != SeedStage.DORMANT)


def test_first_epoch_infinite_loss_delta_and_missing_counterfactual() -> None:
    sig = signals(loss_delta=math.inf, accuracy_delta=-math.inf, val_loss=1e30, train_loss=math.inf)
    out = features_of(sig, [SlotReport(stage=SeedStage.TRAINING, counterfactual=None)])
    assert out[BaseFeature.LOSS_DELTA].item() == 1.0
    assert out[BaseFeature.ACCURACY_DELTA].item() == -1.0
    assert out[BaseFeature.VAL_LOSS].item() == LOSS_LIMIT and out[BaseFeature.TRAIN_LOSS].item() == LOSS_LIMIT
    assert out[slot_feature_index(0, SlotFeature.CONTRIBUTION)].item() == 0.0
    assert out[slot_feature_index(0, SlotFeature.HAS_COUNTERFACTUAL)].item() == 0.0


@pytest.mark.parametrize(("used", "limit", "value"), [(0, 4, 0.0), (2, 4, 0.5), (4, 4, 1.0), (7, 0, 0.0)])
def test_seed_budget_use(used: int, limit: int, value: float) -> None:
    out = features_of(signals(seeds_used=used, max_seeds=limit), [SlotReport.empty()])
    assert out[BaseFeature.SEED_BUDGET_USED].item() == value


def test_alpha_velocity_is_zero_while_holding_and_signed_when_moving() -> None:
    holding = SlotReport(stage=SeedStage.HOLDING, alpha=0.7, alpha_target=1.0, alpha_mode=AlphaMode.HOLD)
    falling = SlotReport(stage=SeedStage.BLENDING, alpha=0.5, alpha_target=0.0, alpha_mode=AlphaMode.DOWN,
                         alpha_steps_total=4, alpha_steps_done=3)
    out = features_of(signals(), [holding, falling])
    assert out[slot_feature_index(0, SlotFeature.ALPHA_VELOCITY)].item() == 0.0
    assert out[slot_feature_index(1, SlotFeature.ALPHA_VELOCITY)].item() == pytest.approx(-0.5)


def test_retired_stage_raises() -> None:
    obs = ObservationBatch.pack([signals()], [[SlotReport.empty()]])
    obs.slots[0, 0, SlotField.STAGE] = 5
    with pytest.raises(ValueError, match="invalid seed stage value 5"):
        extract_features(obs)


EXTREMES = [0.0, 1.0, -1.0, 0.5, 123.0, -7.0, 1e30, -1e30, math.inf, -math.inf, math.nan]


@st.composite
def extreme_batches(draw: st.DrawFn) -> ObservationBatch:
    """Every column drawn from extreme values (stage kept valid, as the contract requires)."""
    num_envs, num_slots = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    values = st.sampled_from(EXTREMES) | st.floats(-1e6, 1e6, width=32)
    sig = draw(st.lists(values, min_size=num_envs * NUM_SIGNAL_FIELDS, max_size=num_envs * NUM_SIGNAL_FIELDS))
    raw = draw(st.lists(values, min_size=num_envs * num_slots * NUM_SLOT_FIELDS,
                        max_size=num_envs * num_slots * NUM_SLOT_FIELDS))
    slots = torch.tensor(raw, dtype=torch.float32).view(num_envs, num_slots, NUM_SLOT_FIELDS)
    stages = draw(st.lists(st.sampled_from([int(s) for s in SeedStage]), min_size=num_envs * num_slots,
                           max_size=num_envs * num_slots))
    slots[..., SlotField.STAGE] = torch.tensor(stages, dtype=torch.float32).view(num_envs, num_slots)
    return ObservationBatch(torch.tensor(sig, dtype=torch.float32).view(num_envs, NUM_SIGNAL_FIELDS), slots)


@settings(max_examples=60, deadline=None)
@given(extreme_batches())
def test_features_are_finite_bounded_and_batch_equals_rows(obs: ObservationBatch) -> None:
    out = extract_features(obs)
    assert torch.isfinite(out).all()
    assert out.abs().max().item() <= LOSS_LIMIT
    for env in range(obs.num_envs):
        row = extract_features(ObservationBatch(obs.signals[env : env + 1], obs.slots[env : env + 1]))
        assert torch.equal(row[0], out[env])
