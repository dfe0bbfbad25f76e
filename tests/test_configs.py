"""Every option of every packaged config group composes, validates and names importable targets."""

import dataclasses
import importlib
from pathlib import Path

import pytest
from helpers.runs import run_cli
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

import tamiyo.launch  # noqa: F401  (registers the resolvers the launcher configs use)
from tamiyo.conf import CONF_DIR
from tamiyo.core.errors import ConfigError
from tamiyo.core.slots import SlotConfig
from tamiyo.env.config import EnvOptions, build_env_config
from tamiyo.env.gym_env import SeedLifecycleEnv
from tamiyo.env.rewards import REWARDS, make_reward
from tamiyo.launch.validation import env_options, normalize_choices, validate_config
from tamiyo.policy.heuristic import HeuristicConfig
from tamiyo.policy.registry import get_policy, policy_options

# Groups selected in train.yaml's defaults list, plus the optional ones (null by default); `benchmark` is
# compare.yaml's, chosen by the env.
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "__pycache__"))
OPTIONS = [(group, option.stem) for group in GROUPS if group != "benchmark"
           for option in sorted((CONF_DIR / group).glob("*.yaml"))]
BENCHMARKS = sorted(p.stem for p in (CONF_DIR / "benchmark").glob("*.yaml"))
LAUNCHERS = sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml"))
PLUGIN_OF_LAUNCHER = {"joblib": "hydra_plugins.hydra_joblib_launcher", "ray": "hydra_plugins.hydra_ray_launcher",
                      "submitit_local": "hydra_plugins.hydra_submitit_launcher",
                      "submitit_slurm": "hydra_plugins.hydra_submitit_launcher"}


