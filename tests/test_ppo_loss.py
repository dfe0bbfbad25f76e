import dataclasses
import math
from dataclasses import dataclass

import pytest
import torch

from tamiyo.core.actions import HEAD_NAMES, LifecycleOp, head_sizes, topology_blueprints
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import FactoredRecurrentActorCritic
from tamiyo.ppo.config import PPOOptions, per_head_coefficients
from tamiyo.ppo.loss import entropy_coefficients, explained_variance, ppo_loss
from tamiyo.ppo.storage import Minibatch, RolloutStorage

SLOTS = SlotConfig.default()
HEADS = head_sizes(SLOTS)
COEF = dict.fromkeys(HEAD_NAMES, 0.05)
G, W = int(LifecycleOp.GERMINATE), int(LifecycleOp.WAIT)


@dataclass
class FakeEval:
    """Stand-in for the network's EvalResult: what the loss reads."""

    log_probs: dict
    entropy: dict
    value: torch.Tensor


def _batch(ops: list[list[int]], advantages=None, seed: int = 0) -> Minibatch:
    gen = torch.Generator().manual_seed(seed)
    op = torch.tensor(ops)
    b, t = op.shape
    shape = (b, t)
    advantages = torch.randn(shape, generator=gen) if advantages is None else advantages
    return Minibatch(
        env_indices=torch.arange(b),
        obs=torch.zeros(b, t, 2),
        actions={h: (op if h == "op" else torch.zeros(shape, dtype=torch.long)) for h in HEAD_NAMES},
        masks={h: torch.ones(b, t, n, dtype=torch.bool) for h, n in HEADS.items()},
        log_probs={h: -torch.rand(shape, generator=gen) for h in HEAD_NAMES},
        values=torch.zeros(shape),
        advantages=advantages,
        returns=torch.zeros(shape),
        initial_hidden=(torch.zeros(1, b, 4), torch.zeros(1, b, 4)),
        rollout_advantage_mean=advantages.mean(),  # this minibatch is the whole rollout
        rollout_advantage_std=advantages.std(correction=0),
    )


def _same_as_old(batch: Minibatch, entropy: float = 0.5) -> FakeEval:
    return FakeEval(
        log_probs={h: lp.clone().requires_grad_() for h, lp in batch.log_probs.items()},
        entropy={h: torch.full_like(batch.values, entropy) for h in HEAD_NAMES},
        value=batch.values.clone(),
    )


def test_ratio_one_and_kl_zero_when_log_probs_unchanged():
    batch = _batch([[G, W, G], [W, W, G]])
    for mode in ("joint", "per_head"):
        terms, m = ppo_loss(_same_as_old(batch), batch, PPOOptions(ratio=mode), COEF)
        assert m["approx_kl"].item() == 0.0
        assert m["ratio/mean"].item() == m["ratio/min"].item() == m["ratio/max"].item() == 1.0
        assert m["clip_fraction/joint"].item() == 0.0 and m["clip_fraction/op"].item() == 0.0
        assert all(not v.requires_grad for v in m.values())
        # Ratio 1: each surrogate is −mean of the normalised advantages over its steps.
        adv = batch.advantages
        normalised = (adv - adv.mean()) / adv.std(correction=0)
        if mode == "joint":
            assert abs(m["loss/policy"].item()) < 1e-6
        else:  # op over all steps (mean 0) + five heads relevant on the three GERMINATE steps of six
            germinate = normalised[batch.actions["op"] == G]
            assert m["loss/policy"].item() == pytest.approx(-5 * germinate.sum().item() / 6, rel=1e-5)


def test_policy_loss_without_advantage_normalisation_is_minus_mean_advantage():
    adv = torch.tensor([[1.0, 2.0, 3.0]])
    batch = _batch([[G, W, W]], advantages=adv)
    _, m = ppo_loss(_same_as_old(batch), batch, PPOOptions(advantage_normalization="none"), COEF)
    assert m["loss/policy"].item() == pytest.approx(-2.0)
    assert m["advantage/mean"].item() == pytest.approx(2.0)


