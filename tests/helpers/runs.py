"""Tiny runs of the entry points: composed configs for in-process runs and subprocesses of the CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tamiyo.conf import CONF_DIR

ROOT = Path(__file__).resolve().parents[2]

# The smallest run that exercises every part of an update: one env, 3-epoch episodes on a few hundred
# examples, one PPO epoch over one minibatch, no progress display.
_TINY = {
    "env.num_envs": 1,
    "env.max_epochs": 3,
    "env.task_options.train_subset": 192,
    "env.task_options.val_subset": 96,
    "ppo.update_epochs": 1,
    "ppo.num_minibatches": 1,
    "callbacks.progress_bar": "null",
}


def tiny_overrides(**changes: object) -> list[str]:
    """The tiny-run overrides, with `changes` (keys with `__` for dots, e.g. `env__num_envs=2`) applied."""
    values = dict(_TINY)
    for key, value in changes.items():
        dotted = key.replace("__", ".")
        plus = f"+{dotted}"
        values[plus if plus in values else dotted] = value
    return [f"{key}={value}" for key, value in values.items()]


def compose_config(config: str, out_dir: Path, *overrides: str, tiny: list[str] | None = None) -> DictConfig:
    """Compose `conf/<config>.yaml` for an in-process run writing into `out_dir` (outputs beside it)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config, overrides=[
            *(tiny_overrides() if tiny is None else tiny),
            f"paths.root_dir={ROOT}",
            f"paths.output_root={out_dir.parent / 'outputs'}",
            f"paths.output_dir={out_dir}",
            *overrides,
        ])


def run_cli(script: str, *args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python <script> args...` from the checkout (`train.py` or `scripts/<name>.py`)."""
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    """The per-update rows of a run's `csv/metrics.csv`."""
    return [row for row in read_csv(run_dir / "csv" / "metrics.csv") if row.get("episode/return")]