def _compose(config: str, *overrides: str, hydra: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        unused = ["paths.root_dir=/tmp/unused", "paths.output_dir=/tmp/unused"]  # no Hydra job runs here
        return compose(config, overrides=[*unused, *overrides], return_hydra_config=hydra)


def _targets(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["_target_"]] if "_target_" in node else []
        return own + [t for value in node.values() for t in _targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in _targets(value)]
    return []


def _importable(target: str) -> object:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_groups_are_the_documented_ones():
    assert GROUPS == ["benchmark", "callbacks", "debug", "env", "experiment", "hparams_search", "logger", "paths",
                      "policy", "ppo", "reward", "trainer"]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_group_option_composes_validates_and_builds_from_importable_targets(group, option):
    cfg = _compose("train", f"{group}={option}")
    normalize_choices(cfg)
    validate_config(cfg)
    for target in _targets(OmegaConf.to_container(cfg, resolve=True)):
        _importable(target)
    if group == "hparams_search":  # the search space names only keys that exist
        for key in _compose("train", f"{group}={option}", hydra=True).hydra.sweeper.params:
            assert OmegaConf.select(cfg, key) is not None, key


@pytest.mark.parametrize("env", BENCHMARKS)
def test_an_envs_benchmark_sets_the_comparison_it_is_reported_with(env):
    assert (CONF_DIR / "env" / f"{env}.yaml").is_file()  # a benchmark belongs to an env of the same name
    cfg = _compose("compare", f"env={env}")
    own = OmegaConf.load(CONF_DIR / "benchmark" / f"{env}.yaml")
    for key in ("train_seeds", "schedule_grid"):
        assert cfg[key] == own[key]
    assert _compose("compare").train_seeds != cfg.train_seeds  # other envs keep compare.yaml's


@pytest.mark.parametrize("config", ["evaluate", "compare"])
def test_evaluation_configs_extend_the_training_config(config):
    cfg = _compose(config)
    assert cfg.task_name == config and cfg.policy.name == "lstm" and cfg.seeds == 5


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_resolves_its_resources(launcher):
    launcher_cfg = _compose("train", f"hydra/launcher={launcher}", hydra=True).hydra.launcher
    assert launcher_cfg._target_.startswith(PLUGIN_OF_LAUNCHER[launcher])
    # Resource sizes resolve from the run config (the output folders need a running Hydra job).
    keys = ("n_jobs", "cpus_per_task", "tasks_per_node", "gpus_per_node", "ray.remote.num_cpus", "ray.remote.num_gpus")
    sizes = {key: OmegaConf.select(launcher_cfg, key) for key in keys}
    assert sizes["gpus_per_node"] is None and sizes["ray.remote.num_gpus"] is None  # a CPU trainer asks for no GPU
    assert any(isinstance(size, int) and size >= 1 for size in sizes.values())


def test_the_wheel_carries_every_config():
    shipped = {p.relative_to(CONF_DIR).as_posix() for p in CONF_DIR.rglob("*.yaml")}
    top_level = Path(__file__).resolve().parents[1] / "conf"
    assert top_level.resolve() == CONF_DIR  # the checkout's conf/ is the packaged one, not a copy
    assert {"train.yaml", "evaluate.yaml", "compare.yaml", "policy/lstm.yaml", "env/mnist1d.yaml"} <= shipped


SLOTS = {"slot_config": SlotConfig(("r0c0", "r0c1", "r0c2")), "topology": "cnn"}
HEADS = ("op", "slot", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve")


def test_entropy_coef_is_one_number_or_one_per_head():
    per_head = ",".join(f"{h}:{0.1 if h == 'blueprint' else 0.01}" for h in HEADS)
    validate_config(_compose("train", f"ppo.entropy_coef={{{per_head}}}"))
    with pytest.raises(ConfigError, match=r"^ppo.entropy_coef: entropy coefficients must name exactly the heads "):
        validate_config(_compose("train", "ppo.entropy_coef={blueprint:0.1}"))
    with pytest.raises(ConfigError, match=r"^ppo.entropy_coef must be a number ≥ 0 or a mapping head → number ≥ 0, "
                                          r"got -0.1$"):
        validate_config(_compose("train", "ppo.entropy_coef=-0.1"))
    with pytest.raises(ConfigError, match=r"^ppo.entropy_coef_end must be a number ≥ 0 or a mapping"):
        validate_config(_compose("train", "ppo.entropy_coef_end=high"))


def test_the_env_group_is_one_dataclass_that_training_and_the_gym_env_share():
    cfg = _compose("train")
    assert OmegaConf.get_type(cfg.env) is EnvOptions  # the schema every conf/env/* extends
    assert env_options(cfg) == EnvOptions()  # env=mnist1d is the defaults
    mixed = env_options(_compose("train", "env=mixed"))
    assert (mixed.task, mixed.max_seeds, mixed.seed_failure_rate) == (["mnist1d", "digits"], 5, 0.3)
    trained = build_env_config(mixed, {"name": "objective", "param_weight": 0.05, "compute_weight": 0.0}, 0.995, None)
    gym = SeedLifecycleEnv(mixed.task, max_seeds=5, host_widths=[0.5, 1.0, 2.0], seed_failure_rate=0.3,
                           reward={"name": "objective", "param_weight": 0.05, "compute_weight": 0.0})
    assert gym.core.config == trained


@pytest.mark.parametrize("reward", REWARDS.names())
def test_each_reward_option_is_its_config_dataclass_with_its_defaults(reward):
    cfg = _compose("train", f"reward={reward}", "objective.param_weight=0.02")
    assert OmegaConf.get_type(cfg.reward).__name__ == f"{type(make_reward(reward).config).__name__}Options"
    options = OmegaConf.to_container(cfg.reward, resolve=True)
    built = build_env_config(EnvOptions(), options, 0.9, None)
    config = make_reward(built.reward, **built.reward_config).config
    defaults = make_reward(reward).config
    if reward == "objective":  # the price is the objective's, the one every table uses
        assert config.param_weight == 0.02 != defaults.param_weight
    else:  # PPO's discount is the shaping's
        assert getattr(config, "gamma", 0.9) == 0.9
    assert {k: v for k, v in vars(config).items() if k not in ("param_weight", "gamma")} == \
        {k: v for k, v in vars(defaults).items() if k not in ("param_weight", "gamma")}


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "policy").glob("*.yaml")))
def test_each_policy_option_holds_its_bundles_options_and_builds_it(option):
    cfg = _compose("train", f"policy={option}")
    options = OmegaConf.to_container(cfg.policy, resolve=True)
    name = options.pop("name")
    assert OmegaConf.get_type(cfg.policy).__name__ == f"{type(get_policy(name, **SLOTS)).__name__}Options"
    schema = {f.name for f in dataclasses.fields(policy_options(name))} - {"name"}
    assert set(options) == schema  # every option, with the default the bundle holds unless the file sets it
    assert type(get_policy(name, **SLOTS, **options)).__name__ == type(get_policy(name, **SLOTS)).__name__


