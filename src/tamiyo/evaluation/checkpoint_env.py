"""Which env a checkpoint is evaluated on: the one it was trained on, unless the command says otherwise.

A training checkpoint stores its run's config. Evaluation and comparison of a checkpoint take that run's `env`
(task, task options, epochs, slots, widths, faults, …), so a controller trained on tiny data or on `env=mixed` is
judged on what it learned, not on the command's defaults. The command still decides:
* the whole env, when it chooses one by a config group (`env=…`, `experiment=…`, `debug=…`);
* each `env.<key>` it sets (`env.max_epochs=10` evaluates the trained env for 10 epochs);
* `env.num_envs` and `env.workers` always: how many env-episodes a seed runs and where, not what they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tamiyo.core.errors import ConfigError
from tamiyo.training.checkpoints import RUN_CONFIG_KEY, load_checkpoint, resolve_ckpt_path

log = logging.getLogger("tamiyo")

# Config groups whose choice on the command line sets the whole env.
_ENV_GROUPS = ("env", "experiment", "debug")
# Env keys that say how many episodes run and where, so they are always the command's.
_COMMAND_KEYS = ("num_envs", "workers")
# Env keys whose default changed after they were added: a run saved before the key existed ran with this value.
_BEFORE_IT_EXISTED = {"auto_advance": False}


def resolve_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint `ckpt_path` names; `latest`/`latest_any` pick the newest training run (task `train`) of
    the asked policy, and say which file they chose."""
    if cfg.ckpt_path is None:
        return None
    path = resolve_ckpt_path(str(cfg.ckpt_path), Path(cfg.paths.output_root), "train", policy=cfg.policy.name)
    if str(cfg.ckpt_path) != str(path):
        log.info("ckpt_path=%s: %s", cfg.ckpt_path, path)
    return path


def with_checkpoint_env(cfg: DictConfig, overridden: Sequence[str]) -> tuple[DictConfig, str]:
    """`cfg` with `ckpt_path` resolved to its file and the env chosen as the module says (`overridden`: the config
    keys and groups the command line sets, e.g. `env`, `env.max_epochs`), and a few words on where the env came
    from (for captions); logs one line saying which env is used."""
    ckpt = resolve_checkpoint(cfg)
    if ckpt is None:
        return cfg, "the command's env"
    keys = list(overridden)
    chosen = cfg.copy()
    chosen.ckpt_path = str(ckpt)
    groups = [key for key in keys if key in _ENV_GROUPS]
    if groups:
        log.info("env: the command's (%s), not the one %s was trained on", ", ".join(groups), ckpt)
        return chosen, "the command's env"
    saved = load_checkpoint(ckpt).get(RUN_CONFIG_KEY)
    if not isinstance(saved, dict) or not isinstance(saved.get("env"), dict):
        raise ConfigError(f"{ckpt} holds no run config (written by an older tamiyo): pass the env it was trained on "
                          "explicitly, e.g. env=mnist1d")
    # A setting added to tamiyo after the run was trained takes the command's value (today's default), or the value
    # the run had without it when the default has changed since.
    env = OmegaConf.merge(cfg.env, {**_BEFORE_IT_EXISTED, **saved["env"]})
    set_here = [key.removeprefix("env.") for key in keys if key.startswith("env.")]
    for key in [*set_here, *_COMMAND_KEYS]:
        OmegaConf.update(env, key, OmegaConf.select(cfg.env, key), merge=False)
    chosen.env = env
    where = f" with the command's {', '.join(f'env.{key}' for key in set_here)}" if set_here else ""
    log.info("env: the one %s was trained on (task %s)%s", ckpt, env.task, where)
    return chosen, f"the checkpoint's env{where}"
