"""A batch of N seed-lifecycle environments stepped in lockstep.

The envs run one after another on the same device; each has its own RNG stream derived from
(seed, env index, episode index), so env i's trajectory is the same whatever N is. Env indices start
at `first_env_index`, so several processes of one distributed run (each with its own `VectorEnv`)
can run disjoint envs: rank r uses indices r·N … r·N + N − 1. Observations of
all envs are packed into one `ObservationBatch` per step.

Resume: `state_dict()` holds the base seed and the next episode index. Every episode re-derives all
its randomness from those, so restoring them between episodes reproduces the following episodes exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tamiyo.core.actions import FactoredAction
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.slots import SlotConfig
from tamiyo.env.hosts import build_host
from tamiyo.env.model import enabled_slot_config
from tamiyo.env.seed_env import EnvConfig, SeedEnv
from tamiyo.env.tasks import Task, make_task


class VectorEnv:
    def __init__(
        self,
        task: Task | str,
        num_envs: int,
        config: EnvConfig | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        task_options: Mapping[str, Any] | None = None,
        first_env_index: int = 0,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer ≥ 1, got {num_envs!r}")
        if first_env_index < 0:
            raise ValueError(f"first_env_index must be ≥ 0, got {first_env_index}")
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        if isinstance(task, str):
            task = make_task(task, **(task_options or {}))
        elif task_options:
            raise ValueError("task_options only apply when the task is given by name")
        self.device = torch.device(device)
        self.task = _task_on(task, self.device)  # one copy on the device, shared by all envs
        self.config = config if config is not None else EnvConfig()
        self.first_env_index = first_env_index
        self.envs = [
            SeedEnv(self.task, self.config, env_index=first_env_index + i, device=self.device) for i in range(num_envs)
        ]
        self.seed = seed
        self.next_episode = 0
        self._slot_config: SlotConfig | None = None

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    @property
    def topology(self) -> str:
        return self.task.topology

    @property
    def max_epochs(self) -> int:
        return self.config.max_epochs

    @property
    def slot_config(self) -> SlotConfig:
        if self._slot_config is None:
            # A throwaway host, built under a forked RNG so that asking does not move the caller's stream.
            with torch.random.fork_rng(devices=[]):
                self._slot_config = enabled_slot_config(build_host(self.task), self.config.enabled_slots)
        return self._slot_config

    @property
    def done(self) -> bool:
        return all(env.done for env in self.envs)

    def reset(self, seed: int | None = None, episode_index: int | None = None) -> ObservationBatch:
        """Start an episode in every env (episode `episode_index`, default the next one) and observe epoch 0."""
        if seed is not None:
            if seed < 0:
                raise ValueError(f"seed must be ≥ 0, got {seed}")
            self.seed = seed
        episode = self.next_episode if episode_index is None else episode_index
        if episode < 0:
            raise ValueError(f"episode_index must be ≥ 0, got {episode}")
        observations = [env.reset(self.seed, episode) for env in self.envs]
        self.next_episode = episode + 1
        return ObservationBatch.pack(
            [signals for signals, _ in observations], [reports for _, reports in observations], device=self.device
        )

    def step(
        self, actions: Sequence[FactoredAction]
    ) -> tuple[ObservationBatch, torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        """One epoch in every env: observations, rewards `[N]` float32, dones `[N]` bool, per-env infos."""
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions (one per env), got {len(actions)}")
        results = [env.step(action) for env, action in zip(self.envs, actions, strict=True)]
        observation = ObservationBatch.pack(
            [r.signals for r in results], [r.reports for r in results], device=self.device
        )
        rewards = torch.tensor([r.reward for r in results], dtype=torch.float32, device=self.device)
        dones = torch.tensor([r.done for r in results], dtype=torch.bool, device=self.device)
        return observation, rewards, dones, [r.info for r in results]

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "next_episode": self.next_episode, "num_envs": self.num_envs}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        expected = {"seed", "next_episode", "num_envs"}
        if set(state) != expected:
            raise ValueError(f"vector env state keys {sorted(state)} do not match {sorted(expected)}")
        if state["num_envs"] != self.num_envs:
            raise ValueError(f"vector env state is for {state['num_envs']} envs, this batch has {self.num_envs}")
        self.seed = int(state["seed"])
        self.next_episode = int(state["next_episode"])


def _task_on(task: Task, device: torch.device) -> Task:
    if task.train_x.device == device:
        return task
    moved = {name: getattr(task, name).to(device) for name in ("train_x", "train_y", "val_x", "val_y")}
    return dataclasses.replace(task, **moved)
