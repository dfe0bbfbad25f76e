import pytest
import torch

from tamiyo.core.actions import head_sizes
from tamiyo.core.slots import SlotConfig
from tamiyo.ppo.gae import compute_gae
from tamiyo.ppo.storage import RolloutStorage

HEADS = head_sizes(SlotConfig.default())
N, T, D, LAYERS, H = 5, 4, 3, 2, 6
HIDDEN_SHAPE = (LAYERS, N, H)


def _zeros_hidden():
    return (torch.zeros(HIDDEN_SHAPE), torch.zeros(HIDDEN_SHAPE))


def _step_data(step: int, n: int = N) -> dict:
    """Per-step tensors whose values encode (env, step) so minibatch rows can be traced back."""
    env = torch.arange(n, dtype=torch.float32)
    tag = env * 100 + step
    return dict(
        obs=tag[:, None].expand(n, D).clone(),
        masks={h: torch.ones(n, size, dtype=torch.bool) for h, size in HEADS.items()},
        actions={h: torch.full((n,), step % size, dtype=torch.long) for h, size in HEADS.items()},
        log_probs={h: -tag / 1000 for h in HEADS},
        value=tag / 10,
        reward=torch.ones(n),
        done=torch.full((n,), step == T - 1),
    )


def _filled_storage(initial_hidden=None, cut_envs: tuple[int, ...] = (), bootstrap: bool = True) -> RolloutStorage:
    """A full rollout with returns computed; `cut_envs` have not ended their episode at the last step."""
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    storage.set_initial_hidden(initial_hidden or _zeros_hidden())
    for t in range(T):
        data = _step_data(t)
        if t == T - 1:
            data["done"][list(cut_envs)] = False
        storage.insert(t, **data)
    if bootstrap:
        storage.set_bootstrap(torch.arange(N, dtype=torch.float32))
    storage.compute_returns(gamma=0.99, gae_lambda=0.95)
    return storage


def test_minibatches_cover_every_env_once_with_whole_sequences():
    hidden = (torch.randn(LAYERS, N, H), torch.randn(LAYERS, N, H))
    storage = _filled_storage(hidden)
    gen = torch.Generator().manual_seed(0)
    for _epoch in range(2):
        seen = []
        batches = list(storage.minibatches(2, gen))
        assert sorted(len(b.env_indices) for b in batches) == [2, 3]
        for batch in batches:
            idx = batch.env_indices
            seen += idx.tolist()
            b = len(idx)
            expected_tags = idx[:, None].float() * 100 + torch.arange(T).float()
            assert batch.obs.shape == (b, T, D)
            torch.testing.assert_close(batch.obs[..., 0], expected_tags)
            torch.testing.assert_close(batch.values, expected_tags / 10)
            torch.testing.assert_close(batch.log_probs["op"], -expected_tags / 1000)
            assert batch.actions["slot"].shape == (b, T) and batch.masks["blueprint"].shape == (b, T, 13)
            torch.testing.assert_close(batch.advantages, storage.advantages[idx])
            assert batch.initial_hidden[0].shape == (LAYERS, b, H)
            torch.testing.assert_close(batch.initial_hidden[0], hidden[0][:, idx])
            torch.testing.assert_close(batch.initial_hidden[1], hidden[1][:, idx])
        assert sorted(seen) == list(range(N))


def test_minibatch_order_follows_the_generator():
    storage = _filled_storage()

    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return [i for b in storage.minibatches(N, gen) for i in b.env_indices.tolist()]

    assert order(3) == order(3)
    assert any(order(3) != order(s) for s in range(4, 10))


def test_episode_end_is_terminal_and_only_cut_rows_bootstrap():
    storage = _filled_storage(cut_envs=(1, 3))
    expected_adv, expected_ret = compute_gae(
        storage.rewards, storage.values, storage.dones, torch.arange(N, dtype=torch.float32), 0.99, 0.95
    )
    torch.testing.assert_close(storage.advantages, expected_adv)
    torch.testing.assert_close(storage.returns, expected_ret)
    # Last step's value target: the reward alone where the episode ended, reward + γ·bootstrap where cut.
    torch.testing.assert_close(storage.returns[:, -1], torch.tensor([1.0, 1.0 + 0.99 * 1, 1.0, 1.0 + 0.99 * 3, 1.0]))
    discounted = sum(0.99**t for t in range(T))
    torch.testing.assert_close(
        storage.first_step_return(0.99),
        torch.tensor([discounted, discounted + 0.99**T * 1, discounted, discounted + 0.99**T * 3, discounted]),
    )


def test_whole_episodes_need_no_bootstrap_but_cut_rows_do():
    storage = _filled_storage(bootstrap=False)
    torch.testing.assert_close(storage.returns[:, -1], torch.ones(N))
    with pytest.raises(RuntimeError, match="env 2's rollout stops before its episode ends: call set_bootstrap"):
        _filled_storage(cut_envs=(2,), bootstrap=False)


def test_rollout_filled_under_inference_mode_trains_with_autograd():
    with torch.inference_mode():
        storage = _filled_storage()
    assert not storage.obs.is_inference() and not storage.advantages.is_inference()
    weight = torch.ones((), requires_grad=True)
    batch = next(storage.minibatches(1, torch.Generator()))
    (weight * batch.obs * batch.advantages[..., None]).sum().backward()
    assert weight.grad is not None


