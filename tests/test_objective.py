"""The objective, the `objective` reward aligned with it, and rankings of controllers by both."""

import statistics

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tamiyo.conf import CONF_DIR
from tamiyo.core.actions import FactoredAction
from tamiyo.core.observation import SignalField, SlotReport
from tamiyo.core.stages import SeedStage
from tamiyo.env.config import EnvConfig, build_env_config
from tamiyo.env.objective import Objective
from tamiyo.env.rewards import RewardInputs, make_reward
from tamiyo.env.tasks import make_task
from tamiyo.env.vector import VectorEnv
from tamiyo.evaluation.runner import EVAL_EPISODE_BASE, EpisodeResult, baseline_policy, evaluate
from tamiyo.policy import obs_dim

TASK = make_task("mnist1d", train_subset=128, val_subset=64)


def test_objective_charges_added_params_relative_to_the_host():
    judge = Objective(param_weight=0.05)
    assert judge(80.0, 0, 690) == 80.0
    assert judge(81.6, 1600, 690) == pytest.approx(81.6 - 5.0 * 1600 / 690)
    # One host's worth of added parameters costs 100 · param_weight points.
    assert judge.price(690, 690) == pytest.approx(5.0)
    assert Objective(0.0)(81.6, 1600, 690) == 81.6


def test_default_weight_ranks_the_measured_controllers():
    """Means measured by scripts/experiments/objective_baselines.sh (acc %, added params on the 690-param host)."""
    judge = Objective()
    measured = {"static": (47.14, 0), "heuristic": (51.96, 306), "conv_light r0c2": (58.94, 800),
                "conv_heavy r0c2": (62.06, 1600), "conv_light all": (62.56, 1064)}
    ranking = sorted(measured, key=lambda name: -judge(*measured[name], 690))
    assert ranking == ["conv_light all", "conv_light r0c2", "conv_heavy r0c2", "heuristic", "static"]


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf")])
def test_bad_param_weight_is_refused(weight):
    with pytest.raises(ValueError, match="objective param_weight must be finite and ≥ 0"):
        Objective(weight)


def test_objective_reward_is_the_change_of_the_running_objective():
    reward = make_reward("objective", param_weight=0.1, charge="present")
    inputs = RewardInputs(
        action=FactoredAction.wait(), took_effect=False, before=[SlotReport.empty()], after=[SlotReport.empty()],
        val_accuracy=60.0, host_params=1000, seed_params=500, val_accuracy_before=55.0, seed_params_before=200,
        epoch=3, max_epochs=25, fossil_contributions=(), rolled_back=True,
    )
    result = reward(inputs)
    assert result.components == pytest.approx({"accuracy": 5.0, "params": -3.0})
    assert result.total == pytest.approx(2.0)  # a rollback is charged only through the objective


def _slot(stage: SeedStage, alpha: float, params: int) -> SlotReport:
    return SlotReport(stage=stage, alpha=alpha, seed_params=params)


def test_effect_charge_prices_seeds_by_their_alpha_and_everything_at_the_end():
    reward = make_reward("objective", param_weight=0.1)
    before = [_slot(SeedStage.TRAINING, 0.0, 300), _slot(SeedStage.FOSSILIZED, 1.0, 100)]
    after = [_slot(SeedStage.BLENDING, 0.5, 300), _slot(SeedStage.FOSSILIZED, 1.0, 100)]
    common = dict(action=FactoredAction.wait(), took_effect=False, before=before, after=after, val_accuracy=60.0,
                  host_params=1000, seed_params=400, val_accuracy_before=55.0, seed_params_before=400,
                  max_epochs=25, fossil_contributions=(), rolled_back=False)
    # Mid-episode: the training seed cost nothing; blended in halfway it costs half its price (1.5 points).
    assert reward(RewardInputs(epoch=3, **common)).components == pytest.approx({"accuracy": 5.0, "params": -1.5})
    # Last epoch: every seed present is charged in full (3 points for the half-blended one).
    assert reward(RewardInputs(epoch=25, **common)).components == pytest.approx({"accuracy": 5.0, "params": -3.0})