def test_rollout_normalisation_scales_by_the_whole_rollout_not_the_minibatch():
    # A minibatch of good episodes only: per minibatch, half its steps would be pushed down.
    adv = torch.tensor([[1.0, 2.0, 3.0]])
    batch = dataclasses.replace(_batch([[G, W, W]], advantages=adv), rollout_advantage_mean=torch.tensor(0.0),
                                rollout_advantage_std=torch.tensor(2.0))
    _, rollout = ppo_loss(_same_as_old(batch), batch, PPOOptions(advantage_normalization="rollout"), COEF)
    _, minibatch = ppo_loss(_same_as_old(batch), batch, PPOOptions(advantage_normalization="minibatch"), COEF)
    assert rollout["loss/policy"].item() == pytest.approx(-1.0, rel=1e-6)  # −mean(A / 2)
    assert minibatch["loss/policy"].item() == pytest.approx(0.0, abs=1e-6)  # centred on this minibatch
    with pytest.raises(ValueError, match=r"^ppo.advantage_normalization must be 'rollout', 'minibatch' or 'none', "
                                         r"got 'episode'$"):
        PPOOptions(advantage_normalization="episode")


def test_joint_and_per_head_differ_when_heads_move_apart():
    adv = torch.tensor([[1.0, -1.0, 2.0, -2.0]])
    batch = _batch([[G, G, G, G]], advantages=adv)
    new = _same_as_old(batch)
    with torch.no_grad():  # blueprint up by 0.5, tempo down by 0.5: the joint action's probability is unchanged
        new.log_probs["blueprint"] += 0.5
        new.log_probs["tempo"] -= 0.5
    cfg = dict(advantage_normalization="none")
    _, joint = ppo_loss(new, batch, PPOOptions(ratio="joint", **cfg), COEF)
    _, per_head = ppo_loss(new, batch, PPOOptions(ratio="per_head", **cfg), COEF)

    assert joint["loss/policy"].item() == pytest.approx(-adv.mean().item())  # ratio 1 → −mean(A) = 0
    assert joint["approx_kl"].item() == pytest.approx(0.0, abs=1e-7)
    up, down = math.exp(0.5), math.exp(-0.5)

    def head_loss(r: float) -> float:
        return -sum(min(r * a, min(max(r, 0.8), 1.2) * a) for a in adv[0].tolist()) / 4

    # The other relevant heads (op, slot, style, alpha_target) have ratio 1 and add −mean(A) = 0 each.
    assert per_head["loss/policy"].item() == pytest.approx(head_loss(up) + head_loss(down), rel=1e-5)
    assert per_head["loss/policy"].item() != pytest.approx(joint["loss/policy"].item())
    assert per_head["clip_fraction/blueprint"].item() == 1.0 and per_head["clip_fraction/tempo"].item() == 1.0
    assert per_head["clip_fraction/op"].item() == 0.0 and per_head["clip_fraction/joint"].item() == 0.0


def test_per_head_surrogate_weighs_each_relevant_step_like_the_policy_gradient():
    adv = torch.tensor([[4.0, 1.0, 1.0, 1.0]])
    batch = _batch([[G, W, W, W]], advantages=adv)
    new = _same_as_old(batch)
    with torch.no_grad():
        new.log_probs["blueprint"][0, 0] += 0.1  # only the GERMINATE step has a blueprint choice
    _, m = ppo_loss(new, batch, PPOOptions(ratio="per_head", advantage_normalization="none"), COEF)
    # Every relevant step weighs 1/(b·T) = 1/4. op: −mean(A) = −1.75; blueprint: −e^0.1·4/4 (its one
    # relevant step); slot, tempo, style and alpha_target: −4/4 each; alpha_speed/alpha_curve: no step → 0.
    expected = -1.75 - math.exp(0.1) * 4 / 4 - 4 * 4 / 4
    assert m["loss/policy"].item() == pytest.approx(expected, rel=1e-6)


def test_entropy_metrics_average_relevant_steps_and_bonus_weighs_them_per_step():
    batch = _batch([[G, W, W], [W, W, W]])
    relevant_germinate = batch.actions["op"] == G
    new = _same_as_old(batch)
    new.entropy = {h: torch.full_like(batch.values, 0.8) for h in HEAD_NAMES}
    # As from the network: heads irrelevant to the op have entropy 0.
    new.entropy["blueprint"] = torch.where(relevant_germinate, 0.6, 0.0)
    new.entropy["alpha_speed"] = torch.zeros_like(batch.values)
    coef = {**COEF, "blueprint": 0.5, "op": 0.1}
    _, m = ppo_loss(new, batch, PPOOptions(), coef)
    assert m["entropy/blueprint"].item() == pytest.approx(0.6)  # not 0.6 / 6
    assert m["entropy/op"].item() == pytest.approx(0.8)
    assert math.isnan(m["entropy/alpha_speed"].item())  # no SET_ALPHA_TARGET or PRUNE step: no data
    assert m["relevant_steps/blueprint"].item() == 1 and m["relevant_steps/op"].item() == 6
    # The bonus sums each head over its relevant steps and divides by all 6 steps. op: 6 steps at 0.8;
    # blueprint, slot, style, tempo, alpha_target: the one GERMINATE step (0.6 for blueprint, 0.8 else).
    expected = -(0.1 * 0.8 + 0.5 * 0.6 / 6 + 4 * 0.05 * 0.8 / 6)
    assert m["loss/entropy"].item() == pytest.approx(expected, rel=1e-6)


