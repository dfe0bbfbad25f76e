"""The rollout DataModule: owns the vector env and the observation/reward normalisers.

Its dataloader yields one placeholder item per Lightning epoch; the rollout itself is collected by
`collect`, which the LightningModule calls inside `training_step`, so the policy always acts with
the weights after the previous update. `state_dict` carries the normaliser statistics and the
episode counter (each env's RNG stream is derived from (seed, env index, episode), so the counter is
all the env state a resume needs).

Distributed runs (`trainer=ddp`): every rank runs its own `num_envs` envs with global indices
rank·num_envs + i, so no two envs of the run share an RNG stream. During a rollout each rank's
normalisers fold in its own samples; at the end of the rollout the ranks' contributions are merged, so
all ranks (and the checkpoint rank 0 writes) hold the statistics of every env of the run, and the
episode statistics are averaged over all envs of the run. `workers` env worker processes run on
every rank (see `tamiyo.env.vector`).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from tamiyo.collectors.rollout import RolloutCollector
from tamiyo.core.actions import LifecycleOp
from tamiyo.env.config import EnvOptions, build_env_config
from tamiyo.env.kinds import load_tasks
from tamiyo.env.objective import Objective
from tamiyo.env.vector import VectorEnv
from tamiyo.policy.features import obs_dim
from tamiyo.policy.protocol import PolicyBundle
from tamiyo.ppo.normalizers import ObservationNormalizer, RewardNormalizer
from tamiyo.ppo.storage import Hidden, RolloutStorage
from tamiyo.training.distributed import gather_from_ranks, merge_rank_statistics, reduce_episode_stats


class _OneItemPerEpoch(Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        return index


class RolloutDataModule(L.LightningDataModule):
    def __init__(
        self,
        env: EnvOptions,
        reward: dict[str, Any],
        seed: int = 0,
        gamma: float = 0.995,
        obs_clip: float = 5.0,
        reward_clip: float = 10.0,
        normalize_rewards: bool = True,
        autocast_dtype: torch.dtype | None = None,
        objective: Objective | None = None,
        workers: int = 1,
    ) -> None:
        super().__init__()
        self.seed = seed
        self.autocast_dtype = autocast_dtype
        self.task = load_tasks(env.task, env.task_options, env.kinds)
        config = build_env_config(env, reward, gamma, autocast_dtype)
        self.vec_env = VectorEnv(self.task, num_envs=env.num_envs, config=config, seed=seed, workers=workers)
        self.obs_normalizer = ObservationNormalizer(obs_dim(self.vec_env.slot_config.num_slots), clip=obs_clip)
        self.reward_normalizer = (
            RewardNormalizer(env.num_envs, gamma=gamma, clip=reward_clip) if normalize_rewards else None
        )
        self.objective = objective
        self.collector = RolloutCollector(
            self.vec_env, self.obs_normalizer, self.reward_normalizer, autocast_dtype, objective
        )
        self.episodes_collected = 0

    def setup(self, stage: str) -> None:
        # Runs in every rank once the process group exists: give this rank its own block of env indices.
        first_env_index = self.trainer.global_rank * self.num_envs
        if first_env_index != self.vec_env.first_env_index:
            self.vec_env.close()
            self.vec_env = VectorEnv(
                self.task, self.num_envs, config=self.vec_env.config, seed=self.seed, first_env_index=first_env_index,
                workers=self.vec_env.workers,
            )
            self.collector = RolloutCollector(
                self.vec_env, self.obs_normalizer, self.reward_normalizer, self.autocast_dtype, self.objective
            )

    def teardown(self, stage: str) -> None:
        self.vec_env.close()

    def on_exception(self, exception: BaseException) -> None:
        # Kill the env workers before Lightning re-raises: an interrupted run must not leave them running.
        self.vec_env.abort()

    @property
    def num_envs(self) -> int:
        return self.vec_env.num_envs

    @property
    def episode_length(self) -> int:
        return self.vec_env.max_epochs

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_OneItemPerEpoch(), batch_size=None, num_workers=0)

    def collect(
        self,
        policy: PolicyBundle,
        storage: RolloutStorage | None,
        episode: int,
        learner_hidden: Hidden | None = None,
        guide: PolicyBundle | None = None,
        forbidden_ops: frozenset[LifecycleOp] = frozenset(),
    ) -> dict[str, float]:
        """One episode in every env of this rank; returns the episode statistics of all envs of the run.
        (`learner_hidden`, `guide`, `forbidden_ops`: see `RolloutCollector.collect`.)"""
        normalizers = [self.obs_normalizer.stats]
        if self.reward_normalizer is not None:
            normalizers.append(self.reward_normalizer.return_stats)
        starts = [stats.state_dict() for stats in normalizers]
        stats = self.collector.collect(
            policy, storage, seed=self.seed, episode=episode, learner_hidden=learner_hidden, guide=guide,
            forbidden_ops=forbidden_ops,
        )
        per_rank = gather_from_ranks((stats, [normalizer.state_dict() for normalizer in normalizers]))
        if len(per_rank) > 1:
            for index, (normalizer, start) in enumerate(zip(normalizers, starts, strict=True)):
                merge_rank_statistics(normalizer, start, [ends[index] for _, ends in per_rank])
        stats = reduce_episode_stats([rank_stats for rank_stats, _ in per_rank])
        self.episodes_collected = episode + 1
        stats["env_steps"] = float(self.episodes_collected * self.num_envs * len(per_rank) * self.episode_length)
        return stats

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "episodes_collected": self.episodes_collected,
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "env": self.vec_env.state_dict(),
        }
        if self.reward_normalizer is not None:
            state["reward_normalizer"] = self.reward_normalizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes_collected = int(state["episodes_collected"])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.vec_env.load_state_dict(state["env"])
        if self.reward_normalizer is not None:
            self.reward_normalizer.load_state_dict(state["reward_normalizer"])
