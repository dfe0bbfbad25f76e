"""A batch of N seed-lifecycle environments stepped in lockstep, in this process or in worker processes.

Each env is a `SeedLifecycleEnv` (the Gymnasium environment). The N envs are split into `workers`
equal groups (`EnvGroup`); a group steps its envs one after another. With `workers=1` the single
group runs in this process; otherwise every group runs in its own process under Gymnasium's
`AsyncVectorEnv` (observations come back through shared memory, infos through a pipe). The worker
processes start at the first `reset` and stop at `close`.

Every env has its own RNG stream derived from (seed, env index, episode index), so env i's
trajectory is the same whatever N is, however the envs are grouped and whichever process runs them.
Env indices start at `first_env_index`, so several processes of one distributed run (each with its
own `VectorEnv`) run disjoint envs: rank r uses indices r·N … r·N + N − 1. Observations of all envs
are packed into one `ObservationBatch` per step.

Faults: an env that raises inside a worker, or a worker process that dies, stops the batch with one
`EnvWorkerError` line naming the env and the error; all worker processes are killed before it is
raised. Workers ignore SIGINT and SIGTERM: the training process decides when to stop and stops them.

Resume: `state_dict()` holds the base seed and the next episode index. Every episode re-derives all
its randomness from those, so restoring them between episodes reproduces the following episodes exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing.connection
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv
from gymnasium.vector.utils import batch_space

from tamiyo.core.actions import FactoredAction
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.slots import SlotConfig
from tamiyo.env.config import EnvConfig
from tamiyo.env.gym_env import SeedLifecycleEnv, observation_batch
from tamiyo.env.kinds import load_tasks
from tamiyo.env.tasks import Task, names_tasks

# Worker processes are started fresh: a forked copy of a process that already runs torch threads
# (or CUDA, or Lightning's process group) is not safe.
_START_METHOD = "spawn"
_DEATH_WAIT_S = 5.0


class EnvWorkerError(RuntimeError):
    """An env failed inside a worker process, or a worker process died."""


class EnvGroup(gymnasium.Env):
    """Several `SeedLifecycleEnv`s behind one Gymnasium interface: stacked observations `[k, ...]`,
    actions `[k, 8]`; per-env rewards and infos are in `info["envs"]` (the scalar reward is unused).

    In a worker (`catch_failures=True`) an env's exception does not escape: it is reported as
    `info["failure"]` (one line naming the env), so the training process can stop cleanly."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self, task: Task | tuple[Task, ...], config: EnvConfig, env_indices: Sequence[int],
        device: str | torch.device = "cpu", catch_failures: bool = False,
    ) -> None:
        self.envs = [
            SeedLifecycleEnv(task, config=config, env_index=index, device=device, timings=True)
            for index in env_indices
        ]
        self.catch_failures = catch_failures
        self.observation_space = batch_space(self.envs[0].observation_space, len(self.envs))
        self.action_space = batch_space(self.envs[0].action_space, len(self.envs))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """`options` = {"seed": base seed, "episode": episode index}, the same for every env."""
        options = dict(options or {})
        base_seed, episode = options.pop("seed"), options.pop("episode")
        return self._guarded(
            lambda env, _: env.reset(seed=base_seed, options={"episode": episode}), [None] * len(self.envs)
        )

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, info = self._guarded(_step_info, list(np.asarray(action)))
        done = info["failure"] is None and all(i["done"] for i in info["envs"])
        return obs, 0.0, done, False, info

    def _guarded(self, call: Any, actions: list[Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observations, infos = [], []
        for env, action in zip(self.envs, actions, strict=True):
            try:
                obs, info = call(env, action)
            except Exception as error:  # reported to the training process, which stops the run
                if not self.catch_failures:
                    raise
                failure = f"env {env.env_index} failed: {type(error).__name__}: {error}"
                blank = {key: np.zeros(space.shape, space.dtype) for key, space in self.observation_space.items()}
                return blank, {"envs": [], "failure": failure}
            observations.append(obs)
            infos.append(info)
        stacked = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
        return stacked, {"envs": infos, "failure": None}


def _step_info(env: SeedLifecycleEnv, action: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    obs, _, terminated, truncated, info = env.step(action)  # the reward is also info["reward"]
    return obs, {**info, "done": terminated or truncated}


def _worker_group(
    task: Task | tuple[Task, ...], config: EnvConfig, env_indices: Sequence[int], torch_threads: int,
    owner_pid: int,
) -> EnvGroup:
    """The group's envs in a worker process, with the run's intra-op thread count.

    `AsyncVectorEnv` also calls this once in the owning process (to read the spaces); only a worker
    process changes its signal handling and thread count."""
    if os.getpid() != owner_pid:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        torch.set_num_threads(torch_threads)
    return EnvGroup(task, config, env_indices, "cpu", catch_failures=True)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_workers(requested: int | str, num_envs: int, torch_threads: int, concurrent_processes: int = 1) -> int:
    """The env worker processes of one training process.

    `auto`: the cores left to this process (usable cores ÷ processes that run at once on this machine,
    i.e. parallel sweep jobs × local DDP ranks) ÷ `torch_threads`, at least 1 and at most `num_envs`,
    lowered to a divisor of `num_envs` (the envs are split into equal groups). A number is taken as is."""
    if requested != "auto":
        return int(requested)
    budget = max(1, usable_cores() // (max(1, concurrent_processes) * int(torch_threads)))
    return max(w for w in range(1, min(budget, num_envs) + 1) if num_envs % w == 0)


class VectorEnv:
    def __init__(
        self,
        task: Task | tuple[Task, ...] | str | Sequence[str],
        num_envs: int,
        config: EnvConfig | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        task_options: Mapping[str, Any] | None = None,
        first_env_index: int = 0,
        workers: int = 1,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer ≥ 1, got {num_envs!r}")
        if first_env_index < 0:
            raise ValueError(f"first_env_index must be ≥ 0, got {first_env_index}")
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1 or num_envs % workers:
            raise ValueError(f"workers must be an integer ≥ 1 that divides num_envs ({num_envs}), got {workers!r}")
        self.config = config if config is not None else EnvConfig()
        if names_tasks(task):
            task = load_tasks(task, task_options, self.config.kinds)
        elif task_options:
            raise ValueError("task_options only apply when the task is given by name")
        self.device = torch.device(device)
        if workers > 1 and self.device.type != "cpu":
            raise ValueError(f"env workers run on the CPU; with device {self.device} use workers=1")
        self.task = _task_on(task, self.device)  # one copy on the device, shared by all in-process envs
        self.first_env_index = first_env_index
        self._num_envs = num_envs
        self.workers = workers
        self.torch_threads = torch.get_num_threads()
        self.seed = seed
        self.next_episode = 0
        self._local: EnvGroup | None = None
        self._pool: AsyncVectorEnv | None = None
        self._done = False
        self._slot_config: SlotConfig | None = None

    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def env_indices(self) -> list[int]:
        return list(range(self.first_env_index, self.first_env_index + self._num_envs))

    @property
    def topology(self) -> str:
        return self.tasks[0].topology

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The tasks this env's episodes draw from (one for a single-task env)."""
        return self.task if isinstance(self.task, tuple) else (self.task,)

    @property
    def max_epochs(self) -> int:
        return self.config.max_epochs

    @property
    def slot_config(self) -> SlotConfig:
        if self._slot_config is None:
            self._slot_config = SeedLifecycleEnv(self.task, config=self.config).slot_config
        return self._slot_config

    @property
    def done(self) -> bool:
        return self._done

    def _groups(self) -> list[list[int]]:
        size = self._num_envs // self.workers
        indices = self.env_indices
        return [indices[i : i + size] for i in range(0, self._num_envs, size)]

    def _start(self) -> None:
        if self._local is not None or self._pool is not None:
            return
        if self.workers == 1:
            self._local = EnvGroup(self.task, self.config, self.env_indices, self.device)
            return
        makers = [
            functools.partial(_worker_group, self.task, self.config, group, self.torch_threads, os.getpid())
            for group in self._groups()
        ]
        self._pool = AsyncVectorEnv(
            makers, shared_memory=True, context=_START_METHOD, daemon=True, autoreset_mode="Disabled"
        )

    def reset(self, seed: int | None = None, episode_index: int | None = None) -> ObservationBatch:
        """Start an episode in every env (episode `episode_index`, default the next one) and observe epoch 0."""
        if seed is not None:
            if seed < 0:
                raise ValueError(f"seed must be ≥ 0, got {seed}")
            self.seed = seed
        episode = self.next_episode if episode_index is None else episode_index
        if episode < 0:
            raise ValueError(f"episode_index must be ≥ 0, got {episode}")
        self._start()
        options = {"seed": self.seed, "episode": episode}
        if self._local is not None:
            obs, _ = self._local.reset(options=options)
        else:
            obs, infos = self._call_pool(lambda pool: pool.reset(options=options))
            self._raise_failures(infos)
            obs = _merge_groups(obs)
        self.next_episode = episode + 1
        self._done = False
        return observation_batch(obs, self.device)

    def step(
        self, actions: Sequence[FactoredAction]
    ) -> tuple[ObservationBatch, torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        """One epoch in every env: observations, rewards `[N]` float32, dones `[N]` bool, per-env infos."""
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions (one per env), got {len(actions)}")
        if self._local is None and self._pool is None:
            raise RuntimeError("the environments have not been reset; call reset() first")
        if self._done:
            raise RuntimeError(f"the episode ended after {self.max_epochs} epochs; call reset() for a new one")
        rows = np.array([a.to_indices() for a in actions], dtype=np.int64)
        if self._local is not None:
            obs, _, _, _, info = self._local.step(rows)
            infos = info["envs"]
        else:
            obs, _, _, _, group_infos = self._call_pool(
                lambda pool: pool.step(rows.reshape(self.workers, -1, rows.shape[1]))
            )
            self._raise_failures(group_infos)
            obs = _merge_groups(obs)
            infos = [info for group in group_infos["envs"] for info in group]
        rewards = torch.tensor([i["reward"] for i in infos], dtype=torch.float32, device=self.device)
        dones = torch.tensor([i.pop("done") for i in infos], dtype=torch.bool, device=self.device)
        self._done = bool(dones.all())
        for info in infos:
            info.pop("action_mask")
        return observation_batch(obs, self.device), rewards, dones, infos

    def _call_pool(self, call: Any) -> Any:
        assert self._pool is not None
        try:
            return call(self._pool)
        except (EOFError, BrokenPipeError, ConnectionResetError) as error:
            # The pipe reports the loss while the process may still be exiting: wait for it to end.
            processes = self._pool.processes
            ended = multiprocessing.connection.wait([p.sentinel for p in processes], timeout=_DEATH_WAIT_S)
            for process in processes:
                if process.sentinel in ended:
                    process.join()
            dead = [(index, p.exitcode) for index, p in enumerate(processes) if p.exitcode is not None]
            groups = self._groups()
            what = "; ".join(
                f"{_envs_label(groups[index])} lost: the worker process died (exit code {code})" for index, code in dead
            ) or f"an env worker pipe failed: {type(error).__name__}"
            self.abort()
            raise EnvWorkerError(what) from None

    def _raise_failures(self, infos: Mapping[str, Any]) -> None:
        failures = [failure for failure in infos["failure"] if failure is not None]
        if failures:
            self.abort()
            raise EnvWorkerError(failures[0])

    def abort(self) -> None:
        """Stop every worker now (after a failure): nothing is left running and nothing waits on them."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in pool.processes:
            if process.is_alive():
                process.kill()
        for process in pool.processes:
            process.join()
        for pipe in pool.parent_pipes:
            if pipe is not None:
                pipe.close()
        pool.closed = True  # the workers are gone: nothing is left for AsyncVectorEnv.close to do

    def close(self) -> None:
        """Stop the worker processes (if any); the next `reset` starts them again."""
        self._local = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    def __getstate__(self) -> dict[str, Any]:
        # A copy sent to another process (e.g. a spawned DDP rank) starts its own workers there.
        return {**self.__dict__, "_local": None, "_pool": None}

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


def _envs_label(indices: Sequence[int]) -> str:
    return f"env {indices[0]}" if len(indices) == 1 else f"envs {indices[0]}–{indices[-1]}"


def _merge_groups(obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`[workers, k, ...]` → `[workers · k, ...]` for every observation key."""
    return {key: value.reshape(-1, *value.shape[2:]) for key, value in obs.items()}


def _task_on(task: Task | tuple[Task, ...], device: torch.device) -> Task | tuple[Task, ...]:
    if isinstance(task, tuple):
        return tuple(_task_on(one, device) for one in task)
    if task.train_x.device == device:
        return task
    moved = {name: getattr(task, name).to(device) for name in ("train_x", "train_y", "val_x", "val_y")}
    return dataclasses.replace(task, **moved)
