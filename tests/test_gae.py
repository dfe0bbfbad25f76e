import pytest
import torch

from tamiyo.ppo.gae import compute_gae


def test_rollout_cut_before_episode_end_bootstraps_from_final_value():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    dones = torch.tensor([[False, False, False]])  # the episode goes on after this rollout
    adv, ret = compute_gae(rewards, values, dones, torch.tensor([2.0]), gamma=0.9, lam=0.8)
    # δ2 = 2 + 0.9·2.0 − 1.5 = 2.3;  δ1 = 0 + 0.9·1.5 − 1 = 0.35;  δ0 = 1 + 0.9·1 − 0.5 = 1.4
    # A2 = 2.3;  A1 = 0.35 + 0.72·2.3 = 2.006;  A0 = 1.4 + 0.72·2.006 = 2.84432
    torch.testing.assert_close(adv, torch.tensor([[2.84432, 2.006, 2.3]]))
    torch.testing.assert_close(ret, torch.tensor([[3.34432, 3.006, 3.8]]))


def test_episode_end_at_the_horizon_is_terminal_and_ignores_bootstrap():
    rewards = torch.tensor([[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]])
    dones = torch.tensor([[False, False, True], [False, False, True]])
    adv, ret = compute_gae(rewards, values, dones, torch.tensor([100.0, -7.0]), gamma=0.9, lam=0.8)
    # δ2 = 2 − 1.5 = 0.5 (no bootstrap);  A1 = 0.35 + 0.72·0.5 = 0.71;  A0 = 1.4 + 0.72·0.71 = 1.9112
    torch.testing.assert_close(adv, torch.tensor([[1.9112, 0.71, 0.5]] * 2))
    torch.testing.assert_close(ret[:, -1], torch.tensor([2.0, 2.0]))  # the last target is the last reward
    adv_none, _ = compute_gae(rewards, values, dones, None, gamma=0.9, lam=0.8)
    torch.testing.assert_close(adv_none, adv)


def test_gamma_one_lambda_one_gives_monte_carlo_return_plus_bootstrap_for_cut_rows_only():
    gen = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(3, 5, generator=gen), torch.randn(3, 5, generator=gen)
    bootstrap = torch.randn(3, generator=gen)
    dones = torch.zeros(3, 5, dtype=torch.bool)
    dones[0, -1] = True  # env 0's episode ends; envs 1 and 2 are cut
    adv, ret = compute_gae(rewards, values, dones, bootstrap, gamma=1.0, lam=1.0)
    reward_to_go = rewards.flip(1).cumsum(1).flip(1)
    continued = torch.tensor([0.0, 1.0, 1.0])[:, None] * bootstrap[:, None]
    torch.testing.assert_close(ret, reward_to_go + continued)
    torch.testing.assert_close(adv, reward_to_go + continued - values)


def test_lambda_zero_gives_one_step_td_error():
    gen = torch.Generator().manual_seed(1)
    rewards, values = torch.randn(2, 4, generator=gen), torch.randn(2, 4, generator=gen)
    bootstrap = torch.randn(2, generator=gen)
    adv, _ = compute_gae(rewards, values, torch.zeros(2, 4, dtype=torch.bool), bootstrap, gamma=0.9, lam=0.0)
    next_values = torch.cat([values[:, 1:], bootstrap[:, None]], dim=1)
    torch.testing.assert_close(adv, rewards + 0.9 * next_values - values)


def test_mid_rollout_terminal_restarts_the_recursion():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    values = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    dones = torch.tensor([[False, True, False, False]])
    adv, _ = compute_gae(rewards, values, dones, torch.tensor([1.0]), gamma=1.0, lam=1.0)
    # First episode (steps 0, 1) ends terminally; second (steps 2, 3) bootstraps from 1.0.
    torch.testing.assert_close(adv, torch.tensor([[3.0 - 0.1, 2.0 - 0.2, 8.0 - 0.3, 5.0 - 0.4]]))


def test_cut_rollout_without_bootstrap_is_rejected():
    dones = torch.tensor([[False, False, True], [False, False, False]])
    with pytest.raises(ValueError, match="env 1's rollout is cut before its episode ends, so it needs a bootstrap"):
        compute_gae(torch.zeros(2, 3), torch.zeros(2, 3), dones, None)


def test_shape_and_range_errors():
    with pytest.raises(ValueError, match=r"values has shape \(2, 3\), expected \(2, 4\)"):
        compute_gae(torch.zeros(2, 4), torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"bootstrap_value has shape \(3,\), expected \(2,\)"):
        compute_gae(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="lam must be in"):
        compute_gae(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2), lam=1.2)