def test_kept_charge_prices_only_fossilized_seeds_until_the_end():
    reward = make_reward("objective", param_weight=0.1, charge="kept")
    common = dict(action=FactoredAction.wait(), took_effect=False, val_accuracy=60.0, host_params=1000,
                  val_accuracy_before=55.0, max_epochs=25, fossil_contributions=(), rolled_back=False)
    blending = [_slot(SeedStage.BLENDING, 0.5, 300), _slot(SeedStage.FOSSILIZED, 1.0, 100)]
    pruned = [SlotReport.empty(), _slot(SeedStage.FOSSILIZED, 1.0, 100)]
    fossilized = [_slot(SeedStage.FOSSILIZED, 1.0, 300), _slot(SeedStage.FOSSILIZED, 1.0, 100)]
    # A half-blended seed costs nothing yet, so pruning it refunds nothing.
    prune = RewardInputs(epoch=3, before=blending, after=pruned, seed_params=100, seed_params_before=400, **common)
    assert reward(prune).components == pytest.approx({"accuracy": 5.0, "params": 0.0})
    # Its fossilization charges its whole price (3 points).
    keep = RewardInputs(epoch=3, before=blending, after=fossilized, seed_params=400, seed_params_before=400,
                        **common)
    assert reward(keep).components == pytest.approx({"accuracy": 5.0, "params": -3.0})
    # At the last epoch a seed still live is charged in full.
    last = RewardInputs(epoch=25, before=blending, after=blending, seed_params=400, seed_params_before=400, **common)
    assert reward(last).components == pytest.approx({"accuracy": 5.0, "params": -3.0})


def test_bad_price_charge_is_refused():
    with pytest.raises(ValueError, match="objective reward charge must be one of"):
        make_reward("objective", charge="later")


@pytest.mark.parametrize(("charge", "compute_weight", "param_price"),
                         [("effect", 0.0, 0.0), ("kept", 0.0, 0.0), ("present", 0.0, 0.0), ("effect", 0.05, 0.0),
                          ("effect", 0.0, 20.0), ("kept", 0.05, 20.0)])
def test_return_of_random_trajectories_is_the_objective_difference(charge, compute_weight, param_price):
    judge = Objective(0.2, compute_weight, param_price)
    config = EnvConfig(max_epochs=6, auto_advance=False,
                       reward_config={"param_weight": 0.2, "compute_weight": compute_weight, "param_price": param_price,
                                      "charge": charge})
    env = VectorEnv(TASK, num_envs=1, config=config)
    policy = baseline_policy("random", {}, env, obs_dim(env.slot_config.num_slots), 5.0)
    grown = 0
    for seed in range(3):
        # The objective at epoch 0 is the untrained network's accuracy (no seeds yet).
        start = env.reset(seed=seed, episode_index=EVAL_EPISODE_BASE).signals[0, SignalField.VAL_ACCURACY].item()
        result = evaluate(policy, env, [seed], 1, judge).results[0]
        assert result.episode_return == pytest.approx(result.objective - start, abs=1e-9)
        grown += result.added_params > 0
    assert grown > 0  # the parameter price took part


def test_ranking_by_return_is_ranking_by_objective():
    env = VectorEnv(TASK, num_envs=1, config=EnvConfig(max_epochs=6, max_seeds=3, auto_advance=False))
    controllers = {
        "static": ("static", {}), "heuristic": ("heuristic", {"plateau_epochs_to_germinate": 1}),
        "conv_small all": ("schedule", {"blueprint": "conv_small", "tempo": "fast"}),
        "conv_light r0c2": ("schedule", {"blueprint": "conv_light", "slots": ["r0c2"], "tempo": "fast"}),
        "conv_heavy r0c2": ("schedule", {"blueprint": "conv_heavy", "slots": ["r0c2"], "tempo": "fast"}),
    }
    judge = Objective()
    returns, objectives = {}, {}
    for label, (name, options) in controllers.items():
        policy = baseline_policy(name, options, env, obs_dim(env.slot_config.num_slots), 5.0)
        results = evaluate(policy, env, [0, 1], 1, judge).results
        returns[label] = statistics.fmean(r.episode_return for r in results)
        objectives[label] = statistics.fmean(r.objective for r in results)
    assert len(set(objectives.values())) == len(controllers)  # the controllers really differ
    assert sorted(returns, key=returns.get) == sorted(objectives, key=objectives.get)


