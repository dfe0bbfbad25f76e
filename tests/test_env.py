"""Seed-lifecycle environments: step contract, loss scale, counterfactuals, determinism, vectorisation."""

import itertools
import math

import pytest
import torch

from tamiyo.core.actions import (
    AlphaSpeedAction,
    BlueprintAction,
    FactoredAction,
    GerminationStyle,
    LifecycleOp,
    TempoAction,
)
from tamiyo.core.legality import IllegalActionError
from tamiyo.core.observation import NUM_SIGNAL_FIELDS, NUM_SLOT_FIELDS, ObservationBatch, SlotReport, TrainingSignals
from tamiyo.core.seeding import derive_seed
from tamiyo.core.slots import SlotConfig
from tamiyo.core.stages import SeedStage
from tamiyo.env.config import EnvConfig, EnvOptions
from tamiyo.env.model import validation_batches
from tamiyo.env.objective import Objective
from tamiyo.env.seed_env import SeedEnv, check_action
from tamiyo.env.vector import VectorEnv
from tamiyo.evaluation.runner import episode_results
from tamiyo.policy.bundles.schedule import SchedulePolicyBundle
from tamiyo.policy.masks import compute_masks

WAIT = FactoredAction.wait()


def act(op: LifecycleOp, slot: int = 0, blueprint: BlueprintAction = BlueprintAction.CONV_LIGHT,
        style: GerminationStyle = GerminationStyle.LINEAR_ADD, speed: AlphaSpeedAction = AlphaSpeedAction.INSTANT
        ) -> FactoredAction:
    indices = list(WAIT.to_indices())
    indices[0], indices[1], indices[2], indices[3], indices[5], indices[7] = (
        slot, int(blueprint), int(style), int(TempoAction.FAST), int(speed), int(op))
    return FactoredAction.from_indices(indices)


# Fastest path to a HOLDING seed at r0c1 with a FAST (3-tick) linear ramp to alpha 1.
TO_HOLDING = [act(LifecycleOp.GERMINATE, 1), act(LifecycleOp.ADVANCE, 1), act(LifecycleOp.ADVANCE, 1),
              WAIT, WAIT, act(LifecycleOp.ADVANCE, 1)]


def test_vector_step_shapes_types_and_truncation(tiny_task):
    envs = VectorEnv(tiny_task, num_envs=2, config=EnvConfig(max_epochs=2, auto_advance=False))
    assert envs.num_envs == 2 and envs.topology == "cnn" and envs.slot_config.slot_ids == ("r0c0", "r0c1", "r0c2")
    obs = envs.reset(seed=3)
    assert isinstance(obs, ObservationBatch)
    assert obs.signals.shape == (2, NUM_SIGNAL_FIELDS) and obs.slots.shape == (2, 3, NUM_SLOT_FIELDS)
    assert (obs.stage() == SeedStage.DORMANT).all()
    obs, rewards, dones, infos = envs.step([WAIT, act(LifecycleOp.GERMINATE, 2)])
    assert rewards.dtype == torch.float32 and rewards.shape == (2,)
    assert dones.dtype == torch.bool and not dones.any()
    assert obs.stage()[1, 2] == SeedStage.GERMINATED and obs.seeds_used().tolist() == [0, 1]
    assert infos[1]["op"] == "GERMINATE" and infos[1]["took_effect"] and infos[1]["slot_stages"]["r0c2"] == "GERMINATED"
    for key in ("val_accuracy", "val_loss", "train_loss", "host_params", "seed_params", "slot_alphas",
                "reward_components", "gate_failed", "rolled_back", "action", "time_train_s", "time_validate_s"):
        assert key in infos[0], key
    assert infos[1]["seed_params"] > 0 == infos[0]["seed_params"]
    _, _, dones, _ = envs.step([WAIT, WAIT])
    assert dones.all() and envs.done
    with pytest.raises(RuntimeError, match="episode ended"):
        envs.step([WAIT, WAIT])
    with pytest.raises(ValueError, match="expected 2 actions"):
        envs.step([WAIT])


def test_losses_are_per_sample_means(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=3, batch_size=64, auto_advance=False))
    signals, reports = env.reset(seed=0, episode=0)
    assert isinstance(signals, TrainingSignals) and all(isinstance(r, SlotReport) for r in reports)
    assert signals.epoch == 0 and abs(signals.val_loss - math.log(10)) < 0.3
    step = env.step(WAIT)
    # Divided by the batch size again, these would be ~0.04.
    assert 1.5 < step.signals.train_loss < 3.0 and 1.5 < step.signals.val_loss < 3.0
    assert step.signals.loss_scale == pytest.approx(math.log(10))
    assert 0.0 <= step.signals.train_accuracy <= 100.0


