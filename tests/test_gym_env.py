"""The Gymnasium environment `tamiyo/SeedLifecycle-v0`: checker, spaces, masks from the observation."""

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import tamiyo  # noqa: F401  (registers the environment)
from tamiyo.core.actions import HEAD_NAMES, FactoredAction, LifecycleOp
from tamiyo.core.legality import IllegalActionError
from tamiyo.core.observation import NUM_SIGNAL_FIELDS, NUM_SLOT_FIELDS, ObservationBatch, SignalField, SlotField
from tamiyo.core.stages import SeedStage
from tamiyo.env.gym_env import ENV_ID, observation_batch, to_gym_observation
from tamiyo.policy.masks import compute_masks, gym_observation_masks

TINY = {"task": "mnist1d", "max_epochs": 3, "train_subset": 128, "val_subset": 64}


def make(**options):
    return gymnasium.make(ENV_ID, **{**TINY, **options})


def test_check_env_passes():
    env = make(illegal_action="wait")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite Box bounds and the absent render modes are expected
        check_env(env.unwrapped)


def test_spaces_reset_and_step_follow_the_config():
    env = make(slots=["r0c0", "r0c2"], reward="sparse")
    assert env.action_space.nvec.tolist() == [2, 13, 4, 3, 3, 4, 5, 6]
    obs, info = env.reset(seed=4)
    assert obs["loss_delta_measured"].tolist() == [0] and obs["signals"][SignalField.LOSS_DELTA] == 0.0
    assert obs["slots"].shape == (2, NUM_SLOT_FIELDS) and obs["signals"].shape == (NUM_SIGNAL_FIELDS,)
    assert obs["legal_ops"].tolist() == [[1, 1, 0, 0, 0, 0]] * 2  # empty slots: WAIT or GERMINATE
    assert info["action_mask"].dtype == np.int8 and info["action_mask"].shape == (sum(env.action_space.nvec),)
    germinate = [1, 1, 0, 0, 2, 0, 0, int(LifecycleOp.GERMINATE)]  # conv_light into r0c2
    obs, _, terminated, truncated, info = env.step(np.array(germinate))
    assert info["op"] == "GERMINATE" and info["took_effect"] and info["illegal_action"] is None
    assert obs["slots"][1, SlotField.STAGE] == SeedStage.GERMINATED and obs["loss_delta_measured"].tolist() == [1]
    assert not any(key.startswith("time_") for key in info)  # no wall-clock values: runs are comparable
    for _ in range(2):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample() * 0)  # WAIT
    assert terminated and not truncated and info["epoch"] == 3


def test_illegal_action_raises_by_default_and_waits_on_request():
    advance_empty = np.array([0, 0, 0, 0, 0, 0, 0, int(LifecycleOp.ADVANCE)])
    env = make()
    env.reset(seed=0)
    with pytest.raises(IllegalActionError, match="illegal action ADVANCE on slot r0c0 in stage DORMANT"):
        env.step(advance_empty)
    env = make(illegal_action="wait")
    env.reset(seed=0)
    _, _, _, _, info = env.step(advance_empty)
    assert info["op"] == "WAIT" and "ADVANCE on slot r0c0" in info["illegal_action"]
    with pytest.raises(ValueError, match="illegal_action must be one of"):
        make(illegal_action="ignore")


def test_same_seed_same_episode_and_next_episode_differs():
    env = make()
    first, _ = env.reset(seed=7)
    again, _ = env.reset(seed=7)
    following, info = env.reset()
    assert info["episode"] == 1
    np.testing.assert_array_equal(first["signals"], again["signals"])
    assert not np.array_equal(first["signals"], following["signals"])  # a fresh host per episode


def test_action_masks_flat_per_head():
    env = make()
    env.reset(seed=0)
    masks = env.unwrapped.action_masks()
    sizes = list(env.action_space.nvec)
    heads = dict(zip(HEAD_NAMES, np.split(masks, np.cumsum(sizes)[:-1]), strict=True))
    assert heads["op"].tolist() == [True, True, False, False, False, False]
    assert heads["slot"].all() and heads["style"].all()
    assert heads["blueprint"].tolist() == [False, True, True, True, True, True, True, True] + [False] * 5


def _random_batch(rng: np.random.Generator, n: int, num_slots: int) -> ObservationBatch:
    stages = [int(s) for s in SeedStage]
    signals = np.zeros((n, NUM_SIGNAL_FIELDS), dtype=np.float32)
    signals[:, SignalField.MAX_SEEDS] = rng.integers(0, 3, n)
    signals[:, SignalField.SEEDS_USED] = rng.integers(0, 4, n)
    signals[:, SignalField.LOSS_DELTA] = np.where(rng.random(n) < 0.3, np.inf, rng.normal(size=n))
    slots = np.zeros((n, num_slots, NUM_SLOT_FIELDS), dtype=np.float32)
    slots[..., SlotField.STAGE] = rng.choice(stages, (n, num_slots))
    slots[..., SlotField.AGE] = rng.integers(0, 3, (n, num_slots))
    slots[..., SlotField.ALPHA_MODE] = rng.integers(0, 3, (n, num_slots))
    slots[..., SlotField.ALPHA_ALGORITHM] = 1
    unmeasured = rng.random((n, num_slots)) < 0.5
    slots[..., SlotField.COUNTERFACTUAL] = np.where(unmeasured, np.nan, rng.normal(size=(n, num_slots)))
    return ObservationBatch(torch.from_numpy(signals), torch.from_numpy(slots))


@pytest.mark.parametrize("topology", ["cnn", "transformer"])
def test_masks_from_the_gym_observation_equal_the_trainer_masks(topology):
    rng = np.random.default_rng(0)
    batch = _random_batch(rng, n=256, num_slots=3)
    per_env = [to_gym_observation(*batch.unpack(i), topology) for i in range(batch.num_envs)]
    stacked = {key: np.stack([obs[key] for obs in per_env]) for key in per_env[0]}
    expected, got = compute_masks(batch, topology), gym_observation_masks(stacked)
    for name in ("op", "slot_by_op", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve"):
        assert torch.equal(getattr(got, name), getattr(expected, name)), name
    # Every array is finite (what any RL library's network needs), and still carries the trainer's observation
    # losslessly: NaN = unmeasured counterfactual, +inf = no previous loss for the loss delta.
    assert all(np.isfinite(array).all() for array in stacked.values())
    previous_loss = torch.isfinite(batch.signals[:, SignalField.LOSS_DELTA])
    assert stacked["loss_delta_measured"][:, 0].tolist() == previous_loss.tolist()
    back = observation_batch(stacked)
    assert torch.equal(back.signals, batch.signals)
    assert torch.equal(back.slots.nan_to_num(nan=-1e9), batch.slots.nan_to_num(nan=-1e9))


def test_gymnasium_vector_runs_the_env():
    envs = gymnasium.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", **TINY)
    obs, _ = envs.reset(seed=1)
    assert obs["legal_ops"].shape == (2, 3, 6)
    wait = np.tile(FactoredAction.wait().to_indices(), (2, 1))
    obs, rewards, terminated, _, infos = envs.step(wait)
    assert rewards.shape == (2,) and not terminated.any() and infos["op"].tolist() == ["WAIT", "WAIT"]
    envs.close()
