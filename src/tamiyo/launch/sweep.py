"""Failure isolation for multirun sweeps.

A sweep job fails when it raises or when its monitored metric is not finite. Hydra's sweepers react
badly to both: the basic sweeper re-raises a job's exception after its batch (skipping the end-of-sweep
callbacks) and a `SystemExit` from a job aborts it on the spot; hydra-optuna-sweeper 1.3 crashes the
study on a NaN result (it tells Optuna FAIL *with* the NaN value) but records a raising job as a
FAILED trial and goes on. So `run_sweep_job` writes every failure to `error.txt` in the job's run dir
and then hands it back in the form the sweeper survives: NaN for the basic sweeper, an exception for
the others. `SweepSupport`, a Hydra callback, reads those files when the sweep ends and exits 1
with one line naming the failed jobs. The records are files because joblib, submitit and Ray run
jobs in other processes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

ERROR_FILE = "error.txt"
# Record times come from the file system, launcher times from this host's clock: allow for a little
# skew between them, far less than a sweep's duration.
_CLOCK_SKEW_S = 2.0

log = logging.getLogger("tamiyo")


# Sweepers that only check that no job raised; every other sweeper learns from the returned values.
_VALUE_BLIND_SWEEPERS = ("basic",)


class SweepJobFailed(RuntimeError):
    """A sweep job's failure, raised to a sweeper that records failed trials (one plain message, so it
    pickles back from a worker process whatever the original exception was)."""


class MetricNotFiniteError(RuntimeError):
    """The run finished but its monitored metric is NaN or infinite."""


def run_sweep_job(task: Callable[[DictConfig], float], cfg: DictConfig, metric: str) -> float:
    """Run one sweep job; record a failure in `error.txt` and hand it back as the sweeper needs."""
    hydra_cfg = HydraConfig.get()
    error_file = Path(hydra_cfg.runtime.output_dir) / ERROR_FILE
    error_file.unlink(missing_ok=True)  # a job rerun into the same dir must not report an old failure
    try:
        value = task(cfg)
        if not math.isfinite(value):
            raise MetricNotFiniteError(f"monitored metric {metric!r} is {value} (never logged, or the run diverged)")
    except Exception as error:  # noqa: BLE001 - isolating every failure is the point
        lines = str(error).strip().splitlines()
        summary = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
        overrides = list(hydra_cfg.overrides.task)
        # Header lines for SweepSupport, then the traceback for the person debugging the job.
        header = f"job: {hydra_cfg.job.num}\noverrides: {json.dumps(overrides)}\nerror: {summary}\n"
        error_file.write_text(header + "\n" + traceback.format_exc())
        log.error("job %s failed: %s (details in %s)", hydra_cfg.job.num, summary, error_file)
        if hydra_cfg.runtime.choices["hydra/sweeper"] in _VALUE_BLIND_SWEEPERS:
            return math.nan
        raise SweepJobFailed(f"job {hydra_cfg.job.num}: {summary}") from None
    # Which process ran the job and with how many intra-op threads: parallel launchers must give
    # each job its own process and torch_threads threads.
    log.info("job %s finished in pid %d with %d torch thread(s)", hydra_cfg.job.num, os.getpid(),
             torch.get_num_threads())
    return value


@dataclass(frozen=True)
class JobFailure:
    job: int
    overrides: list[str]
    error: str


def read_failure(path: Path) -> JobFailure:
    """Parse the header of an `error.txt` written by `run_sweep_job`."""
    fields = dict(line.split(": ", 1) for line in path.read_text().splitlines()[:3])
    return JobFailure(job=int(fields["job"]), overrides=json.loads(fields["overrides"]), error=fields["error"])


def failed_jobs(sweep_dir: Path, since: float) -> list[JobFailure]:
    """The failures recorded under `sweep_dir` at or after `since` (epoch seconds), by job number."""
    paths = [p for p in sweep_dir.rglob(ERROR_FILE) if p.stat().st_mtime >= since - _CLOCK_SKEW_S]
    return sorted((read_failure(p) for p in paths), key=lambda failure: failure.job)


def varying_overrides(job_overrides: list[str], sweep_overrides: list[str]) -> list[str]:
    """The job's overrides minus those every job of the sweep shares (compared as parsed values)."""
    parser = OverridesParser.create()

    def key_value(override: Override) -> tuple[str, str]:
        return override.get_key_element(), str(override.value())

    shared = {key_value(o) for o in parser.parse_overrides(sweep_overrides) if not o.is_sweep_override()}
    parsed = parser.parse_overrides(job_overrides)
    return [text for text, o in zip(job_overrides, parsed, strict=True) if key_value(o) not in shared]


def describe(failure: JobFailure, sweep_overrides: list[str]) -> str:
    varying = " ".join(varying_overrides(failure.overrides, sweep_overrides))
    return f"job {failure.job}" + (f" ({varying})" if varying else "") + f": {failure.error}"


class SweepSupport(Callback):
    """Hydra callback around a whole sweep, in the launching process.

    At the start it makes `${hydra:...}` interpolations resolvable there (paths.root_dir is
    `${hydra:runtime.cwd}`, and the sweep dir and the Optuna storage are built from it, but Hydra sets
    HydraConfig only inside each job) and creates the output root (the Optuna study file is opened in
    it before any job has run). At the end it exits 1 with one line naming the failed jobs.
    """

    def __init__(self) -> None:
        self._started = math.inf

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.time()
        HydraConfig.instance().set_config(config)
        Path(config.paths.output_root).mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failures = failed_jobs(sweep_dir, since=self._started)
        if failures:
            sweep_overrides = list(config.hydra.overrides.task)
            print(
                f"error: {len(failures)} sweep job(s) failed (error.txt in their run dirs under {sweep_dir}): "
                + "; ".join(describe(failure, sweep_overrides) for failure in failures),
                file=sys.stderr,
            )
            raise SystemExit(1)
        where = f"sweep dir: {sweep_dir} (one run dir per job, each with its checkpoints and metrics)"
        launcher_logs = config.hydra.launcher.get("submitit_folder")
        if launcher_logs:  # submitit keeps each job's stdout/stderr apart from its run dir
            where += f"; launcher logs: {launcher_logs}"
        print(where)