def test_the_policy_options_are_the_bundles_keywords_with_their_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(policy_options("schedule"))}
    assert fields["blueprint"] == "conv_light" and fields["slots"] == "all" and fields["prune_dead"] is False
    assert fields["germinate_below"] is None and "slot_config" not in fields and "obs_dim" not in fields
    assert {f.name for f in dataclasses.fields(policy_options("heuristic"))} == \
        {"name", *(f.name for f in dataclasses.fields(HeuristicConfig))}
    assert [f.name for f in dataclasses.fields(policy_options("static"))] == ["name"]


@pytest.mark.parametrize(("override", "message"), [
    ("policy.foo=1", "error: policy.foo is not a key of this config; did you mean policy?"),
    ("policy=static policy.seed=1", "error: policy.seed is not a key of this config; a key of a task's loader goes "
                                    "with '+'"),
    ("policy.hidden_dim=x", "error: policy.hidden_dim=x: Value 'x' of type 'str' could not be converted to Integer"),
    ("policy=schedule policy.tempo=warp",
     "error: policy config: schedule tempo must be one of ['fast', 'standard', 'slow'], got 'warp'"),
    ("reward.foo=1", "error: reward.foo is not a key of this config; did you mean reward?"),
    ("reward.gamma=0.9", "error: reward.gamma is not a key of this config; did you mean reward.name?"),
    ("reward.charge=later", "error: env/reward config: objective reward charge must be one of ('effect', 'kept', "
                            "'present'), got 'later'"),
    ("reward=sparse reward.scale=big",
     "error: reward.scale=big: Value 'big' of type 'str' could not be converted to Float"),
])
def test_a_bad_policy_or_reward_option_is_one_line_naming_it(tmp_path, override, message):
    result = run_cli("train.py", *override.split(), "debug=fast", f"paths.output_root={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message


@pytest.mark.parametrize(("override", "message"), [
    ("env.num_envs=0", "env.num_envs must be an integer > 0, got 0"),
    ("env.max_seeds=-1", "env.max_seeds must be an integer ≥ 0 (0 = unlimited), got -1"),
    ("env.workers=3", "env.workers must be auto or an integer ≥ 1 that divides env.num_envs (4), got 3"),
    ("env.host_lr=0", "env.host_lr must be a number > 0, got 0.0"),
    ("env.seed_failure_rate=2", "env.seed_failure_rate must be a number in [0, 1], got 2.0"),
    ("env.seed_faults=[slow]", "env.seed_faults must name faults from ['dead', 'unstable'], got ['slow']"),
    ("env.host_widths=[]", "env.host_widths must be a list of numbers > 0, got []"),
    ("env.host={a: 1}", "env.host must be null or a mapping with a _target_, got {'a': 1}"),
])
def test_a_bad_env_value_is_one_line_naming_its_key(override, message):
    with pytest.raises(ConfigError) as error:
        validate_config(_compose("train", override))
    assert str(error.value) == message


def test_a_value_of_the_wrong_type_is_refused_when_composed(tmp_path):
    result = run_cli("train.py", "env.max_epochs=many", f"paths.output_root={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: env.max_epochs=many: Value 'many' of type 'str' could not be converted to Integer"]
