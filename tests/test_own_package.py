"""Bring your own task, host and seed blueprint: a throwaway package, written at test time outside the checkout,
named by `_target_` on the command line, trains, evaluates, compares and runs through the Gym env."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from helpers.runs import ROOT

import tamiyo  # noqa: F401  (registers the Gym env)
from tamiyo.core.actions import LifecycleOp
from tamiyo.env.blueprints import count_params
from tamiyo.env.gym_env import ENV_ID
from tamiyo.env.hosts import build_host
from tamiyo.env.tasks import make_task

PACKAGE = '''
"""A task, a host and a seed blueprint of one's own."""
import torch
from torch import nn

from tamiyo.env.hosts import Host
from tamiyo.env.tasks import Task


def bumps(examples: int = 384, length: int = 24, seed: int = 0) -> Task:
    """Which of four places along a noisy 1-D signal holds a bump (a quarter of the examples for validation)."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (examples,), generator=generator)
    x = 0.3 * torch.randn(examples, 1, length, generator=generator)
    place = torch.arange(length)[None] - (3 + 6 * y)[:, None]
    x[:, 0] += torch.exp(-0.5 * (place / 1.5) ** 2)
    cut = examples * 3 // 4
    return Task("bumps", "cnn", x[:cut], y[:cut], x[cut:], y[cut:], num_classes=4)


class TwoConvHost(Host):
    """Two conv blocks, an injection point after each, then a linear readout."""

    def __init__(self, task: Task, width: float = 1.0, channels: int = 6) -> None:
        wide = max(1, round(channels * width))
        super().__init__("conv1d", (wide, wide))
        self.blocks = nn.ModuleList([nn.Sequential(nn.Conv1d(task.input_shape[0], wide, 3, padding=1), nn.ReLU()),
                                     nn.Sequential(nn.Conv1d(wide, wide, 3, padding=1), nn.ReLU())])
        self.head = nn.Linear(wide, task.num_classes)

    def embed(self, x):
        return x

    def readout(self, h):
        return self.head(h.mean(dim=2))


class PointwiseSkip(nn.Module):
    """x + a pointwise conv of relu(x), zero at birth."""

    def __init__(self, layout: str, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        return x + self.conv(torch.relu(x))


def not_a_host(task, width):
    return "a string"
'''
OWN = ["env.task={_target_:my_growth.bumps}", "env.host={_target_:my_growth.TwoConvHost}",
       "env.blueprints={conv_light:{_target_:my_growth.PointwiseSkip}}"]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("own")
    (where / "my_growth").mkdir()
    (where / "my_growth" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    return where


@pytest.fixture
def importable(package, monkeypatch):
    monkeypatch.syspath_prepend(str(package))


def run(package: Path, cwd: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{script} {args}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def test_your_own_task_host_and_blueprint_train_evaluate_and_compare(package, importable, tmp_path):
    task = make_task({"_target_": "my_growth.bumps"})
    host_params = count_params(build_host(task, host={"_target_": "my_growth.TwoConvHost"}))
    run(package, tmp_path, "train.py", "debug=fast", *OWN)
    run(package, tmp_path, "scripts/evaluate.py", "ckpt_path=latest", "seeds=1")  # on the run's own env
    run(package, tmp_path, "scripts/compare.py", "ckpt_path=latest", "seeds=1", "schedule_grid=null",
        "static_final=[]", "baselines=[static,{name:schedule,blueprint:conv_light,slots:[r0c0]}]")
    (compare,) = (tmp_path / "outputs" / "compare" / "runs").iterdir()
    with (compare / "comparison_episodes.csv").open() as handle:
        rows = {row["policy"]: row for row in csv.DictReader(handle)}
    assert {row["task"] for row in rows.values()} == {"bumps"}
    assert {int(row["host_params"]) for row in rows.values()} == {host_params}  # the host of one's own
    scheduled = rows["schedule: conv_light in r0c0"]
    assert int(scheduled["added_params"]) == 6 * 6 + 6  # one PointwiseSkip at 6 channels, not the built-in seed
    assert scheduled["architecture"].startswith("r0c0=conv_light/")


def test_the_gym_env_takes_them_too(importable):
    env = gymnasium.make(ENV_ID, task={"_target_": "my_growth.bumps", "examples": 200}, max_epochs=2,
                         host={"_target_": "my_growth.TwoConvHost", "channels": 4},
                         blueprints={"conv_light": {"_target_": "my_growth.PointwiseSkip"}})
    env.reset(seed=0)
    assert env.unwrapped.slot_config.slot_ids == ("r0c0", "r0c1")
    germinate = np.array([0, 1, 0, 0, 2, 0, 0, int(LifecycleOp.GERMINATE)])  # conv_light into r0c0
    _, _, _, _, info = env.step(germinate)
    assert info["took_effect"]
    seed = env.unwrapped.core.model.slot("r0c0").seed
    assert type(seed).__name__ == "PointwiseSkip" and seed.conv.in_channels == 4


@pytest.mark.parametrize(("override", "message"), [
    ("env.host={_target_:my_growth.nowhere}", "env/reward config: env.host {_target_: my_growth.nowhere}: Error "
                                               "locating target 'my_growth.nowhere'"),
    ("env.host={_target_:my_growth.not_a_host}", "env/reward config: env.host {_target_: my_growth.not_a_host} "
                                                 "built a str, not a Host"),
    # A blueprint name is checked with the config, before any target is built.
    ("env.blueprints={conv_lite:{_target_:my_growth.PointwiseSkip}}", "env.blueprints: 'conv_lite' is not "
                                                                      "a blueprint; a blueprint of your own takes"),
])
def test_a_bad_target_is_one_line_naming_the_key(package, tmp_path, override, message):
    env = {**os.environ, "PYTHONPATH": str(package)}
    args = ["debug=fast", "env.task={_target_:my_growth.bumps}", "env.host={_target_:my_growth.TwoConvHost}", override]
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().startswith(f"error: {message}")
    assert len(done.stderr.strip().splitlines()) == 1
