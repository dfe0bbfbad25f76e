"""The five bundles: legality of every action, log-probs, hidden state threading, state dicts."""

import math
import random

import pytest
import torch

from tamiyo.core.actions import (
    HEAD_NAMES,
    HEAD_RELEVANCE,
    IRRELEVANT_HEAD_VALUE,
    AlphaMode,
    BlueprintAction,
    LifecycleOp,
)
from tamiyo.core.observation import HISTORY_LENGTH, ObservationBatch, SlotReport, TrainingSignals
from tamiyo.core.slots import SlotConfig
from tamiyo.core.stages import SeedStage
from tamiyo.policy import (
    InvalidStateMachineError,
    MaskViolationError,
    NotTrainableError,
    compute_masks,
    create_policy,
    extract_features,
)
from tamiyo.policy.heuristic import HeuristicConfig, HeuristicController
from tamiyo.policy.masks import ActionMasks

SLOTS = SlotConfig.default()
CNN_BLUEPRINTS = [BlueprintAction.CONV_LIGHT, BlueprintAction.CONV_HEAVY, BlueprintAction.NORM]


def _signals(rng: random.Random, **overrides) -> TrainingSignals:
    epoch = rng.randint(1, 25)
    loss = rng.uniform(0.3, 2.3)
    accuracy = rng.uniform(10, 90)
    values = dict(
        epoch=epoch, max_epochs=25, train_loss=loss * 0.9, val_loss=loss, loss_delta=rng.uniform(-0.1, 0.2),
        train_accuracy=accuracy + 2, val_accuracy=accuracy, accuracy_delta=rng.uniform(-2, 3),
        plateau_epochs=rng.randint(0, 6), host_stabilized=rng.random() < 0.7, best_val_accuracy=accuracy + 1,
        best_val_loss=loss - 0.05, loss_scale=math.log(10), host_params=20_000, seed_params=rng.choice([0, 3_000]),
        seeds_used=rng.randint(0, 3), max_seeds=rng.choice([0, 2, 3]),
        val_loss_history=tuple(loss + 0.01 * i for i in range(HISTORY_LENGTH)),
        val_accuracy_history=tuple(accuracy - i for i in range(HISTORY_LENGTH)),
    )
    return TrainingSignals(**{**values, **overrides})


def _slot(rng: random.Random, stage: SeedStage | None = None, **overrides) -> SlotReport:
    stage = rng.choice(list(SeedStage)) if stage is None else stage
    if stage == SeedStage.DORMANT:
        return SlotReport.empty()
    age = rng.randint(0, 8)
    values = dict(
        stage=stage, epochs_in_stage=rng.randint(0, age), age=age, alpha=rng.random(), alpha_target=1.0,
        alpha_mode=rng.choice(list(AlphaMode)), blueprint=rng.choice(CNN_BLUEPRINTS),
        counterfactual=rng.choice([None, rng.uniform(-2, 4)]), improvement_since_stage_start=rng.uniform(-4, 4),
        total_improvement=rng.uniform(-4, 4),
    )
    return SlotReport(**{**values, **overrides})


def random_obs(n: int, seed: int) -> ObservationBatch:
    rng = random.Random(seed)
    return ObservationBatch.pack([_signals(rng) for _ in range(n)],
                                 [[_slot(rng) for _ in range(SLOTS.num_slots)] for _ in range(n)])


def _act(bundle, obs: ObservationBatch, hidden=None):
    masks = compute_masks(obs, "cnn")
    return masks, bundle.get_action(extract_features(obs), hidden, masks, context=obs)


def _assert_legal(result, masks: ActionMasks) -> None:
    """Op and (op, slot) legal; relevant heads allowed; irrelevant heads at their canonical value."""
    op = result.actions["op"]
    envs = torch.arange(masks.num_envs)
    assert masks.op[envs, op].all()
    for env in range(masks.num_envs):
        env_op = LifecycleOp(int(op[env]))
        for head in HEAD_NAMES:
            value = int(result.actions[head][env])
            if head not in HEAD_RELEVANCE[env_op]:
                assert value == IRRELEVANT_HEAD_VALUE[head]
            elif head == "slot":
                assert masks.slot_by_op[env, env_op, value]
            else:
                assert getattr(masks, head)[env, value]


# ---- random ----

def test_random_samples_only_legal_actions_with_uniform_log_probs():
    bundle = create_policy("random", SLOTS, "cnn", seed=0)
    seen_ops = set()
    for batch in range(40):
        masks, result = _act(bundle, random_obs(16, seed=batch))
        _assert_legal(result, masks)
        seen_ops.update(result.actions["op"].tolist())
        for head in HEAD_NAMES:
            allowed = result.masks[head].sum(1).float()
            relevant = torch.tensor([head in HEAD_RELEVANCE[LifecycleOp(o)] for o in result.actions["op"].tolist()])
            expected = torch.where(relevant, -allowed.log(), torch.zeros(16))
            torch.testing.assert_close(result.log_probs[head], expected)
        assert torch.equal(result.masks["slot"], masks.slot_by_op[torch.arange(16), result.actions["op"]])
        assert result.value.tolist() == [0.0] * 16
    assert seen_ops == set(LifecycleOp)


