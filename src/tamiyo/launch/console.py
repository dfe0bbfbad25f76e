"""What the console shows: our progress and summary, user errors as one line, no framework chatter."""

from __future__ import annotations

import logging
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

from tamiyo.core.errors import ConfigError, FileWriteError
from tamiyo.env.vector import EnvWorkerError
from tamiyo.evaluation.runner import CheckpointContentError
from tamiyo.training.checkpoints import CheckpointError, CheckpointMismatchError
from tamiyo.training.module import PolicyLossNaNError

# Errors caused by what the user asked for or by where the run writes: one line, without a traceback.
USER_ERRORS = (
    ConfigError, CheckpointError, CheckpointMismatchError, CheckpointContentError, PolicyLossNaNError,
    FileNotFoundError, FileWriteError,
)

# Lightning's start-up lines (accelerator/GPU/TPU availability, tips) say nothing about a tamiyo run.
_QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                  "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed")
_QUIET_WARNINGS = (
    r".*configure_optimizers.* returned `None`",  # baselines have nothing to optimise, by design
    r".*LeafSpec.*",  # a deprecation inside torch's pytree that Lightning triggers
    r".*litlogger.*",
)


def configure_console() -> None:
    """Keep Lightning's chatter off the console (the Hydra job log keeps WARNING and above)."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


@contextmanager
def report_user_errors(paths: DictConfig | None = None) -> Iterator[None]:
    """Turn a user error into `error: <message>` on stderr and exit status 2 (an env worker failure: status 1).
    A refused command leaves no debris: its run dir (`paths.output_dir`), when it holds only Hydra's records of the
    command, is removed, and so are the dirs above it up to `paths.output_root` that this leaves empty."""
    try:
        yield
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        if paths is not None:
            _remove_if_only_records(Path(paths.output_dir), Path(paths.output_root))
        raise SystemExit(2) from None
    except EnvWorkerError as error:  # the workers are already stopped; the traceback would add nothing
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def _remove_if_only_records(run_dir: Path, output_root: Path) -> None:
    """Remove `run_dir` if all it holds is Hydra's `.hydra/` and job logs, then its parents emptied by that."""
    if not run_dir.is_dir() or any(e.name != ".hydra" and e.suffix != ".log" for e in run_dir.iterdir()):
        return
    shutil.rmtree(run_dir)
    if output_root.resolve() not in run_dir.resolve().parents:
        return
    for parent in run_dir.resolve().parents:
        if any(parent.iterdir()):
            break
        parent.rmdir()
        if parent == output_root.resolve():
            break
