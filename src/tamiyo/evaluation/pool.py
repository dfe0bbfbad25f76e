"""Evaluation episodes run side by side: jobs of (controller, seed) spread over worker processes.

An episode's randomness derives from (seed, env index, episode index) and a sampling controller reseeds
its action RNG per episode, so a job's results do not depend on which process runs it or when: the
results come back in the order of the jobs, the same numbers a sequential run gives. Each worker runs
one torch thread and builds its env once; the jobs of a comparison (schedule grid, baselines, learned
checkpoint, static-final controls) are independent, so they scale with the cores: this machine's worker processes
(`processes`), or Ray actors (`ray`) on the cluster `RAY_ADDRESS` names, else on a Ray started here for the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tamiyo.core.atomic_io import atomic_write_text
from tamiyo.core.values import is_int
from tamiyo.env.config import EnvConfig, build_env_config
from tamiyo.env.kinds import load_tasks
from tamiyo.env.objective import Objective
from tamiyo.env.tasks import Task
from tamiyo.env.vector import VectorEnv, usable_cores
from tamiyo.evaluation.lifecycle import LifecycleTrace
from tamiyo.evaluation.runner import (
    EpisodeResult,
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
    objective: Objective

    def env_config(self, fossils: dict[str, str] | None = None, max_epochs: int | None = None) -> EnvConfig:
        config = build_env_config(self.env, self.reward, self.gamma, autocast_dtype=None)
        config = config if fossils is None else dataclasses.replace(config, fossils=fossils)
        return config if max_epochs is None else dataclasses.replace(config, max_epochs=max_epochs)

    def tasks(self) -> Task | tuple[Task, ...]:
        return load_tasks(self.env["task"], self.env.get("task_options"), self.env.get("kinds"))


@dataclass(frozen=True)
class EpisodeJob:
    """`episodes` episodes of one controller on one seed (from episode index `first_episode`).

    `policy` is a fixed controller's registry name with its `options`, or `LEARNED` with options
    `{ckpt, deterministic}`; `label` names it in the tables. `fossils` (slot → fossil spec, possibly none) makes
    the job a static-final control: the host with those seeds planted from epoch 0, replaying env `env_index`,
    for `max_epochs` epochs when given (a control at the grown episode's training compute)."""

    label: str
    policy: str
    options: dict[str, Any]
    seed: int
    episodes: int = 1
    first_episode: int = 0
    fossils: dict[str, str] | None = None
    env_index: int = 0
    max_epochs: int | None = None  # a control's own episode length (None: the env's)


class EpisodeRunner:
    """Runs jobs in this process; keeps the task data, the env and loaded checkpoints between jobs.
    `env_workers` splits the env's `num_envs` envs over that many processes of its own."""

    def __init__(self, spec: EnvSpec, env_workers: int = 1) -> None:
        self.spec = spec
        self.objective = spec.objective
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
        # A control replays one grown episode: its env index selects the episode's RNG stream.
        if job.fossils is not None:
            config = self.spec.env_config(job.fossils, job.max_epochs)
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


class RayEpisodeRunner:
    """An `EpisodeRunner` in a Ray actor (one torch thread per CPU it reserves)."""

    def __init__(self, spec: EnvSpec, torch_threads: int) -> None:
        torch.set_num_threads(torch_threads)
        self.runner = EpisodeRunner(spec)

    def run(self, index: int, job: EpisodeJob) -> tuple[int, Evaluation]:
        return index, self.runner.run(job)


EPISODE_POOLS = ("processes", "ray")


@dataclass(frozen=True)
class EpisodePool:
    """Where a comparison's episode jobs run (`episode_pool`, `episode_workers`): in `workers` processes of this
    machine or Ray actors (`kind`); `auto` is one per usable core (or per core of the Ray cluster) ÷ torch threads."""

    workers: int | str = 1
    kind: str = "processes"

    def __post_init__(self) -> None:
        if self.kind not in EPISODE_POOLS:
            raise ValueError(f"episode_pool must be one of {', '.join(EPISODE_POOLS)}, got {self.kind!r}")
        if self.kind == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError("episode_pool=ray needs Ray: pip install -e '.[ray]'")
        if self.workers != "auto" and not (is_int(self.workers) and self.workers >= 1):
            raise ValueError(f"episode_workers must be 'auto' or an integer ≥ 1, got {self.workers!r}")

    def size(self, torch_threads: int, jobs: int, cores: int | None = None) -> int:
        """The number of workers for `jobs` jobs: `auto` at most one per job."""
        if self.workers == "auto":
            return max(1, min(jobs, (cores or usable_cores()) // max(1, torch_threads)))
        return int(self.workers)


class JobCache:
    """Finished jobs kept as JSON files in `directory`, so that a long comparison killed or timed out part-way
    continues where it stopped when the same command runs again. A job's file is named by a hash of the env
    spec and the job (a checkpoint's size and modification time included), not of tamiyo's code: keep one
    directory per commit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"episode_cache {directory} cannot be created: {error.strerror}") from error

    def _path(self, spec: EnvSpec, job: EpisodeJob) -> Path:
        key: dict[str, Any] = {"spec": dataclasses.asdict(spec), "job": dataclasses.asdict(job)}
        if job.policy == LEARNED:
            stat = Path(job.options["ckpt"]).stat()
            key["ckpt"] = [stat.st_size, stat.st_mtime_ns]
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
        return self.directory / f"{digest}.json"

    def load(self, spec: EnvSpec, job: EpisodeJob) -> Evaluation | None:
        path = self._path(spec, job)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        results = [EpisodeResult(**row) for row in data["results"]]
        return Evaluation(results, LifecycleTrace.from_json(data["lifecycle"]))

    def store(self, spec: EnvSpec, job: EpisodeJob, evaluation: Evaluation) -> None:
        data = {"results": [dataclasses.asdict(r) for r in evaluation.results],
                "lifecycle": evaluation.lifecycle.to_json()}
        atomic_write_text(self._path(spec, job), json.dumps(data) + "\n")


def run_jobs(
    spec: EnvSpec,
    jobs: Sequence[EpisodeJob],
    pool: EpisodePool,
    torch_threads: int = 1,
    env_workers: int = 1,
    on_episode: Callable[[], None] | None = None,
    cache: JobCache | None = None,
) -> list[Evaluation]:
    """Every job's evaluation, in the order of `jobs`; a `pool` of more than one worker runs them in that many
    processes of this machine or Ray actors, each with one env process: the cores go to the jobs. `on_episode()` is
    called once per finished episode (progress). With a `cache`, jobs found there are not run again and every
    finished job is kept."""

    def finish(index: int, evaluation: Evaluation) -> None:
        evaluations[index] = evaluation
        if cache is not None and index not in cached:
            cache.store(spec, jobs[index], evaluation)
        for _ in range(jobs[index].episodes if on_episode is not None else 0):
            on_episode()

    evaluations: list[Evaluation | None] = [None] * len(jobs)
    cached: set[int] = set()
    for index, job in enumerate(jobs):
        found = cache.load(spec, job) if cache is not None else None
        if found is not None:
            cached.add(index)
            finish(index, found)
    pending = [index for index in range(len(jobs)) if index not in cached]
    if pool.kind == "ray" and pending:
        _run_on_ray(spec, [(index, jobs[index]) for index in pending], pool, torch_threads, finish)
        return [e for e in evaluations if e is not None]
    workers = pool.size(torch_threads, len(jobs))
    if workers == 1 or len(pending) <= 1:
        runner = EpisodeRunner(spec, env_workers)
        try:
            for index in pending:
                finish(index, runner.run(jobs[index]))
        finally:
            runner.close()
        return [e for e in evaluations if e is not None]
    context = multiprocessing.get_context("spawn")  # no forked torch state (threads, RNG) in the workers
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(spec, torch_threads)) as executor:
        futures = {executor.submit(_run_in_worker, jobs[index]): index for index in pending}
        try:
            for future in as_completed(futures):
                finish(futures[future], future.result())
        except BrokenProcessPool as error:
            for future in futures:
                future.cancel()
            raise RuntimeError(f"an episode worker process died ({error}); no results were written") from error
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [e for e in evaluations if e is not None]


def _run_on_ray(spec: EnvSpec, jobs: list[tuple[int, EpisodeJob]], pool: EpisodePool, torch_threads: int,
                finish: Callable[[int, Evaluation], None]) -> None:
    """The jobs on Ray actors, each holding a runner (its env and task data) for all the jobs it is given."""
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        cores = int(ray.cluster_resources().get("CPU", 1))
        actors = [ray.remote(num_cpus=torch_threads)(RayEpisodeRunner).remote(spec, torch_threads)
                  for _ in range(pool.size(torch_threads, len(jobs), cores))]
        actor_pool = ActorPool(actors)
        for index, job in jobs:
            actor_pool.submit(lambda actor, item: actor.run.remote(*item), (index, job))
        while actor_pool.has_next():
            try:
                index, evaluation = actor_pool.get_next_unordered()
            except ray.exceptions.RayError as error:
                raise RuntimeError(f"a Ray episode worker failed ({type(error).__name__}); no results were "
                                   "written") from error
            finish(index, evaluation)
    finally:
        if started_here:
            ray.shutdown()


def merged_lifecycle(evaluations: Sequence[Evaluation]) -> LifecycleTrace:
    """One trace holding the recorded episodes of several evaluations of the same env, in their order."""
    return LifecycleTrace(slot_ids=evaluations[0].lifecycle.slot_ids,
                          episodes=[e for evaluation in evaluations for e in evaluation.lifecycle.episodes])