def test_random_op_is_uniform_over_legal_ops():
    rng = random.Random(1)
    # slot 0 empty (GERMINATE), slot 1 HOLDING, holding alpha, old (FOSSILIZE, SET_ALPHA_TARGET, PRUNE)
    slots = [SlotReport.empty(), _slot(rng, SeedStage.HOLDING, age=4, alpha_mode=AlphaMode.HOLD),
             _slot(rng, SeedStage.FOSSILIZED)]
    obs = ObservationBatch.pack([_signals(rng, seeds_used=0, max_seeds=0)] * 3000, [slots] * 3000)
    masks, result = _act(create_policy("random", SLOTS, "cnn", seed=5), obs)
    counts = torch.bincount(result.actions["op"], minlength=len(LifecycleOp)).tolist()
    assert counts[LifecycleOp.ADVANCE] == 0
    legal = [LifecycleOp.WAIT, LifecycleOp.GERMINATE, LifecycleOp.SET_ALPHA_TARGET, LifecycleOp.PRUNE,
             LifecycleOp.FOSSILIZE]
    for op in legal:  # 600 expected each; ±5 standard deviations
        assert abs(counts[op] - 600) < 5 * math.sqrt(3000 * 0.2 * 0.8), counts
    germinated_slots = result.actions["slot"][result.actions["op"] == LifecycleOp.GERMINATE]
    assert set(germinated_slots.tolist()) == {0}


def test_random_is_reproducible_from_its_seed():
    obs = random_obs(32, seed=7)
    first = _act(create_policy("random", SLOTS, "cnn", seed=11), obs)[1].actions
    second = _act(create_policy("random", SLOTS, "cnn", seed=11), obs)[1].actions
    other = _act(create_policy("random", SLOTS, "cnn", seed=12), obs)[1].actions
    assert all(torch.equal(first[h], second[h]) for h in HEAD_NAMES)
    assert not all(torch.equal(first[h], other[h]) for h in HEAD_NAMES)


def test_random_rejects_a_mask_without_choices():
    obs = random_obs(4, seed=3)
    masks = compute_masks(obs, "cnn")
    broken = ActionMasks(**{**vars(masks), "tempo": torch.zeros_like(masks.tempo)})
    with pytest.raises(InvalidStateMachineError, match="head 'tempo' has no valid action for env 0"):
        create_policy("random", SLOTS, "cnn").get_action(extract_features(obs), None, broken)


# ---- static ----

def test_static_always_waits():
    bundle = create_policy("static", SLOTS, "cnn")
    for batch in range(5):
        masks, result = _act(bundle, random_obs(8, seed=batch))
        for head in HEAD_NAMES:
            assert result.actions[head].tolist() == [IRRELEVANT_HEAD_VALUE[head]] * 8
            assert result.log_probs[head].tolist() == [0.0] * 8
        assert result.actions["op"].tolist() == [LifecycleOp.WAIT] * 8
        assert result.hidden is None


@pytest.mark.parametrize("name", ["static", "random", "heuristic", "schedule"])
def test_fixed_bundles_are_not_trainable(name):
    bundle = create_policy(name, SLOTS, "cnn", obs_dim=149)
    obs = random_obs(2, seed=0)
    assert (bundle.is_trainable, bundle.network, bundle.state_dict()) == (False, None, {})
    with pytest.raises(NotTrainableError, match=f"the '{name}' policy has no trainable parameters"):
        bundle.evaluate_actions(extract_features(obs).unsqueeze(1), {}, {})
    assert bundle.get_value(extract_features(obs)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"obs must be \[2, 149\] to match the masks and obs_dim, got \[3, 149\]"):
        bundle.get_action(torch.zeros(3, 149), None, compute_masks(obs, "cnn"), context=obs)
    narrow = create_policy(name, SLOTS, "cnn", obs_dim=12)
    assert narrow.obs_dim == 12
    with pytest.raises(ValueError, match=r"obs must be \[2, 12\]"):
        narrow.get_action(extract_features(obs), None, compute_masks(obs, "cnn"), context=obs)


# ---- schedule ----

def test_schedule_actions_are_legal_on_random_states():
    for options in ({}, {"blueprint": "conv_heavy", "slots": ["r0c2"], "start_epoch": 3, "tempo": "fast"}):
        bundle = create_policy("schedule", SLOTS, "cnn", **options)
        for batch in range(10):
            masks, result = _act(bundle, random_obs(8, seed=batch))
            _assert_legal(result, masks)
            assert result.log_probs["op"].tolist() == [0.0] * 8


# ---- heuristic ----

def test_heuristic_needs_the_raw_observations():
    obs = random_obs(2, seed=0)
    with pytest.raises(ValueError, match="pass context=ObservationBatch"):
        create_policy("heuristic", SLOTS, "cnn").get_action(extract_features(obs), None, compute_masks(obs, "cnn"))


