"""The environment config of a run, built from the Hydra `env` and `reward` groups (training and
evaluation build their envs the same way)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from tamiyo.env.gates import GateConfig
from tamiyo.env.rewards import make_reward
from tamiyo.env.seed_env import EnvConfig


def build_env_config(
    env: dict[str, Any], reward: dict[str, Any], gamma: float, autocast_dtype: torch.dtype | None
) -> EnvConfig:
    """The environment config of a run: env group values, the reward group, and PPO's discount
    (shaped rewards must discount with the same gamma as PPO for the shaping to telescope)."""
    reward_options = {k: v for k, v in reward.items() if k != "name"}
    if "gamma" in {f.name for f in dataclasses.fields(make_reward(reward["name"]).config)}:
        reward_options["gamma"] = gamma
    # bf16 host training follows the precision choice; fp16 host training would need loss scaling.
    env_autocast = autocast_dtype if autocast_dtype == torch.bfloat16 else None
    return EnvConfig(
        max_epochs=env["max_epochs"],
        batch_size=env["batch_size"],
        host_lr=float(env["host_lr"]),
        seed_lr=float(env["seed_lr"]),
        max_seeds=env["max_seeds"],
        reward=reward["name"],
        reward_config=reward_options,
        gates=GateConfig(strict=env["strict_gates"]),
        enabled_slots=None if env.get("slots") is None else tuple(env["slots"]),
        autocast_dtype=env_autocast,
        fossils=dict(env.get("fossils") or {}),
        host_widths=tuple(float(w) for w in env.get("host_widths", (1.0,))),
        seed_failure_rate=float(env.get("seed_failure_rate", 0.0)),
        seed_faults=tuple(env.get("seed_faults", ("dead",))),
        auto_advance=bool(env.get("auto_advance", False)),
        host=env.get("host"),
        blueprints=dict(env.get("blueprints") or {}),
    )
