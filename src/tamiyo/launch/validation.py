"""Validation of the composed run configuration.

Hydra checks that config groups exist; this module checks values, so that a wrong type or an
out-of-range value stops the run at start with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tamiyo.conf import CONF_DIR
from tamiyo.core.errors import ConfigError
from tamiyo.env.config import EnvOptions
from tamiyo.ppo.curriculum import op_curriculum
from tamiyo.ppo.loss import ADVANTAGE_NORMALIZATIONS, per_head_coefficients

PRECISIONS = ("32", "bf16", "fp16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


def _positive(x: float) -> bool:
    return x > 0


def _non_negative(x: float) -> bool:
    return x >= 0


def _unit_interval(x: float) -> bool:
    return 0 <= x <= 1


# key → (accepted types, predicate, what the predicate demands)
_RULES: dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]] = {
    "seed": ((int,), _non_negative, "an integer ≥ 0"),
    "updates": ((int,), _positive, "an integer > 0"),
    "torch_threads": ((int,), _positive, "an integer > 0"),
    "ppo.lr": ((float, int), _positive, "a number > 0"),
    "ppo.adam_eps": ((float, int), _positive, "a number > 0"),
    "ppo.gamma": ((float, int), _unit_interval, "a number in [0, 1]"),
    "ppo.gae_lambda": ((float, int), _unit_interval, "a number in [0, 1]"),
    "ppo.clip_ratio": ((float, int), _positive, "a number > 0"),
    "ppo.value_coef": ((float, int), _non_negative, "a number ≥ 0"),
    "ppo.update_epochs": ((int,), _positive, "an integer > 0"),
    "ppo.num_minibatches": ((int,), _positive, "an integer > 0"),
    "ppo.max_grad_norm": ((float, int), _positive, "a number > 0"),
    "ppo.ratio": ((str,), lambda x: x in ("joint", "per_head"), "'joint' or 'per_head'"),
    "ppo.advantage_normalization": (
        (str,), lambda x: x in ADVANTAGE_NORMALIZATIONS, "'rollout', 'minibatch' or 'none'"
    ),
    "imitation.updates": ((int,), _non_negative, "an integer ≥ 0"),
    "imitation.guide_coef": ((float, int), _non_negative, "a number ≥ 0"),
    "validation.every": ((int,), _non_negative, "an integer ≥ 0 (0 = off)"),
    "validation.episodes": ((int,), _positive, "an integer > 0"),
    "validation.seed": ((int,), _non_negative, "an integer ≥ 0"),
    "imitation.guide_coef_end": ((float, int), _non_negative, "a number ≥ 0"),
}


def _lookup(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if value is _MISSING:
        raise ConfigError(f"{key} is missing from the configuration")
    return value


_MISSING = object()


def normalize_choices(cfg: DictConfig) -> None:
    """Turn `precision=32` (parsed by Hydra as an int) into the string choice, in place."""
    with_flag = OmegaConf.is_readonly(cfg)
    OmegaConf.set_readonly(cfg, False)
    cfg.precision = str(cfg.precision)
    cfg.compile = str(cfg.compile)
    OmegaConf.set_readonly(cfg, with_flag)


def _check_entropy_coef(key: str, value: Any) -> None:
    """One number for every head, or a mapping that gives each head its own."""
    if isinstance(value, DictConfig):
        try:
            per_head_coefficients(OmegaConf.to_container(value))  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{key}: {error}") from error
    elif isinstance(value, bool) or not isinstance(value, (float, int)) or value < 0:
        raise ConfigError(f"{key} must be a number ≥ 0 or a mapping head → number ≥ 0, got {value!r}")


def _check_ops_from_update(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, DictConfig):
        raise ConfigError(f"ppo.ops_from_update must be a mapping op → update, e.g. {{prune: 20}}, got {value!r}")
    try:
        op_curriculum(OmegaConf.to_container(value))  # type: ignore[arg-type]
    except ValueError as error:
        raise ConfigError(f"ppo.ops_from_update: {error}") from error


def _check_imitation(cfg: DictConfig) -> None:
    """Imitation updates and a guide need a teacher that acts (a policy config with a name) and a policy that
    learns."""
    _check_entropy_coef("imitation.entropy_coef", _lookup(cfg, "imitation.entropy_coef"))
    imitation = cfg.imitation
    users = [f"imitation.{key}={imitation[key]}" for key in ("updates", "guide_coef", "guide_coef_end")
             if imitation[key]]
    if not users:
        return
    teacher = imitation.teacher
    if not isinstance(teacher, DictConfig) or not isinstance(teacher.get("name"), str):
        raise ConfigError(
            f"{users[0]} needs imitation.teacher, a policy config such as "
            f"{{name: schedule, blueprint: conv_heavy, slots: [r0c1]}}; got {teacher!r}"
        )
    if cfg.imitation.updates >= cfg.updates:
        raise ConfigError(
            f"imitation.updates ({cfg.imitation.updates}) must be fewer than updates ({cfg.updates}): "
            "PPO trains after the imitation updates"
        )


def _known_keys() -> dict[str, frozenset[str]]:
    """The keys of the groups that are read key by key (an unknown key there would be ignored without a word):
    env (a saved config that predates its schema can hold any key), ppo, objective, imitation and validation."""
    train = OmegaConf.load(CONF_DIR / "train.yaml")
    return {
        "env": frozenset(field.name for field in dataclasses.fields(EnvOptions)),
        "ppo": frozenset(OmegaConf.load(CONF_DIR / "ppo" / "default.yaml").keys()),
        **{group: frozenset(train[group].keys()) for group in ("objective", "imitation", "validation")},
    }


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse a key no part of tamiyo reads (e.g. `+ppo.lrr=1`), naming the closest known ones."""
    for group, known in _known_keys().items():
        node = OmegaConf.select(cfg, group, default=None)
        for key in [] if node is None else sorted(set(node.keys()) - known):
            close = difflib.get_close_matches(str(key), sorted(known), n=2)
            hint = f"did you mean {' or '.join(f'{group}.{c}' for c in close)}?" if close else \
                f"its keys: {', '.join(sorted(known))}"
            raise ConfigError(f"{group}.{key} is not a key of {group}; {hint}")


