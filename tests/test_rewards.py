"""Reward functions: components, their sum, PBRS, attribution, rent, terminal and rollback terms."""

import math
from itertools import pairwise

import pytest

from tamiyo.core.actions import AlphaMode, FactoredAction, LifecycleOp
from tamiyo.core.observation import SlotReport
from tamiyo.core.stages import SeedStage
from tamiyo.env.rewards import (
    RewardInputs,
    ShapedConfig,
    credited_contribution,
    make_reward,
    seed_attribution,
    stage_potential,
)

EMPTY = SlotReport.empty()


def seed(stage, epochs=0, alpha=0.0, counterfactual=None, improvement=0.0, params=1000, age=3):
    return SlotReport(stage=stage, epochs_in_stage=epochs, age=age, alpha=alpha, alpha_target=1.0,
                      alpha_mode=AlphaMode.HOLD, counterfactual=counterfactual, total_improvement=improvement,
                      seed_params=params)


def action(op, slot=0):
    indices = list(FactoredAction.wait().to_indices())
    indices[0], indices[7] = slot, int(op)
    return FactoredAction.from_indices(indices)


def inputs(before, after, op=LifecycleOp.WAIT, took_effect=None, epoch=3, max_epochs=25, val_accuracy=50.0,
           fossils=(), rolled_back=False, slot=0):
    if took_effect is None:
        took_effect = op != LifecycleOp.WAIT
    return RewardInputs(action=action(op, slot), took_effect=took_effect, before=before, after=after,
                        val_accuracy=val_accuracy, host_params=10_000, seed_params=0, val_accuracy_before=val_accuracy,
                        seed_params_before=0, epoch=epoch, max_epochs=max_epochs,
                        fossil_contributions=fossils, rolled_back=rolled_back)


@pytest.mark.parametrize("name", ["shaped", "simplified", "sparse"])
@pytest.mark.parametrize("final", [False, True])
def test_components_sum_to_total(name, final):
    reward = make_reward(name)
    before = [seed(SeedStage.BLENDING, 2, 0.5, 1.5, 2.0), EMPTY]
    after = [seed(SeedStage.BLENDING, 3, 0.8, 2.5, 3.0), seed(SeedStage.GERMINATED)]
    result = reward(inputs(before, after, LifecycleOp.GERMINATE, epoch=25 if final else 3, fossils=(2.0,),
                           slot=1, rolled_back=final))
    assert result.total == sum(result.components.values())
    assert all(isinstance(v, float) for v in result.components.values())
    assert ("terminal" in result.components) and ("rollback" in result.components)
    assert result.components["rollback"] == (-reward.config.rollback_penalty if final else 0.0)


def test_shaped_component_names():
    result = make_reward("shaped")(inputs([EMPTY], [EMPTY]))
    assert set(result.components) == {"attribution", "pbrs", "rent", "action", "terminal", "rollback"}
    assert result.total == 0.0  # nothing happened, no seed, no rent


def test_germination_pbrs_is_gamma_phi_difference():
    cfg = ShapedConfig()
    result = make_reward("shaped")(inputs([EMPTY], [seed(SeedStage.GERMINATED)], LifecycleOp.GERMINATE))
    assert result.components["pbrs"] == pytest.approx(0.3 * (0.995 * 1.0 - 0.0))
    assert result.components["action"] == pytest.approx(-cfg.germinate_cost)


def test_pbrs_telescopes_over_a_trajectory():
    """Σ γ^t F_t = γ^T Φ(s_T) − Φ(s_0) for F = γΦ(s') − Φ(s): shaping cannot be farmed by cycling."""
    states = [[EMPTY], [seed(SeedStage.GERMINATED)], [seed(SeedStage.TRAINING, 1)],
              [seed(SeedStage.PRUNED)], [seed(SeedStage.EMBARGOED, 1)], [EMPTY], [seed(SeedStage.GERMINATED)]]
    reward, gamma = make_reward("shaped", rent_weight=0.0), 0.995
    discounted = sum(gamma**t * reward(inputs(s, s_next)).components["pbrs"]
                     for t, (s, s_next) in enumerate(pairwise(states)))
    potential = lambda s: stage_potential(s, 0.3, 2.0)  # noqa: E731
    expected = 0.3 * (gamma ** (len(states) - 1) * potential(states[-1]) - potential(states[0]))
    assert discounted == pytest.approx(expected)


def test_stage_potential_caps_epoch_progress():
    assert stage_potential([seed(SeedStage.TRAINING, 1)], 0.3, 2.0) == pytest.approx(2.3)
    assert stage_potential([seed(SeedStage.TRAINING, 50)], 0.3, 2.0) == pytest.approx(4.0)
    assert stage_potential([seed(SeedStage.EMBARGOED, 3), EMPTY], 0.3, 2.0) == 0.0


def test_attribution_pays_harm_and_caps_help_by_improvement():
    assert seed_attribution(-2.0, 5.0) == -2.0
    assert seed_attribution(4.0, 1.0) == pytest.approx(2.0)  # √(4·1): the model only gained 1 point
    assert seed_attribution(1.0, 9.0) == pytest.approx(1.0)  # capped by the contribution itself
    assert seed_attribution(3.0, -1.0) == 0.0
    after = [seed(SeedStage.HOLDING, 1, 1.0, 4.0, 1.0), seed(SeedStage.BLENDING, 1, 0.5, -1.0, 1.0),
             seed(SeedStage.TRAINING, 1, 0.0, None), seed(SeedStage.FOSSILIZED, 1, 1.0, 2.5, 0.0)]
    assert credited_contribution(after) == pytest.approx(2.0 - 1.0 + 2.5)
    reward = make_reward("shaped")
    assert reward(inputs(after, after, max_epochs=25)).components["attribution"] == pytest.approx(3.5 / 25)