def test_heuristic_actions_are_legal_and_state_is_threaded():
    bundle = create_policy("heuristic", SLOTS, "cnn")
    hidden = bundle.initial_hidden(16)
    assert len(hidden) == 16 and hidden.states[0] is not hidden.states[1]
    for batch in range(20):
        masks, result = _act(bundle, random_obs(16, seed=100 + batch), hidden)
        _assert_legal(result, masks)
        assert len(result.hidden) == 16
        # Each env's action is the controller's decision from that env's own state.
        controller = HeuristicController(HeuristicConfig(), "cnn")
        context = random_obs(16, seed=100 + batch)
        expected = []
        for env, state in enumerate(hidden.states):
            controller.load_state_dict(state)
            expected.append(list(controller.decide(*context.unpack(env)).action.to_indices()))
        assert expected == torch.stack([result.actions[h] for h in HEAD_NAMES], 1).tolist()
        hidden = result.hidden


def test_heuristic_converts_decisions_and_remembers_prunes():
    rng = random.Random(0)
    signals = _signals(rng, epoch=10, host_stabilized=True, plateau_epochs=4, seeds_used=0, max_seeds=0)
    failing = _slot(rng, SeedStage.HOLDING, age=5, alpha_mode=AlphaMode.HOLD, counterfactual=0.0,
                    total_improvement=0.0, blueprint=BlueprintAction.CONV_HEAVY)
    obs = ObservationBatch.pack([signals, signals], [[SlotReport.empty(), failing, SlotReport.empty()],
                                                     [SlotReport.empty()] * 3])
    bundle = create_policy("heuristic", SLOTS, "cnn")
    start = bundle.initial_hidden(2)
    masks, result = _act(bundle, obs, start)
    assert result.actions["op"].tolist() == [LifecycleOp.PRUNE, LifecycleOp.GERMINATE]
    assert start.states[0]["penalties"] == {}  # the previous step's state is left untouched
    assert result.actions["slot"].tolist() == [1, 0]
    assert result.actions["blueprint"][1] == BlueprintAction.CONV_LIGHT  # first of the cnn rotation
    assert result.hidden.states[0]["penalties"] == {"conv_heavy": 2.0}
    assert result.hidden.states[1]["penalties"] == {} and result.hidden.states[1]["rotation_index"] == 1
    with pytest.raises(ValueError, match="hidden holds 3 controller states but the batch has 2 envs"):
        bundle.get_action(extract_features(obs), bundle.initial_hidden(3), masks, context=obs)


def test_heuristic_action_refused_by_masks_raises():
    rng = random.Random(0)
    obs = ObservationBatch.pack([_signals(rng)], [[_slot(rng, SeedStage.GERMINATED), SlotReport.empty(),
                                                   SlotReport.empty()]])
    masks = compute_masks(obs, "cnn")
    no_advance = masks.op.clone()
    no_advance[:, LifecycleOp.ADVANCE] = False
    forged = ActionMasks(**{**vars(masks), "op": no_advance})
    with pytest.raises(MaskViolationError, match=r"heuristic policy chose illegal op=5 for env 0"):
        create_policy("heuristic", SLOTS, "cnn").get_action(extract_features(obs), None, forged, context=obs)


# ---- lstm ----

def test_lstm_acts_and_round_trips_its_state_dict():
    torch.manual_seed(0)
    bundle = create_policy("lstm", SLOTS, "cnn", hidden_dim=32, num_layers=2)
    obs = random_obs(6, seed=2)
    features = extract_features(obs)
    hidden = bundle.initial_hidden(6)
    assert [tuple(t.shape) for t in hidden] == [(2, 6, 32), (2, 6, 32)]
    masks, result = _act(bundle, obs, hidden)
    _assert_legal(result, masks)
    assert result.value.shape == (6,) and not result.value.requires_grad

    copy = create_policy("lstm", SLOTS, "cnn", hidden_dim=32, num_layers=2)
    assert not torch.allclose(copy.get_value(features), bundle.get_value(features))
    copy.load_state_dict(bundle.state_dict())
    torch.testing.assert_close(copy.get_value(features), bundle.get_value(features))
    deterministic = [b.get_action(features, None, masks, deterministic=True).actions for b in (bundle, copy)]
    assert all(torch.equal(deterministic[0][h], deterministic[1][h]) for h in HEAD_NAMES)


def test_lstm_evaluate_actions_has_gradients():
    bundle = create_policy("lstm", SLOTS, "cnn", hidden_dim=16)
    obs = random_obs(4, seed=9)
    masks, result = _act(bundle, obs)
    steps = 3
    stored_obs = extract_features(obs).unsqueeze(1).expand(-1, steps, -1)
    actions = {h: t.unsqueeze(1).expand(-1, steps).clone() for h, t in result.actions.items()}
    stored_masks = {h: t.unsqueeze(1).expand(-1, steps, -1).clone() for h, t in result.masks.items()}
    evaluation = bundle.evaluate_actions(stored_obs, actions, stored_masks)
    assert evaluation.value.shape == (4, steps)
    torch.testing.assert_close(evaluation.log_probs["op"][:, 0], result.log_probs["op"].clone())
    loss = sum(lp.sum() for lp in evaluation.log_probs.values()) + evaluation.value.sum()
    loss.backward()
    assert all(p.grad is not None for p in bundle.network.lstm.parameters())
