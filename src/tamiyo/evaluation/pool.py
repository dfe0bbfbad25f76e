"""Evaluation episodes run side by side: jobs of (controller, seed) spread over worker processes.

An episode's randomness derives from (seed, env index, episode index) and a sampling controller reseeds
its action RNG per episode, so a job's results do not depend on which process runs it or when: the
results come back in the order of the jobs, the same numbers a sequential run gives. Each worker runs
one torch thread and builds its env once; the jobs of a comparison (schedule grid, baselines, learned
checkpoint, static-final controls) are independent, so they scale with the cores.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tamiyo.env.config import build_env_config
from tamiyo.env.objective import Objective
from tamiyo.env.seed_env import EnvConfig
from tamiyo.env.tasks import Task, make_tasks
from tamiyo.env.vector import VectorEnv, usable_cores
from tamiyo.evaluation.lifecycle import LifecycleTrace
from tamiyo.evaluation.runner import (
    EvalPolicy,
    Evaluation,
    baseline_policy,
    evaluate,
    load_checkpoint_policy,
)
from tamiyo.policy.features import obs_dim

# The `policy` of a job that plays a training checkpoint (its `options` hold `ckpt` and `deterministic`).
LEARNED = "learned"


@dataclass(frozen=True)
class EnvSpec:
    """Everything a worker needs to build the comparison's env: the resolved `env` and `reward` groups,
    PPO's discount (shaped rewards use it), the observation clip of fixed controllers and the objective."""

    env: dict[str, Any]
    reward: dict[str, Any]
    gamma: float
    obs_clip: float
    param_weight: float

    def env_config(self, fossils: dict[str, str] | None = None) -> EnvConfig:
        config = build_env_config(self.env, self.reward, self.gamma, autocast_dtype=None)
        return config if fossils is None else dataclasses.replace(config, fossils=fossils)

    def tasks(self) -> Task | tuple[Task, ...]:
        return make_tasks(self.env["task"], **dict(self.env.get("task_options") or {}))


@dataclass(frozen=True)
class EpisodeJob:
    """`episodes` episodes of one controller on one seed (from episode index `first_episode`).

    `policy` is a fixed controller's registry name with its `options`, or `LEARNED` with options
    `{ckpt, deterministic}`; `label` names it in the tables. `fossils` (slot → fossil spec, possibly none) makes
    the job a static-final control: the host with those seeds planted from epoch 0, replaying env `env_index`."""

    label: str
    policy: str
    options: dict[str, Any]
    seed: int
    episodes: int = 1
    first_episode: int = 0
    fossils: dict[str, str] | None = None
    env_index: int = 0


class EpisodeRunner:
    """Runs jobs in this process; keeps the task data, the env and loaded checkpoints between jobs.
    `env_workers` splits the env's `num_envs` envs over that many processes of its own."""

    def __init__(self, spec: EnvSpec, env_workers: int = 1) -> None:
        self.spec = spec
        self.objective = Objective(spec.param_weight)
        self._tasks = spec.tasks()
        self._env_workers = env_workers
        self._env: VectorEnv | None = None
        self._learned: dict[tuple[str, bool], EvalPolicy] = {}

    def _policy(self, job: EpisodeJob, env: VectorEnv) -> EvalPolicy:
        if job.policy == LEARNED:
            key = (str(job.options["ckpt"]), bool(job.options["deterministic"]))
            if key not in self._learned:
                self._learned[key] = load_checkpoint_policy(Path(key[0]), deterministic=key[1])
            policy = self._learned[key]
        else:
            policy = baseline_policy(job.policy, dict(job.options), env, obs_dim(env.slot_config.num_slots),
                                     self.spec.obs_clip)
        return dataclasses.replace(policy, label=job.label)

    def _evaluate(self, job: EpisodeJob, env: VectorEnv) -> Evaluation:
        return evaluate(self._policy(job, env), env, [job.seed], job.episodes, self.objective,
                        first_episode=job.first_episode)

    def run(self, job: EpisodeJob) -> Evaluation:
        if job.fossils is not None:  # a control replays one grown episode: its env index selects the episode's RNG stream
            config = self.spec.env_config(job.fossils)
            with closing(VectorEnv(self._tasks, num_envs=1, config=config, first_env_index=job.env_index)) as env:
                evaluation = self._evaluate(job, env)
            return Evaluation([dataclasses.replace(r, env=job.env_index) for r in evaluation.results],
                              evaluation.lifecycle)
        if self._env is None:
            self._env = VectorEnv(self._tasks, num_envs=int(self.spec.env["num_envs"]), config=self.spec.env_config(),
                                  workers=self._env_workers)
        return self._evaluate(job, self._env)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


_worker_runner: EpisodeRunner | None = None


def _start_worker(spec: EnvSpec, torch_threads: int) -> None:
    global _worker_runner
    torch.set_num_threads(torch_threads)
    _worker_runner = EpisodeRunner(spec)


def _run_in_worker(job: EpisodeJob) -> Evaluation:
    assert _worker_runner is not None, "the worker was not started"
    return _worker_runner.run(job)


def resolve_episode_workers(requested: int | str, torch_threads: int, jobs: int) -> int:
    """`auto`: usable cores ÷ `torch_threads`, at most one per job; a number ≥ 1 is taken as is."""
    if requested == "auto":
        return max(1, min(jobs, usable_cores() // max(1, torch_threads)))
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"episode_workers must be 'auto' or an integer ≥ 1, got {requested!r}")
    return requested


def run_jobs(
    spec: EnvSpec,
    jobs: Sequence[EpisodeJob],
    workers: int,
    torch_threads: int = 1,
    env_workers: int = 1,
    on_episode: Callable[[], None] | None = None,
) -> list[Evaluation]:
    """Every job's evaluation, in the order of `jobs`; `workers` > 1 runs them in that many processes
    (each with one env process: the cores go to the jobs). `on_episode()` is called once per finished
    episode (progress)."""

    def advance(job: EpisodeJob) -> None:
        for _ in range(job.episodes if on_episode is not None else 0):
            on_episode()

    if workers == 1 or len(jobs) <= 1:
        runner = EpisodeRunner(spec, env_workers)
        try:
            evaluations = []
            for job in jobs:
                evaluations.append(runner.run(job))
                advance(job)
            return evaluations
        finally:
            runner.close()
    context = multiprocessing.get_context("spawn")  # no forked torch state (threads, RNG) in the workers
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(spec, torch_threads)) as pool:
        futures = {pool.submit(_run_in_worker, job): index for index, job in enumerate(jobs)}
        evaluations: list[Evaluation | None] = [None] * len(jobs)
        try:
            for future in as_completed(futures):
                index = futures[future]
                evaluations[index] = future.result()
                advance(jobs[index])
        except BrokenProcessPool as error:
            for future in futures:
                future.cancel()
            raise RuntimeError(f"an episode worker process died ({error}); no results were written") from error
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [e for e in evaluations if e is not None]


def merged_lifecycle(evaluations: Sequence[Evaluation]) -> LifecycleTrace:
    """One trace holding the recorded episodes of several evaluations of the same env, in their order."""
    return LifecycleTrace(slot_ids=evaluations[0].lifecycle.slot_ids,
                          episodes=[e for evaluation in evaluations for e in evaluation.lifecycle.episodes])
