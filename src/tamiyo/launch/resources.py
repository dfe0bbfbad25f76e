"""OmegaConf resolvers that size launcher resources from the run config.

The launcher configs (conf/hydra/launcher/*.yaml) use them so that a sweep asks a cluster for what
each job will actually use: `torch_threads` CPUs per task, one task per Lightning device, GPUs only
when the trainer runs on GPUs.
"""

from __future__ import annotations

import joblib
from omegaconf import OmegaConf

from tamiyo.core.errors import ConfigError
from tamiyo.env.vector import resolve_workers

GPU_ACCELERATORS = ("gpu", "cuda")


def parallel_jobs(torch_threads: int, workers: int | str = 1) -> int:
    """How many jobs fit on this machine at once when each uses `torch_threads` cores per env worker
    (`workers=auto` counts as 1: inside a job, auto then sizes itself to the cores left to it)."""
    per_job = int(torch_threads) * (1 if workers == "auto" else int(workers))
    return max(1, joblib.cpu_count() // per_job)


def job_cpus(torch_threads: int, workers: int | str, num_envs: int) -> int:
    """CPUs one sweep job uses: `torch_threads` per env worker process (what a Ray job asks for)."""
    return int(torch_threads) * resolve_workers(workers, int(num_envs), int(torch_threads))


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