def test_entropy_bonus_pulls_every_relevant_step_of_every_head_equally():
    """Per relevant step, each head's entropy gets the same gradient weight coef/(b·T) as op's, however
    sparse the head (averaging over n_h relevant steps would give the sparse head b·T/n_h times more)."""
    ops = [[G, W, W, W, W], [W, W, W, W, W]]  # blueprint relevant on 1 of 10 steps, op on all 10
    batch = _batch(ops)
    new = _same_as_old(batch)
    relevant_germinate = batch.actions["op"] == G
    new.entropy = {h: torch.full_like(batch.values, 0.5).requires_grad_() for h in HEAD_NAMES}
    new.entropy["blueprint"] = torch.where(relevant_germinate, 0.5, 0.0).requires_grad_()
    terms, _ = ppo_loss(new, batch, PPOOptions(), COEF)
    sum(terms.values()).backward()
    per_step = -0.05 / 10
    assert new.entropy["op"].grad == pytest.approx(torch.full((2, 5), per_step))
    assert new.entropy["blueprint"].grad[relevant_germinate].item() == pytest.approx(per_step)
    assert (new.entropy["blueprint"].grad[~relevant_germinate] == 0).all()


def test_clip_fraction_counts_relevant_steps_only():
    batch = _batch([[G, W, G, W]])
    new = _same_as_old(batch)
    with torch.no_grad():
        new.log_probs["blueprint"] += torch.tensor([[1.0, 5.0, 0.0, 5.0]])  # WAIT steps must not count
    _, m = ppo_loss(new, batch, PPOOptions(ratio="per_head"), COEF)
    assert m["clip_fraction/blueprint"].item() == 0.5
    assert math.isnan(m["clip_fraction/alpha_curve"].item())


def test_value_loss_clips_the_move_from_the_old_value():
    batch = _batch([[W, W]])
    batch = dataclasses.replace(batch, values=torch.zeros(1, 2), returns=torch.ones(1, 2))
    new = _same_as_old(batch)
    new.value = torch.tensor([[0.5, 1.5]], requires_grad=True)
    _, clipped = ppo_loss(new, batch, PPOOptions(value_clip=0.2), COEF)
    # Both steps: clipped prediction 0.2, error 0.64 dominates the unclipped 0.25.
    assert clipped["loss/value"].item() == pytest.approx(0.5 * 0.64)
    _, plain = ppo_loss(new, batch, PPOOptions(value_clip=None), COEF)
    assert plain["loss/value"].item() == pytest.approx(0.5 * 0.25)


def test_total_loss_combines_terms_and_backpropagates():
    batch = _batch([[G, W, W], [W, G, W]])
    new = _same_as_old(batch)
    new.value = torch.full_like(batch.values, 0.3, requires_grad=True)
    cfg = PPOOptions(value_coef=0.7)
    terms, m = ppo_loss(new, batch, cfg, COEF)
    assert list(terms) == ["policy", "value", "entropy"]  # by name, for the caller to sum
    assert terms["policy"].item() == m["loss/policy"].item() and terms["entropy"].item() == m["loss/entropy"].item()
    assert terms["value"].item() == pytest.approx(0.7 * m["loss/value"].item())
    loss = sum(terms.values())
    loss.backward()
    assert new.value.grad is not None and new.value.grad.abs().sum() > 0
    assert new.log_probs["op"].grad.abs().sum() > 0