def test_counterfactual_is_accuracy_with_minus_without_the_seed(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=8, auto_advance=False))
    env.reset(seed=1, episode=0)
    for action in TO_HOLDING:
        result = env.step(action)
    slot = env.model.slot("r0c1")
    assert slot.stage == SeedStage.HOLDING and slot.alpha == 1.0
    measured = result.reports[1].counterfactual
    assert measured is not None and measured == result.info["counterfactuals"]["r0c1"]

    def accuracy() -> float:
        env.model.eval()
        with torch.no_grad():
            hits = sum(int((env.model(x).argmax(-1) == y).sum())
                       for x, y in validation_batches(tiny_task.val_x, tiny_task.val_y, 50))
        return 100.0 * hits / len(tiny_task.val_y)

    with_seed = accuracy()
    with slot.force_alpha_zero():
        without_seed = accuracy()
    assert with_seed == pytest.approx(result.signals.val_accuracy)
    assert measured == pytest.approx(with_seed - without_seed)


def test_gate_failure_is_a_reported_no_op(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=5, auto_advance=False))
    env.reset(seed=0, episode=0)
    for action in TO_HOLDING[:3]:
        env.step(action)
    assert env.model.slot("r0c1").stage == SeedStage.BLENDING
    result = env.step(act(LifecycleOp.ADVANCE, 1))  # alpha is still ramping: G3 fails
    assert result.info["gate_failed"] and not result.info["took_effect"]
    assert "has not reached 1.0" in result.info["gate_reason"]
    assert env.model.slot("r0c1").stage == SeedStage.BLENDING


def test_fossilize_step_records_the_contribution_and_hands_the_seed_to_the_host_optimiser(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=7, auto_advance=False))
    env.reset(seed=0, episode=0)
    for action in TO_HOLDING:
        env.step(action)
    contribution = env._reports[1].counterfactual
    result = env.step(act(LifecycleOp.FOSSILIZE, 1))
    assert result.info["took_effect"] and result.reports[1].stage == SeedStage.FOSSILIZED
    assert env.fossil_contributions == [contribution]
    assert "r0c1" not in env.optimizers.seeds
    host_params = env.optimizers.host.param_groups[0]["params"]
    assert all(any(p is q for q in host_params) for p in env.model.slot("r0c1").seed.parameters())


def test_optimiser_sync_carries_momentum_across_fossilization(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=7, auto_advance=False))
    env.reset(seed=0, episode=0)
    for action in TO_HOLDING:
        env.step(action)
    first = next(env.model.slot("r0c1").seed.parameters())
    buffer = env.optimizers.seeds["r0c1"].state[first]["momentum_buffer"]
    host_buffers = {id(p): s["momentum_buffer"] for p, s in env.optimizers.host.state.items()}
    assert env.model.slot("r0c1").fossilize()
    env.optimizers.sync(env.model)
    assert env.optimizers.host.state[first]["momentum_buffer"] is buffer
    assert all(env.optimizers.host.state[p]["momentum_buffer"] is host_buffers[id(p)]
               for p in env.model.host.parameters())
    assert env.optimizers.host.param_groups[0]["weight_decay"] == 5e-4


def test_instant_prune_removes_the_seed_and_its_optimiser(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=4, auto_advance=False))
    env.reset(seed=0, episode=0)
    env.step(act(LifecycleOp.GERMINATE, 2))
    env.step(act(LifecycleOp.ADVANCE, 2))
    assert "r0c2" in env.optimizers.seeds
    result = env.step(act(LifecycleOp.PRUNE, 2))
    assert result.reports[2].stage == SeedStage.EMBARGOED and result.info["seed_params"] == 0
    result = env.step(WAIT)  # the next epoch trains without the pruned seed
    assert "r0c2" not in env.optimizers.seeds


def test_illegal_actions_raise(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=5, auto_advance=False))
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(WAIT)
    env.reset(seed=0, episode=0)
    with pytest.raises(IllegalActionError, match="ADVANCE on slot r0c0 in stage DORMANT"):
        env.step(act(LifecycleOp.ADVANCE, 0))
    with pytest.raises(IllegalActionError, match="'lora' is not available for topology 'cnn'"):
        env.step(act(LifecycleOp.GERMINATE, 0, blueprint=BlueprintAction.LORA))
    with pytest.raises(IllegalActionError, match="slot index 3 out of range"):
        env.step(act(LifecycleOp.GERMINATE, 3))
    env.step(act(LifecycleOp.GERMINATE, 0))
    with pytest.raises(IllegalActionError, match="FOSSILIZE on slot r0c0 in stage GERMINATED"):
        env.step(act(LifecycleOp.FOSSILIZE, 0))
    with pytest.raises(IllegalActionError, match="not empty"):
        env.step(act(LifecycleOp.GERMINATE, 0))
    assert env.epoch == 1  # refused actions do not advance time


