"""OmegaConf resolvers that size launcher resources from the run config.

The launcher configs (conf/hydra/launcher/*.yaml) use them so that a sweep asks a cluster for what
each job will actually use: `torch_threads` CPUs per task, one task per Lightning device, GPUs only
when the trainer runs on GPUs.
"""

from __future__ import annotations

import os

import joblib
from omegaconf import OmegaConf

from tamiyo.core.errors import ConfigError

GPU_ACCELERATORS = ("gpu", "cuda")


def parallel_jobs(torch_threads: int, workers: int | str = 1) -> int:
    """How many jobs fit on this machine at once when each uses `torch_threads` cores per env worker
    (`workers=auto` counts as 1: inside a job, auto then sizes itself to the cores left to it)."""
    per_job = int(torch_threads) * (1 if workers == "auto" else int(workers))
    return max(1, joblib.cpu_count() // per_job)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else joblib.cpu_count()


def env_workers(requested: int | str, num_envs: int, torch_threads: int, concurrent_processes: int = 1) -> int:
    """The env worker processes of one training process.

    `auto`: the cores left to this process (usable cores ÷ processes that run at once on this machine,
    i.e. parallel sweep jobs × local DDP ranks) ÷ `torch_threads`, at least 1 and at most `num_envs`,
    lowered to a divisor of `num_envs` (the envs are split into equal groups). A number is taken as is."""
    if requested != "auto":
        return int(requested)
    budget = max(1, usable_cores() // (max(1, concurrent_processes) * int(torch_threads)))
    return max(w for w in range(1, min(budget, num_envs) + 1) if num_envs % w == 0)


def job_cpus(torch_threads: int, workers: int | str, num_envs: int) -> int:
    """CPUs one sweep job uses: `torch_threads` per env worker process (what a Ray job asks for)."""
    return int(torch_threads) * env_workers(workers, int(num_envs), int(torch_threads))


def tasks_per_node(devices: object) -> int:
    """One launcher task per Lightning device (Lightning reads the rank from the cluster's task id)."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"trainer.devices must be an integer ≥ 1 for a cluster launcher, got {devices!r}")
    return devices


def gpus_per_node(accelerator: str, devices: object) -> int | None:
    """trainer.devices GPUs on a GPU trainer; None (request none) otherwise."""
    return tasks_per_node(devices) if accelerator in GPU_ACCELERATORS else None


def register_resolvers() -> None:
    """Make the `${tamiyo.<name>:...}` resolvers of this module available."""
    OmegaConf.register_new_resolver("tamiyo.parallel_jobs", parallel_jobs, replace=True)
    OmegaConf.register_new_resolver("tamiyo.job_cpus", job_cpus, replace=True)
    OmegaConf.register_new_resolver("tamiyo.tasks_per_node", tasks_per_node, replace=True)
    OmegaConf.register_new_resolver("tamiyo.gpus_per_node", gpus_per_node, replace=True)