def test_config_and_coefficient_validation():
    with pytest.raises(ValueError, match=r"^ppo.ratio must be 'joint' or 'per_head', got 'both'$"):
        PPOOptions(ratio="both")
    with pytest.raises(ValueError, match=r"^ppo.clip_ratio must be a number > 0, got 0$"):
        PPOOptions(clip_ratio=0)
    with pytest.raises(ValueError, match=r"^ppo.entropy_coef: entropy coefficients must name exactly the heads"):
        PPOOptions(entropy_coef={"op": 0.1})
    with pytest.raises(ValueError, match=r"must be ≥ 0, got \{'op': -0.1\}"):
        PPOOptions(entropy_coef={**COEF, "op": -0.1})
    assert per_head_coefficients(0.02) == dict.fromkeys(HEAD_NAMES, 0.02)


def test_entropy_coefficients_anneal_linearly_and_hold_at_end():
    start, end = dict.fromkeys(HEAD_NAMES, 0.05), {**dict.fromkeys(HEAD_NAMES, 0.01), "op": 0.03}
    assert entropy_coefficients(0, 10, start, end) == start
    half = entropy_coefficients(5, 10, start, end)
    assert half["blueprint"] == pytest.approx(0.03) and half["op"] == pytest.approx(0.04)
    assert entropy_coefficients(25, 10, start, end) == pytest.approx(end)
    assert entropy_coefficients(5, 10, 0.05, 0.01)["tempo"] == pytest.approx(0.03)  # one number for all heads
    assert entropy_coefficients(7, 10, 0.05, None) == dict.fromkeys(HEAD_NAMES, 0.05)  # no end: constant
    with pytest.raises(ValueError, match="total_steps must be ≥ 1, got 0"):
        entropy_coefficients(0, 0, start, end)


def test_explained_variance():
    returns = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(returns, returns).item() == 1.0
    assert explained_variance(torch.full((4,), 2.5), returns).item() == pytest.approx(0.0)
    assert math.isnan(explained_variance(returns, torch.ones(4)).item())


def _all_allowed_masks(n: int) -> ActionMasks:
    blueprint = torch.zeros(n, 13, dtype=torch.bool)
    blueprint[:, sorted(topology_blueprints("cnn"))] = True
    return ActionMasks(
        op=torch.ones(n, 6, dtype=torch.bool), slot_by_op=torch.ones(n, 6, SLOTS.num_slots, dtype=torch.bool),
        blueprint=blueprint, style=torch.ones(n, 4, dtype=torch.bool), tempo=torch.ones(n, 3, dtype=torch.bool),
        alpha_target=torch.ones(n, 3, dtype=torch.bool), alpha_speed=torch.ones(n, 4, dtype=torch.bool),
        alpha_curve=torch.ones(n, 5, dtype=torch.bool),
    )


def test_on_policy_invariant_with_real_network():
    """Rollout through get_action → storage → evaluate_actions: ratio 1 and KL 0 before any step."""
    torch.manual_seed(0)
    n, t, d = 4, 5, 7
    net = FactoredRecurrentActorCritic(d, SLOTS, feature_dim=16, hidden_dim=16, num_layers=2)
    storage = RolloutStorage(n, t, d, HEADS, (2, n, 16))
    masks = _all_allowed_masks(n)
    with torch.inference_mode():  # as the rollout collector runs
        hidden = net.initial_hidden(n)
        storage.set_initial_hidden(hidden)
        for step in range(t):
            obs = torch.randn(n, d)
            act = net.get_action(obs, hidden, masks)
            hidden = act.hidden
            storage.insert(step, obs, act.masks, act.actions, act.log_probs, act.value, torch.randn(n),
                           torch.full((n,), step == t - 1))
        storage.set_bootstrap(net.get_action(torch.randn(n, d), hidden, masks, deterministic=True).value)
        storage.compute_returns(gamma=0.995, gae_lambda=0.98)

    for ratio in ("joint", "per_head"):  # no optimiser step in between: both stay on-policy
        cfg = PPOOptions(ratio=ratio)
        for batch in storage.minibatches(2, torch.Generator().manual_seed(0)):
            evaluated = net.evaluate_actions(batch.obs, batch.actions, batch.masks, batch.initial_hidden)
            terms, m = ppo_loss(evaluated, batch, cfg, cfg.entropy_coef)
            loss = sum(terms.values())
            assert abs(m["approx_kl"].item()) < 1e-6
            assert m["ratio/max"].item() == pytest.approx(1.0, abs=1e-5)
            assert m["ratio/min"].item() == pytest.approx(1.0, abs=1e-5)
            net.zero_grad()
            loss.backward()
            grads = [p.grad for p in net.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)
            assert net.lstm.weight_hh_l0.grad.abs().sum() > 0
