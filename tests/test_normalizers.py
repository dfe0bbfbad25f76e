import io

import numpy as np
import pytest
import torch

from tamiyo.ppo.normalizers import ObservationNormalizer, RewardNormalizer, RunningMeanStd


def _roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("batch_sizes", [(1, 1, 1), (7, 1, 30), (50,)])
def test_running_stats_equal_numpy_over_concatenated_batches(batch_sizes):
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) * np.array([1, 10, 0.1, 1]) for n in batch_sizes]
    stats = RunningMeanStd((4,))
    for batch in batches:
        stats.update(torch.from_numpy(batch))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean.numpy(), everything.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.var.numpy(), everything.var(axis=0), rtol=1e-10, atol=1e-12)
    assert stats.count == len(everything)
    assert stats.mean.dtype == torch.float64


def test_running_stats_flatten_leading_dims_and_keep_float64():
    stats = RunningMeanStd((2,))
    x = torch.arange(24, dtype=torch.float32).reshape(3, 4, 2)
    stats.update(x)
    flat = x.reshape(-1, 2).double()
    torch.testing.assert_close(stats.mean, flat.mean(0))
    torch.testing.assert_close(stats.var, flat.var(0, correction=0))


def test_normalize_standardises_and_clips_in_input_dtype():
    stats = RunningMeanStd((2,), epsilon=1e-8)
    stats.update(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))  # mean (1, 20), var (1, 100)
    out = stats.normalize(torch.tensor([[3.0, 20.0], [1.0, 1000.0]]), clip=5.0)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[2.0, 0.0], [0.0, 5.0]]), atol=1e-6, rtol=0)


def test_empty_statistics_only_clip():
    stats = RunningMeanStd((3,))
    torch.testing.assert_close(stats.normalize(torch.tensor([0.5, -2.0, 9.0]), clip=5.0),
                               torch.tensor([0.5, -2.0, 5.0]))


def test_update_rejects_nan_and_wrong_shape():
    stats = RunningMeanStd((3,))
    with pytest.raises(ValueError, match="NaN or infinite"):
        stats.update(torch.tensor([[1.0, float("nan"), 0.0]]))
    with pytest.raises(ValueError, match=r"batch shape \(2, 4\) does not end in the statistics shape \(3,\)"):
        stats.update(torch.zeros(2, 4))
    assert stats.count == 0


def test_observation_normalizer_frozen_mode_keeps_statistics():
    norm = ObservationNormalizer(2, clip=5.0)
    norm.update(torch.tensor([[0.0, 0.0], [2.0, 4.0]]))
    before = norm.normalize(torch.tensor([[1.0, 1.0]]))
    norm.frozen = True
    norm.update(torch.full((10, 2), 100.0))
    torch.testing.assert_close(norm.normalize(torch.tensor([[1.0, 1.0]])), before)
    assert norm.stats.count == 2


def test_observation_normalizer_state_roundtrips_weights_only():
    norm = ObservationNormalizer(3)
    norm.update(torch.randn(20, 3, generator=torch.Generator().manual_seed(1)) * 4 + 2)
    restored = ObservationNormalizer(3)
    restored.load_state_dict(_roundtrip(norm.state_dict()))
    x = torch.randn(5, 3)
    torch.testing.assert_close(restored.normalize(x), norm.normalize(x), rtol=0, atol=0)
    assert restored.stats.count == 20
    with pytest.raises(ValueError, match=r"shape \(3,\) do not fit a normaliser of shape \(4,\)"):
        ObservationNormalizer(4).load_state_dict(norm.state_dict())


def test_observation_normalizer_loads_fewer_columns_when_asked_and_passes_the_new_ones_through():
    norm = ObservationNormalizer(3)
    norm.update(torch.randn(20, 3, generator=torch.Generator().manual_seed(1)) * 4 + 2)
    wider = ObservationNormalizer(5)
    wider.load_state_dict(norm.state_dict(), new_columns=True)
    x = torch.randn(6, 5)
    torch.testing.assert_close(wider.normalize(x)[:, :3], norm.normalize(x[:, :3]), rtol=0, atol=0)
    torch.testing.assert_close(wider.normalize(x)[:, 3:], x[:, 3:].clamp(-5, 5))  # mean 0, variance 1
    assert wider.stats.count == 20


