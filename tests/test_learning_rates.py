"""The host's and the seeds' learning rates: env group keys that reach every optimiser the env builds."""

import dataclasses

import gymnasium as gym
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tamiyo.conf import CONF_DIR
from tamiyo.core.actions import FactoredAction, LifecycleOp, blueprint_from_id
from tamiyo.env.config import EnvConfig, build_env_config
from tamiyo.env.gym_env import ENV_ID
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _config(*overrides: str) -> EnvConfig:
    cfg = _compose(*overrides)
    env = OmegaConf.to_container(cfg.env, resolve=True)
    return build_env_config(env, OmegaConf.to_container(cfg.reward, resolve=True), cfg.ppo.gamma, None)


@pytest.mark.parametrize("group", ["mnist1d", "digits", "mixed", "cifar10", "pysource"])
def test_every_env_group_defaults_to_the_same_learning_rates(group):
    env = _compose(f"env={group}").env
    assert (env.host_lr, env.seed_lr) == (0.01, 0.01)


def test_the_learning_rates_reach_the_host_the_fossils_and_every_seed():
    config = _config("env.host_lr=0.02", "env.seed_lr=0.3", "env.max_epochs=2")
    assert (config.host_lr, config.seed_lr) == (0.02, 0.3)
    task = make_task("mnist1d", train_subset=128, val_subset=64)
    env = SeedEnv(task, dataclasses.replace(config, fossils={"r0c2": "depthwise/add"}))
    env.reset(seed=0, episode=0)
    germinate = dataclasses.replace(
        FactoredAction.wait(), op=LifecycleOp.GERMINATE, slot=0, blueprint=blueprint_from_id("conv_heavy")
    )
    env.step(germinate)
    optimizers = env.optimizers
    assert [group["lr"] for group in optimizers.host.param_groups] == [0.02]
    assert {sid: [g["lr"] for g in opt.param_groups] for sid, opt in optimizers.seeds.items()} == {"r0c0": [0.3]}
    fossil = {id(p) for p in env.model.slot("r0c2").seed.parameters()}
    assert fossil <= {id(p) for p in optimizers.host.param_groups[0]["params"]}  # a fossil trains as host


def test_a_learning_rate_that_is_not_positive_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^env.seed_lr must be a number > 0, got 0.0$"):
        _config("env.seed_lr=0")
    with pytest.raises(ValueError, match=r"^env.host_lr must be a number > 0, got -0.1$"):
        _config("env.host_lr=-0.1")


def test_the_gym_env_takes_the_learning_rates_by_keyword():
    env = gym.make(ENV_ID, task="mnist1d", task_options={"train_subset": 128, "val_subset": 64}, seed_lr=0.05)
    assert env.unwrapped.core.config.seed_lr == 0.05 and env.unwrapped.core.config.host_lr == 0.01