def env_options(cfg: DictConfig) -> EnvOptions:
    """The run's `env` group as the object that checks it, a bad value refused in one line naming its key."""
    try:
        return EnvOptions(**OmegaConf.to_container(_lookup(cfg, "env"), resolve=True))  # type: ignore[arg-type]
    except ValueError as error:
        raise ConfigError(str(error)) from error


def validate_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` naming the first invalid key."""
    if str(cfg.precision) not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if str(cfg.compile) not in COMPILE_MODES:
        raise ConfigError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {cfg.compile!r}")
    for key, (types, predicate, demand) in _RULES.items():
        value = _lookup(cfg, key)
        ok_type = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok_type or not predicate(value):
            raise ConfigError(f"{key} must be {demand}, got {value!r}")
    check_known_keys(cfg)
    env_options(cfg)
    reset_heads = list(OmegaConf.select(cfg, "init_reset_heads", default=None) or ())
    if reset_heads and OmegaConf.select(cfg, "init_from", default=None) is None:
        raise ConfigError(f"init_reset_heads={reset_heads} resets heads of a warm start: give init_from as well")
    _check_imitation(cfg)
    _check_ops_from_update(_lookup(cfg, "ppo.ops_from_update"))
    _check_entropy_coef("ppo.entropy_coef", _lookup(cfg, "ppo.entropy_coef"))
    if _lookup(cfg, "ppo.entropy_coef_end") is not None:
        _check_entropy_coef("ppo.entropy_coef_end", cfg.ppo.entropy_coef_end)
    if cfg.ppo.num_minibatches > cfg.env.num_envs:
        raise ConfigError(
            f"ppo.num_minibatches ({cfg.ppo.num_minibatches}) cannot exceed env.num_envs ({cfg.env.num_envs}): "
            "minibatches are made of whole env sequences"
        )