def test_initial_hidden_is_validated():
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    with pytest.raises(ValueError, match=r"initial hidden c has shape \(2, 4, 6\), expected \(2, 5, 6\)"):
        storage.set_initial_hidden((torch.zeros(HIDDEN_SHAPE), torch.zeros(LAYERS, N - 1, H)))
    with pytest.raises(ValueError, match="must be the LSTM pair"):
        storage.set_initial_hidden((torch.zeros(HIDDEN_SHAPE),))


def test_insert_detaches_and_validates_shapes():
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    storage.set_initial_hidden(_zeros_hidden())
    data = _step_data(0)
    data["value"] = data["value"].requires_grad_()
    storage.insert(0, **data)
    assert not storage.values.requires_grad
    bad = _step_data(1)
    bad["obs"] = torch.zeros(D)
    with pytest.raises(ValueError, match=r"obs has shape \(3,\), expected \(5, 3\)"):
        storage.insert(1, **bad)
    bad = _step_data(1)
    bad["masks"]["slot"] = torch.ones(N, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"masks\['slot'\] has shape \(5, 4\), expected \(5, 3\)"):
        storage.insert(1, **bad)
    bad = _step_data(1)
    del bad["actions"]["op"]
    with pytest.raises(ValueError, match="actions has heads"):
        storage.insert(1, **bad)


def test_lifecycle_order_is_enforced():
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    with pytest.raises(RuntimeError, match="insert before set_initial_hidden"):
        storage.insert(0, **_step_data(0))
    storage.set_initial_hidden(_zeros_hidden())
    with pytest.raises(ValueError, match="insert got step 1, expected step 0"):
        storage.insert(1, **_step_data(1))
    storage.insert(0, **_step_data(0))
    with pytest.raises(RuntimeError, match="before the rollout is full: 1/4 steps"):
        storage.set_bootstrap(torch.zeros(N))
    with pytest.raises(RuntimeError, match="compute_returns needs a full rollout, got 1/4 steps"):
        storage.compute_returns(0.99, 0.95)
    with pytest.raises(RuntimeError, match="needs compute_returns"):
        next(storage.minibatches(1, torch.Generator()))
    storage = _filled_storage()
    with pytest.raises(RuntimeError, match="already holds all 4 steps"):
        storage.insert(4, **_step_data(3))
    with pytest.raises(ValueError, match=r"num_minibatches must be in \[1, num_envs=5\], got 6"):
        next(storage.minibatches(6, torch.Generator()))
    storage.set_initial_hidden(_zeros_hidden())
    with pytest.raises(RuntimeError, match="needs compute_returns"):
        next(storage.minibatches(1, torch.Generator()))


def test_episode_end_before_last_step_is_rejected():
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    storage.set_initial_hidden(_zeros_hidden())
    for t in range(T):
        data = _step_data(t)
        if t == 1:
            data["done"] = torch.tensor([False, False, True, False, False])
        storage.insert(t, **data)
    storage.set_bootstrap(torch.zeros(N))
    with pytest.raises(ValueError, match="env 2 ended an episode at step 1 before the last step 3"):
        storage.compute_returns(0.99, 0.95)


def test_constructor_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_steps must be ≥ 1, got 0"):
        RolloutStorage(N, 0, D, HEADS, HIDDEN_SHAPE)
    with pytest.raises(ValueError, match=r"hidden_shape must be the LSTM state shape \(num_layers, num_envs=5, "):
        RolloutStorage(N, T, D, HEADS, (LAYERS, H))


def _guide(step: int, n: int = N) -> dict:
    """A guide's choice at `step`: action (step + 1) mod size of every head, and only that action allowed."""
    actions = {h: torch.full((n,), (step + 1) % size, dtype=torch.long) for h, size in HEADS.items()}
    masks = {h: torch.nn.functional.one_hot(actions[h], size).bool() for h, size in HEADS.items()}
    return {"guide_actions": actions, "guide_masks": masks}


def test_minibatches_carry_the_guides_actions_and_the_whole_rollouts_advantage_statistics():
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    storage.set_initial_hidden(_zeros_hidden())
    for t in range(T):
        storage.insert(t, **_step_data(t), **_guide(t))
    storage.compute_returns(gamma=0.99, gae_lambda=0.95)
    assert storage.guided
    batch = next(storage.minibatches(2, torch.Generator().manual_seed(0)))
    assert batch.guide_actions["op"].tolist() == [[(t + 1) % HEADS["op"] for t in range(T)]] * len(batch.env_indices)
    assert batch.guide_masks["slot"].sum(dim=-1).eq(1).all()
    assert float(batch.rollout_advantage_mean) == pytest.approx(float(storage.advantages.mean()))
    assert float(batch.rollout_advantage_std) == pytest.approx(float(storage.advantages.std(correction=0)))
    unguided = _filled_storage()
    assert not unguided.guided and next(unguided.minibatches(1, torch.Generator())).guide_actions is None


def test_a_rollout_records_a_guides_action_at_every_step_or_at_none():
    storage = RolloutStorage(N, T, D, HEADS, HIDDEN_SHAPE)
    storage.set_initial_hidden(_zeros_hidden())
    storage.insert(0, **_step_data(0), **_guide(0))
    with pytest.raises(ValueError, match="a rollout records a guide's action at every step or at none; step 1"):
        storage.insert(1, **_step_data(1))
    storage.set_initial_hidden(_zeros_hidden())
    storage.insert(0, **_step_data(0))
    with pytest.raises(ValueError, match="at every step or at none; step 1 breaks that"):
        storage.insert(1, **_step_data(1), **_guide(1))
    with pytest.raises(ValueError, match="guide_actions and guide_masks go together"):
        storage.insert(1, **_step_data(1), guide_actions=_guide(1)["guide_actions"])