def test_reward_normalizer_tracks_discounted_return_and_resets_at_done():
    norm = RewardNormalizer(num_envs=2, gamma=0.5, epsilon=1e-8, prior_count=0)
    norm.update(torch.tensor([1.0, 2.0]), torch.tensor([True, False]))
    torch.testing.assert_close(norm.discounted_returns, torch.tensor([0.0, 2.0], dtype=torch.float64))
    norm.update(torch.tensor([1.0, 2.0]), torch.tensor([False, False]))
    # env 0 restarted after its done: 1; env 1 carried on: 0.5·2 + 2 = 3.
    torch.testing.assert_close(norm.discounted_returns, torch.tensor([1.0, 3.0], dtype=torch.float64))
    seen = np.array([1.0, 2.0, 1.0, 3.0])
    assert norm.return_stats.var.item() == pytest.approx(seen.var())
    out = norm.normalize(torch.tensor([1.5, -3.0]))
    expected = torch.tensor([1.5, -3.0]) / np.sqrt(seen.var() + 1e-8)
    torch.testing.assert_close(out, expected.float())


def test_reward_normalizer_divides_without_centering_and_clips():
    norm = RewardNormalizer(num_envs=1, gamma=0.0, clip=2.0, prior_count=0)
    for r in (1.0, 3.0):  # gamma 0: the returns are the rewards, mean 2, std 1
        norm.update(torch.tensor([r]), torch.tensor([False]))
    torch.testing.assert_close(norm.normalize(torch.tensor([0.5, 2.5, -7.0])),
                               torch.tensor([0.5, 2.0, -2.0]), atol=1e-6, rtol=0)


def test_reward_normalizer_frozen_and_state_roundtrip():
    norm = RewardNormalizer(num_envs=3)
    gen = torch.Generator().manual_seed(2)
    for _ in range(4):
        norm.update(torch.randn(3, generator=gen), torch.tensor([False, True, False]))
    restored = RewardNormalizer(num_envs=3)
    restored.load_state_dict(_roundtrip(norm.state_dict()))
    torch.testing.assert_close(restored.discounted_returns, norm.discounted_returns, rtol=0, atol=0)
    r = torch.tensor([0.3, -1.0, 2.0])
    torch.testing.assert_close(restored.normalize(r), norm.normalize(r), rtol=0, atol=0)

    restored.frozen = True
    restored.update(torch.full((3,), 50.0), torch.zeros(3, dtype=torch.bool))
    torch.testing.assert_close(restored.normalize(r), norm.normalize(r), rtol=0, atol=0)
    assert restored.return_stats.count == 100 + 12  # the prior's pseudo-samples and the 12 returns seen

    with pytest.raises(ValueError, match=r"discounted returns have shape \(3,\), expected \(2,\)"):
        RewardNormalizer(num_envs=2).load_state_dict(norm.state_dict())


def test_reward_normalizer_cold_start_keeps_tiny_rewards_tiny():
    """First step of 4 envs with nearly equal rewards: the prior, not a std of 4 samples, sets the scale."""
    rewards = torch.tensor([-0.0200, -0.02003, -0.02007, -0.0201])
    cold = RewardNormalizer(num_envs=4, prior_count=0)
    cold.update(rewards, torch.zeros(4, dtype=torch.bool))
    assert (cold.normalize(rewards) == -10.0).all()  # what a cold start does: every reward hits the clip

    warm = RewardNormalizer(num_envs=4)
    warm.update(rewards, torch.zeros(4, dtype=torch.bool))
    out = warm.normalize(rewards)
    torch.testing.assert_close(out, rewards, rtol=0.03, atol=0)  # the prior std 1 leaves them (nearly) as they are
    assert out.abs().max() < 0.021


def test_reward_normalizer_prior_gives_way_to_the_data():
    norm = RewardNormalizer(num_envs=4, gamma=0.0, prior_count=100)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2500):  # 10 000 returns of std 0.1 against 100 pseudo-samples of std 1
        norm.update(0.1 * torch.randn(4, generator=gen), torch.zeros(4, dtype=torch.bool))
    assert norm.return_stats.std.item() == pytest.approx(((0.01 * 10_000 + 100) / 10_100) ** 0.5, rel=0.05)


def test_reward_normalizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="gamma must be in"):
        RewardNormalizer(2, gamma=1.5)
    with pytest.raises(ValueError, match="clip must be > 0, got 0"):
        RewardNormalizer(2, clip=0)
    with pytest.raises(ValueError, match="prior_count must be ≥ 0, got -1"):
        RewardNormalizer(2, prior_count=-1)
    with pytest.raises(ValueError, match="prior_std must be > 0, got 0"):
        RewardNormalizer(2, prior_std=0.0)
    with pytest.raises(ValueError, match=r"must both have shape \(2,\)"):
        RewardNormalizer(2).update(torch.zeros(3), torch.zeros(3, dtype=torch.bool))