def test_one_key_sets_the_objective_of_the_tables_and_of_the_reward():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["objective.param_weight=0.2"])
    assert cfg.reward.name == "objective"  # the default reward
    env = OmegaConf.to_container(cfg.env, resolve=True)
    config = build_env_config(env, OmegaConf.to_container(cfg.reward, resolve=True), cfg.ppo.gamma, None)
    assert config.reward == "objective"
    assert config.reward_config == {"param_weight": 0.2, "compute_weight": 0.0, "param_price": 0.0, "charge": "effect"}


def test_absolute_param_price_is_the_same_on_every_host():
    judge = Objective(param_weight=0.0, param_price=30.0)
    # 432 added parameters cost 12.96 points on a 330-parameter host and on a 4,970-parameter one alike.
    assert judge.price(432, 330) == pytest.approx(12.96) == judge.price(432, 4970)
    assert judge(61.5, 432, 330) == pytest.approx(61.5 - 12.96)
    both = Objective(param_weight=0.05, param_price=10.0)
    assert both.price(690, 690) == pytest.approx(5.0 + 6.9)
    assert both.describe() == ("objective = final val acc − 0.05 · 100 · added/host params − 10.0 · added "
                               "params/1000")
    with pytest.raises(ValueError, match="objective param_price must be finite and ≥ 0, got -1"):
        Objective(param_price=-1)


def test_compute_price_charges_training_flops_beyond_the_static_hosts():
    judge = Objective(param_weight=0.05, compute_weight=0.1)
    # A seed that doubles the network's compute from the first epoch: one static episode's worth, 10 points.
    assert judge.compute_price(1.0) == pytest.approx(10.0)
    assert judge(80.0, 690, 690, extra_compute=0.5) == pytest.approx(80.0 - 5.0 - 5.0)
    assert judge.describe() == ("objective = final val acc − 0.05 · 100 · added/host params − 0.1 · 100 · "
                                "extra compute")
    assert Objective().describe() == "objective = final val acc − 0.05 · 100 · added/host params"
    with pytest.raises(ValueError, match="objective compute_weight must be finite and ≥ 0, got -1"):
        Objective(0.05, -1)
    with pytest.raises(ValueError, match="extra_compute must be ≥ 0, got -0.5"):
        judge.compute_price(-0.5)


def _episode(env: VectorEnv, name: str, options: dict) -> EpisodeResult:
    policy = baseline_policy(name, options, env, obs_dim(env.slot_config.num_slots), 5.0)
    return evaluate(policy, env, [0], 1, Objective(0.05, 0.1)).results[0]


def test_extra_compute_is_zero_for_the_static_host_and_grows_with_how_early_a_seed_runs():
    env = VectorEnv(TASK, num_envs=1, config=EnvConfig(max_epochs=8, max_seeds=3, auto_advance=False))
    static = _episode(env, "static", {})
    assert static.extra_compute == 0.0
    seed = {"blueprint": "conv_heavy", "slots": ["r0c2"], "tempo": "fast"}
    early = _episode(env, "schedule", {**seed, "start_epoch": 0})
    late = _episode(env, "schedule", {**seed, "start_epoch": 4})
    assert 0.0 < late.extra_compute < early.extra_compute
    # The fraction is the episode's FLOPs beyond the static host's episode, over the static host's episode.
    for grown in (early, late):
        assert grown.extra_compute == pytest.approx((grown.train_gflops - static.train_gflops) / static.train_gflops)
        price = 0.05 * 100 * grown.added_params / grown.host_params + 0.1 * 100 * grown.extra_compute
        assert grown.objective == pytest.approx(grown.final_accuracy - price)


def test_env_adaptive_prices_compute_in_the_tables_and_the_reward():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["env=adaptive"])
    env = OmegaConf.to_container(cfg.env, resolve=True)
    config = build_env_config(env, OmegaConf.to_container(cfg.reward, resolve=True), cfg.ppo.gamma, None)
    judge = Objective(**OmegaConf.to_container(cfg.objective))
    assert judge.compute_weight > 0 and config.reward_config["compute_weight"] == judge.compute_weight
    assert (config.host_lr, config.seed_faults, env["task"]) == (0.1, ["dead", "unstable"], ["mnist1d", "digits"])