def test_seed_budget(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=5, max_seeds=1, auto_advance=False))
    env.reset(seed=0, episode=0)
    env.step(act(LifecycleOp.GERMINATE, 0))
    with pytest.raises(IllegalActionError, match=r"seed budget is spent \(1/1\)"):
        env.step(act(LifecycleOp.GERMINATE, 1))


def test_env_legality_matches_the_policy_masks():
    """Every (stage, alpha holding, age, budget) combination: env legality ⇔ the masks' slot_by_op."""
    from tamiyo.core.actions import AlphaMode

    slot_ids = ("r0c0", "r0c1", "r0c2")
    stages = [s for s in SeedStage if s != SeedStage.UNKNOWN]
    for stage, holding, age, seeds_used in itertools.product(stages, (True, False), (0, 1), (0, 2)):
        report = SlotReport(stage=stage, age=age, alpha_mode=AlphaMode.HOLD if holding else AlphaMode.UP)
        reports = [report, SlotReport.empty(), SlotReport.empty()]
        signals = TrainingSignals(1, 25, 2.0, 2.0, 0.1, 10.0, 10.0, 0.1, 0, False, 10.0, 2.0, 2.3, 100, 0,
                                  seeds_used, 2, (), ())
        masks = compute_masks(ObservationBatch.pack([signals], [reports]), "cnn")
        for op in LifecycleOp:
            action = act(op, 0)
            try:
                check_action(action, reports, slot_ids, "cnn", seeds_used, 2)
                legal = True
            except IllegalActionError:
                legal = False
            assert legal == bool(masks.slot_by_op[0, op, 0]), (stage.name, holding, age, seeds_used, op.name)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality that treats NaN (an unmeasured counterfactual) as equal to NaN."""
    return torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True)


def run_episode(env_factory, seed, actions):
    envs = env_factory()
    obs = envs.reset(seed=seed)
    trace = [obs.signals.clone()]
    for action in actions:
        obs, rewards, _, infos = envs.step([action] * envs.num_envs)
        trace += [obs.signals.clone(), obs.slots.clone(), rewards.clone()]
    return trace


def test_same_seed_same_trajectory_and_global_rng_untouched(tiny_task):
    factory = lambda: VectorEnv(tiny_task, 1, EnvConfig(max_epochs=4, auto_advance=False))  # noqa: E731
    actions = TO_HOLDING[:4]
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    first = run_episode(factory, 7, actions)
    assert torch.equal(torch.get_rng_state(), rng_before)
    second = run_episode(factory, 7, actions)
    other = run_episode(factory, 8, actions)
    assert all(same(a, b) for a, b in zip(first, second, strict=True))
    assert not all(same(a, b) for a, b in zip(first, other, strict=True))


def test_env_results_do_not_depend_on_the_number_of_envs(tiny_task):
    config = EnvConfig(max_epochs=3, auto_advance=False)
    actions = TO_HOLDING[:3]
    single, pair = VectorEnv(tiny_task, 1, config), VectorEnv(tiny_task, 2, config)
    obs_1, obs_2 = single.reset(seed=5), pair.reset(seed=5)
    assert torch.equal(obs_1.signals[0], obs_2.signals[0])
    for action in actions:
        obs_1, rewards_1, _, infos_1 = single.step([action])
        obs_2, rewards_2, _, infos_2 = pair.step([action, WAIT])
        assert same(obs_1.signals[0], obs_2.signals[0]) and same(obs_1.slots[0], obs_2.slots[0])
        assert rewards_1[0] == rewards_2[0]
        assert infos_1[0]["reward_components"] == infos_2[0]["reward_components"]
    assert not torch.equal(obs_2.signals[0], obs_2.signals[1])  # env 1 has its own stream and actions


def test_reward_components_sum_to_the_reward(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=6, reward="shaped", auto_advance=False))
    env.reset(seed=2, episode=0)
    for action in TO_HOLDING:
        result = env.step(action)
        components = result.info["reward_components"]
        assert result.reward == sum(components.values()) == result.info["reward"]
    assert result.done and components["terminal"] > 0 and components["attribution"] != 0.0


def test_state_dict_resumes_the_next_episode_exactly(tiny_task):
    config = EnvConfig(max_epochs=2, auto_advance=False)
    original = VectorEnv(tiny_task, 2, config, seed=11)
    original.reset()
    original.step([WAIT, WAIT])
    state = original.state_dict()
    expected = original.reset()  # episode 1
    resumed = VectorEnv(tiny_task, 2, config)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.reset().signals, expected.signals)
    assert resumed.state_dict() == original.state_dict() == {"seed": 11, "next_episode": 2, "num_envs": 2}
    with pytest.raises(ValueError, match="for 2 envs, this batch has 1"):
        VectorEnv(tiny_task, 1, config).load_state_dict(state)


def test_episodes_and_envs_get_distinct_streams():
    seeds = {derive_seed(0, env, episode) for env in range(4) for episode in range(4)}
    assert len(seeds) == 16 and all(0 <= s < 2**63 for s in seeds)
    with pytest.raises(ValueError, match="seed parts must be ≥ 0"):
        derive_seed(0, 0, -1)


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match=r"^env.batch_size must be an integer > 0, got 0$"):
        EnvConfig(batch_size=0)
    with pytest.raises(ValueError, match=r"^env.host_lr must be a number > 0, got -0.1$"):
        EnvConfig(host_lr=-0.1)
    with pytest.raises(ValueError, match=r"^env.workers must be auto or an integer ≥ 1 that divides env.num_envs "
                                         r"\(4\), got 3$"):
        EnvOptions(workers=3)
    with pytest.raises(ValueError, match=r"^env config val_batch_size must be ≥ 1, got 0$"):
        EnvConfig(val_batch_size=0)
    with pytest.raises(ValueError, match="use torch.bfloat16"):
        EnvConfig(autocast_dtype=torch.float16)
    with pytest.raises(ValueError, match="unknown reward"):
        EnvConfig(reward="dense")
    with pytest.raises(ValueError, match="num_envs must be an integer ≥ 1"):
        VectorEnv("mnist1d", 0)


def test_bf16_autocast_trains(tiny_task):
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=2, autocast_dtype=torch.bfloat16, auto_advance=False))
    env.reset(seed=0, episode=0)
    result = env.step(act(LifecycleOp.GERMINATE, 0))
    assert math.isfinite(result.signals.train_loss) and 1.5 < result.signals.val_loss < 3.0


def test_auto_advance_walks_a_germinated_seed_to_fossil_as_the_schedule_does(tiny_task):
    schedule = SchedulePolicyBundle(SlotConfig(("r0c0", "r0c1", "r0c2")), "cnn", blueprint="conv_light",
                                    slots=["r0c1"], style="linear_add", tempo="fast")
    manual, auto = (SeedEnv(tiny_task, EnvConfig(max_epochs=10, max_seeds=1, auto_advance=a)) for a in (False, True))
    signals, reports = manual.reset(seed=3, episode=0)
    auto.reset(seed=3, episode=0)
    germinate = schedule.decide(signals, reports)
    stages, auto_infos = [], []
    for epoch in range(10):
        planned = schedule.decide(signals, reports)  # germinate, then advance and fossilize as soon as gates allow
        result = manual.step(planned)
        signals, reports = result.signals, result.reports
        automatic = auto.step(germinate if epoch == 0 else WAIT)  # one decision; the seed goes on by itself
        stages.append(automatic.reports[1].stage)
        auto_infos.append([automatic.info])
        # The fossilization counts whoever made it: the manual plan's FOSSILIZE or auto_advance.
        assert automatic.info["seeds_fossilized"] == result.info["seeds_fossilized"] == int(
            stages[-1] == SeedStage.FOSSILIZED)
        assert automatic.reports[1] == reports[1] and automatic.signals.val_accuracy == signals.val_accuracy
    assert stages[0] == SeedStage.GERMINATED and stages[-1] == SeedStage.FOSSILIZED
    (episode,) = episode_results(auto_infos, "auto", seed=3, episode=0, objective=Objective())
    assert (episode.seeds_germinated, episode.seeds_fossilized, episode.seeds_pruned) == (1, 1, 0)
    # Without auto_advance the same lone germination never leaves GERMINATED.
    idle = SeedEnv(tiny_task, EnvConfig(max_epochs=4, max_seeds=1, auto_advance=False))
    idle.reset(seed=3, episode=0)
    assert [idle.step(germinate if e == 0 else WAIT).reports[1].stage for e in range(4)] == [SeedStage.GERMINATED] * 4
