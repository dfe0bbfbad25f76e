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
from tamiyo.ppo.config import ImitationOptions, PPOOptions
from tamiyo.training.validation import ValidationOptions

PRECISIONS = ("32", "bf16", "fp16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


def _positive(x: float) -> bool:
    return x > 0


def _non_negative(x: float) -> bool:
    return x >= 0


# key → (accepted types, predicate, what the predicate demands)
_RULES: dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]] = {
    "seed": ((int,), _non_negative, "an integer ≥ 0"),
    "updates": ((int,), _positive, "an integer > 0"),
    "torch_threads": ((int,), _positive, "an integer > 0"),
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


def _check_imitation_updates(cfg: DictConfig) -> None:
    if cfg.imitation.updates >= cfg.updates:
        raise ConfigError(
            f"imitation.updates ({cfg.imitation.updates}) must be fewer than updates ({cfg.updates}): "
            "PPO trains after the imitation updates"
        )


_OPTIONS: dict[str, type] = {"env": EnvOptions, "ppo": PPOOptions, "imitation": ImitationOptions,
                              "validation": ValidationOptions}


def _known_keys() -> dict[str, frozenset[str]]:
    """The keys of the groups that are read key by key (an unknown key there would be ignored without a word; `+`
    adds one even to a group with a schema): env, ppo, imitation, validation and objective."""
    train = OmegaConf.load(CONF_DIR / "train.yaml")
    return {
        **{group: frozenset(field.name for field in dataclasses.fields(kind)) for group, kind in _OPTIONS.items()},
        "objective": frozenset(train["objective"].keys()),
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


def _options(cfg: DictConfig, group: str) -> Any:
    """The run's `group` as the object that checks it, a bad value refused in one line naming its key."""
    try:
        return _OPTIONS[group](**OmegaConf.to_container(_lookup(cfg, group), resolve=True))  # type: ignore[arg-type]
    except ValueError as error:
        raise ConfigError(str(error)) from error


def env_options(cfg: DictConfig) -> EnvOptions:
    return _options(cfg, "env")


def ppo_options(cfg: DictConfig) -> PPOOptions:
    return _options(cfg, "ppo")


def imitation_options(cfg: DictConfig) -> ImitationOptions:
    return _options(cfg, "imitation")


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
    for group in _OPTIONS:
        _options(cfg, group)
    reset_heads = list(OmegaConf.select(cfg, "init_reset_heads", default=None) or ())
    if reset_heads and OmegaConf.select(cfg, "init_from", default=None) is None:
        raise ConfigError(f"init_reset_heads={reset_heads} resets heads of a warm start: give init_from as well")
    _check_imitation_updates(cfg)
    if cfg.ppo.num_minibatches > cfg.env.num_envs:
        raise ConfigError(
            f"ppo.num_minibatches ({cfg.ppo.num_minibatches}) cannot exceed env.num_envs ({cfg.env.num_envs}): "
            "minibatches are made of whole env sequences"
        )