def test_episode_attribution_is_the_mean_contribution_over_the_episode():
    reward = make_reward("shaped")
    states = [[EMPTY]] * 5 + [[seed(SeedStage.BLENDING, 1, 0.5, 4.0, 9.0)]] * 10 + [
        [seed(SeedStage.FOSSILIZED, 1, 1.0, 6.0, 9.0)]] * 11
    total = sum(reward(inputs(s, s_next, max_epochs=25)).components["attribution"]
                for s, s_next in pairwise(states))
    assert total == pytest.approx((10 * 4.0 + 11 * 6.0) / 25)  # the states after each of the 25 steps


def test_fossilized_seed_keeps_earning_its_credit_and_a_fossilize_bonus():
    cfg = ShapedConfig()
    before = [seed(SeedStage.HOLDING, 2, 1.0, 3.0, 4.0)]
    after = [seed(SeedStage.FOSSILIZED, 0, 1.0, 3.0, 4.0)]
    result = make_reward("shaped")(inputs(before, after, LifecycleOp.FOSSILIZE))
    assert result.components["attribution"] == pytest.approx(3.0 / 25)  # no drop when fossilizing
    expected = -cfg.fossilize_cost + cfg.fossilize_base_bonus + cfg.fossilize_contribution_scale * 3.0
    assert result.components["action"] == pytest.approx(expected)


def test_failed_gate_gets_only_the_op_cost():
    before = [seed(SeedStage.HOLDING, 2, 1.0, 3.0, 4.0)]
    result = make_reward("shaped")(inputs(before, before, LifecycleOp.FOSSILIZE, took_effect=False))
    assert result.components["action"] == pytest.approx(-ShapedConfig().fossilize_cost)


def test_noncontributing_fossil_is_penalised():
    cfg = ShapedConfig()
    before = [seed(SeedStage.HOLDING, 2, 1.0, 0.2, 4.0)]
    after = [seed(SeedStage.FOSSILIZED, 0, 1.0, 0.2, 4.0)]
    result = make_reward("shaped")(inputs(before, after, LifecycleOp.FOSSILIZE))
    assert result.components["action"] == pytest.approx(-cfg.fossilize_cost - cfg.fossilize_noncontributing_penalty)


@pytest.mark.parametrize("counterfactual, sign", [(3.0, -1), (-2.0, 1)])
def test_prune_forfeits_attribution(counterfactual, sign):
    before = [seed(SeedStage.HOLDING, 2, 1.0, counterfactual, 3.0)]
    after = [seed(SeedStage.EMBARGOED, 0, 0.0, None)]
    reward = make_reward("shaped")
    kept = reward(inputs(before, before)).components["attribution"]
    pruned = reward(inputs(before, after, LifecycleOp.PRUNE)).components["attribution"]
    assert pruned == 0.0
    assert math.copysign(1.0, pruned - kept) == sign  # removing a helper loses its pay, a harmer's stops the loss
    assert abs(kept) == pytest.approx(abs(seed_attribution(counterfactual, 3.0)) / 25)


def test_rent_grows_with_alpha_and_params_and_counts_fossils_in_full():
    reward = make_reward("shaped")
    rent = lambda report: -reward(inputs([report], [report])).components["rent"]  # noqa: E731
    assert rent(EMPTY) == 0.0
    low, high = rent(seed(SeedStage.BLENDING, alpha=0.2)), rent(seed(SeedStage.BLENDING, alpha=0.9))
    assert 0 < low < high
    assert rent(seed(SeedStage.BLENDING, alpha=0.9, params=5000)) > high
    expected = 0.5 * math.log1p((0.0039 * 10_000 + 1000) / 10_000)
    assert rent(seed(SeedStage.FOSSILIZED, alpha=0.0)) == pytest.approx(expected)


def test_terminal_bonus_only_on_the_final_step():
    reward = make_reward("shaped")
    fossils = (2.0, 0.5)  # one contributing (≥ 1.0 point), one not
    mid = reward(inputs([EMPTY], [EMPTY], epoch=24, fossils=fossils))
    end = reward(inputs([EMPTY], [EMPTY], epoch=25, fossils=fossils, val_accuracy=60.0))
    assert mid.components["terminal"] == 0.0
    assert end.components["terminal"] == pytest.approx(0.05 * 60.0 + 3.0 * 1)


def test_sparse_is_zero_until_the_end_and_charges_seed_params_only():
    reward = make_reward("sparse", param_budget=10_000, param_penalty_weight=0.5)
    after = [seed(SeedStage.FOSSILIZED, params=2000), EMPTY]
    assert reward(inputs(after, after, epoch=24)).total == 0.0
    assert reward(inputs(after, after, epoch=25, val_accuracy=80.0)).total == pytest.approx(0.8 - 0.5 * 0.2)


def test_simplified_charges_every_op_but_wait():
    reward = make_reward("simplified", pbrs_weight=0.0)
    state = [seed(SeedStage.TRAINING, 1)]
    assert reward(inputs(state, state, LifecycleOp.ADVANCE, took_effect=False)).total == pytest.approx(-0.01)
    assert reward(inputs(state, state)).total == 0.0


def test_make_reward_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match="unknown reward 'dense'"):
        make_reward("dense")
    with pytest.raises(ValueError, match=r"no config fields \['rent'\]"):
        make_reward("shaped", rent=1.0)
    with pytest.raises(ValueError, match="rent_weight must be finite and ≥ 0"):
        make_reward("shaped", rent_weight=-1.0)
    with pytest.raises(ValueError, match="gamma must be in"):
        make_reward("simplified", gamma=1.5)
    assert make_reward("shaped", rent_weight=0.1).config.rent_weight == 0.1
