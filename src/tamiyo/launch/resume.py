"""Resume: continue a run in its own run dir with its own saved config.

Every checkpoint stores the run's config as composed (unresolved). A resume restores that config and
applies only the overrides given on the resume command, key by key:

* free — where and how the run executes and logs, not what it computes: `ckpt_path`, `updates`,
  `torch_threads`, `task_name`, `paths.*`, `callbacks.*`, `logger.*`, `trainer.*` (a changed number
  of processes is still refused when the checkpoint is checked);
* warned — `precision`, `compile`, `ppo.*`: applied, and listed in one warning line (the numbers from
  here on differ from an uninterrupted run);
* refused — `env.*`, `reward.*`, `policy.*`, `imitation.*`, `seed`, `monitor`, `monitor_mode`, and the `experiment`,
  `debug` and `hparams_search` groups: they would make the continued run a different experiment.

The run continues in the checkpoint's run dir (`<run dir>/checkpoints/<file>`); a checkpoint outside a
`checkpoints/` dir continues in the new run dir.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from tamiyo.core.errors import ConfigError
from tamiyo.training.checkpoints import RUN_CONFIG_KEY, resolve_ckpt_path, run_dir_of

log = logging.getLogger("tamiyo")

# Top-level keys a resume applies silently, and those it refuses; any other key (precision, compile,
# ppo.*) is applied and named in the warning line.
_FREE = ("ckpt_path", "updates", "torch_threads", "task_name", "paths", "callbacks", "logger", "trainer")
_REFUSED = ("env", "reward", "policy", "seed", "monitor", "monitor_mode", "experiment", "debug", "hparams_search",
            "init_from", "init_reset_heads", "imitation")
_MISSING = object()


def override_keys(overrides: Sequence[str]) -> list[tuple[str, bool]]:
    """(config key, deleted?) of each command-line override (`env=digits` → `env`, `+a.b=1` → `a.b`)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [(o.key_or_group, o.is_delete()) for o in parsed if not o.key_or_group.startswith("hydra")]


def command_line_keys() -> list[str]:
    """The config keys and groups the running Hydra job's command line sets (`env=mixed` → `env`)."""
    return [key for key, _ in override_keys(HydraConfig.get().overrides.task)]


def _get(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    if value is _MISSING:
        node.pop(leaf, None)
    else:
        node[leaf] = copy.deepcopy(value)


def _show(value: Any) -> str:
    return "(unset)" if value is _MISSING else str(value)


def _leaf_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, value in tree.items():
        key = f"{prefix}{name}"
        keys.extend(_leaf_keys(value, f"{key}.") if isinstance(value, dict) and value else [key])
    return keys


def _check_no_setting_missing(merged: dict[str, Any], current: dict[str, Any]) -> None:
    """A setting added to tamiyo after a run started is absent from its saved config. Only settings a
    resume may change are checked (the env, reward and policy groups legitimately differ between the
    resume command's defaults and the run's own), and the user names the value to continue with."""
    for key in _leaf_keys(current):
        top = key.split(".")[0]
        if top in _FREE or top in _REFUSED or top == "hydra" or _get(merged, key) is not _MISSING:
            continue
        raise ConfigError(
            f"resume: the run's saved config has no {key} (a setting added after the run started); give the "
            f"value to continue with on the resume command, e.g. {key}={_show(_get(current, key))}"
        )


def resumed_config(
    cfg: DictConfig, overrides: Sequence[str], checkpoint: dict[str, Any], ckpt_path: Path
) -> DictConfig:
    """The config a resume runs with: the checkpoint's run config plus the resume command's overrides."""
    saved = checkpoint.get(RUN_CONFIG_KEY)
    if not isinstance(saved, dict):
        raise ConfigError(
            f"checkpoint {ckpt_path} holds no run config (written by an older tamiyo); it cannot be resumed"
        )
    merged = copy.deepcopy(saved)
    current = OmegaConf.to_container(cfg, resolve=False)
    warned: list[str] = []
    for key, deleted in override_keys(overrides):
        old, new = _get(saved, key), (_MISSING if deleted else _get(current, key))
        if old == new:
            continue
        top = key.split(".")[0]
        if top in _REFUSED:
            raise ConfigError(
                f"resume: {key} cannot change when a run continues ({_show(old)} → {_show(new)}); it would "
                "make it another experiment: start a new run instead"
            )
        if top not in _FREE:
            warned.append(f"{key} {_show(old)} → {_show(new)}")
        _set(merged, key, new)
    _check_no_setting_missing(merged, current)
    if warned:
        log.warning("resume changes the run's results from here on: %s", ", ".join(warned))
    run_dir = run_dir_of(ckpt_path)
    merged.setdefault("paths", {})["output_dir"] = str(run_dir) if run_dir is not None else cfg.paths.output_dir
    merged["ckpt_path"] = str(ckpt_path)
    resumed = OmegaConf.create(merged)
    OmegaConf.set_struct(resumed, True)
    return resumed


def hydra_run_dir(output_root: str, task_name: str, ckpt_path: str | None, stamp: str) -> str:
    """Hydra's run dir: the resumed run's own dir, else `<output_root>/<task_name>/runs/<stamp>`.

    (A checkpoint that cannot be found gives a fresh dir here; the run then stops with one line.)"""
    fresh = f"{output_root}/{task_name}/runs/{stamp}"
    if ckpt_path is None:
        return fresh
    try:
        run_dir = run_dir_of(resolve_ckpt_path(str(ckpt_path), Path(output_root), task_name))
    except (ConfigError, OSError):
        return fresh
    return str(run_dir) if run_dir is not None and run_dir.is_dir() else fresh


def hydra_output_subdir(ckpt_path: str | None, stamp: str) -> str:
    """Where Hydra records a job's config: `.hydra`, or `.hydra/resume-<stamp>` for a resume, so a
    resume keeps the record of how the run started."""
    return ".hydra" if ckpt_path is None else f".hydra/resume-{stamp}"


def register_resolvers() -> None:
    """Make `${tamiyo.run_dir:...}` and `${tamiyo.hydra_subdir:...}` available to the Hydra config."""
    OmegaConf.register_new_resolver("tamiyo.run_dir", hydra_run_dir, replace=True)
    OmegaConf.register_new_resolver("tamiyo.hydra_subdir", hydra_output_subdir, replace=True)
