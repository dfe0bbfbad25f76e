"""Checkpoint files of a training run: atomic writes, the `last.ckpt` writer, one safe loader that
explains in one line what is wrong with a file, finding the newest run's checkpoint, and the checks that a
checkpoint fits the run that resumes, warm-starts from or evaluates it."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tamiyo.core.atomic_io import atomic_write_bytes
from tamiyo.core.errors import ConfigError
from tamiyo.policy.protocol import PolicyBundle

# What every tamiyo training checkpoint holds (evaluation rebuilds the controller from these).
_HPARAMS = ("policy", "ppo", "slot_ids", "topology", "obs_dim")
# Top-level key of the run's own (unresolved) config, which a resume restores.
RUN_CONFIG_KEY = "tamiyo_run_config"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, empty, corrupt, truncated or not a tamiyo checkpoint."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A tamiyo training checkpoint (see `read_checkpoint`); raises `CheckpointError` naming the file
    when it is not one."""
    path = Path(path)
    checkpoint = read_checkpoint(path, map_location)
    if not isinstance(checkpoint, dict):
        kind = type(checkpoint).__name__
        raise CheckpointError(f"checkpoint {path} is not a tamiyo training checkpoint: it holds a {kind}")
    hparams = checkpoint.get("hyper_parameters")
    missing = [key for key in _HPARAMS if not isinstance(hparams, dict) or key not in hparams]
    if missing or "state_dict" not in checkpoint:
        lacks = f"hyper_parameters lack {missing}" if missing else "it has no state_dict"
        raise CheckpointError(f"checkpoint {path} is not a tamiyo training checkpoint: {lacks}")
    if "obs_normalizer" not in (checkpoint.get("RolloutDataModule") or {}):
        raise CheckpointError(
            f"checkpoint {path} is not a tamiyo training checkpoint: it holds no observation normaliser state"
        )
    return checkpoint


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> Any:
    """Whatever a checkpoint file holds, loaded with `torch.load(weights_only=True)`.

    Raises `CheckpointError` naming the file and what is wrong with it. Files holding anything but
    tensors and plain containers are refused outright: unpickling them could run arbitrary code."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    with path.open("rb") as handle:
        is_torch_zip = handle.read(4) == _ZIP_MAGIC  # torch.save writes a zip archive
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on a plain pickle's protocol
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if not is_torch_zip:
            raise CheckpointError(
                f"checkpoint {path} is not a PyTorch checkpoint (corrupt, or a file of another kind)"
            ) from None
        if "weights_only" in str(error) or "Weights only load failed" in str(error):
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain containers (not loaded: "
                "unpickling them could run code); it was not written by tamiyo"
            ) from None
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({_first_sentence(error)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({_first_sentence(error)})") from None


def _first_sentence(error: BaseException) -> str:
    text = str(error).strip().split(". ")[0].splitlines()
    return text[0].rstrip(".") if text else type(error).__name__


class AtomicCheckpointIO(TorchCheckpointIO):
    """Every checkpoint the trainer writes (last and best) is serialised in memory and then replaced
    atomically in its own directory; loading goes through `read_checkpoint` (a resume's checkpoint has
    been checked with `load_checkpoint` before the trainer starts)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        # Leftovers of writes killed midway, also of best checkpoints whose names have moved on since.
        for stale in path.parent.glob(".*.ckpt.*.tmp"):
            stale.unlink(missing_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        # Always the safe loader; tensors land on the CPU unless asked otherwise (Lightning moves them).
        return read_checkpoint(path, map_location="cpu" if map_location is None else map_location)


def run_dir_of(checkpoint_path: Path) -> Path | None:
    """The run dir a checkpoint belongs to (`<run dir>/checkpoints/<file>`), or None for a loose file."""
    parent = checkpoint_path.resolve().parent
    return parent.parent if parent.name == "checkpoints" else None


# `ckpt_path` values that name a run instead of a file.
LATEST = "latest"  # the newest single run of the task (runs/ only)
LATEST_ANY = "latest_any"  # the newest run of the task, multirun jobs and Optuna trials included


def resolve_ckpt_path(ckpt_path: str, output_root: Path, task_name: str, policy: str | None = None) -> Path:
    """The checkpoint file `ckpt_path` names: a path, `latest` or `latest_any` (of `task_name`; with `policy`,
    the newest run of that policy)."""
    if ckpt_path in (LATEST, LATEST_ANY):
        return latest_checkpoint(output_root, task_name, include_sweeps=ckpt_path == LATEST_ANY, policy=policy)
    return Path(ckpt_path)


def checkpoint_policy_name(path: Path) -> str:
    """The name of the policy a training checkpoint holds."""
    return str(load_checkpoint(path)["hyper_parameters"]["policy"]["name"])


def latest_checkpoint(output_root: Path, task_name: str, include_sweeps: bool = False,
                      policy: str | None = None) -> Path:
    """The `last.ckpt` of the newest single run under `<output_root>/<task_name>/runs/` (with
    `include_sweeps`, multirun jobs and Optuna trials under `multiruns/` count as well; with `policy`, only
    runs that trained that policy)."""
    base = output_root / task_name
    patterns = ["runs/*/checkpoints/last.ckpt"] + (["multiruns/*/*/checkpoints/last.ckpt"] if include_sweeps else [])
    candidates = sorted((p for pattern in patterns for p in base.glob(pattern)), key=lambda p: p.stat().st_mtime)
    for path in reversed(candidates):  # newest first; only as many checkpoints opened as needed
        if policy is None or checkpoint_policy_name(path) == policy:
            return path
    where = f"{base}/runs" + (f" or {base}/multiruns" if include_sweeps else "")
    of = f" of a policy={policy} run" if policy is not None else ""
    raise ConfigError(f"ckpt_path=latest: no last.ckpt{of} under {where}")


class LastCheckpoint(Checkpoint):
    """Writes `<dirpath>/last.ckpt` after every update.

    As a `Checkpoint` callback, Lightning runs it after the other callbacks (and, listed after the
    best-checkpoint callback, after that one), so `last.ckpt` holds the best-checkpoint state of this
    very update and a resume keeps tracking the best file correctly.

    Lightning's own `save_last` only writes when a top-k checkpoint was written in the same step and
    skips runs whose global step does not move (non-trainable bundles), so a resumable `last.ckpt`
    is written here instead. The trainer writes through `AtomicCheckpointIO`, so a kill or a full disk
    during the write leaves the previous `last.ckpt`.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # a full checkpoint: resumable


class RunConfigRecorder(L.Callback):
    """Stores the run's own config (unresolved, plain containers) in every checkpoint, so a resume
    continues the run as it was configured."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_CONFIG_KEY] = self.config


class CheckpointMismatchError(ValueError):
    """A checkpoint whose policy shape does not fit the configured run."""


def check_op_conditioning(state_dict: Mapping[str, Any], bundle: PolicyBundle, prefix: str) -> None:
    """Raise `CheckpointMismatchError` if the weights in `state_dict` (keys under `prefix`) are of the other
    form than `bundle`'s network: heads conditioned on the op or not (the op embedding is there or not)."""
    wanted = getattr(bundle, "op_conditioning", None)
    if wanted is None:
        return
    held = f"{prefix}op_embedding.weight" in state_dict
    if held != wanted:
        raise CheckpointMismatchError(
            f"checkpoint holds a policy with policy.op_conditioning={str(held).lower()}, the config's is "
            f"policy.op_conditioning={str(wanted).lower()}"
        )


def check_policy_fits(checkpoint: Mapping[str, Any], hparams: Mapping[str, Any], bundle: PolicyBundle,
                      new_inputs: int = 0) -> None:
    """Raise `CheckpointMismatchError` if the policy weights of `checkpoint` do not fit the policy of a run with
    `hparams` (the training module's) and `bundle` (whose observation is `new_inputs` columns wider than the
    checkpoint's when that is > 0)."""
    saved = checkpoint.get("hyper_parameters", {})
    mine = {**hparams, "obs_dim": hparams["obs_dim"] - new_inputs}
    for key in ("slot_ids", "obs_dim", "topology"):
        if key in saved and saved[key] != mine[key]:
            raise CheckpointMismatchError(
                f"checkpoint does not fit this config: its {key} is {saved[key]!r}, the config's is {mine[key]!r}"
            )
    policy_saved = saved.get("policy", {})
    for key in ("name", "hidden_dim", "num_layers", "feature_dim"):
        if key in policy_saved and policy_saved.get(key) != mine["policy"].get(key):
            raise CheckpointMismatchError(
                f"checkpoint does not fit this config: its policy.{key} is {policy_saved.get(key)!r}, "
                f"the config's is {mine['policy'].get(key)!r}"
            )
    if bundle.is_trainable:
        check_op_conditioning(checkpoint["state_dict"], bundle, prefix="policy_net.")


def check_resumable(checkpoint: Mapping[str, Any], hparams: Mapping[str, Any], bundle: PolicyBundle,
                    world_size: int) -> None:
    """Raise `CheckpointMismatchError` if `checkpoint` cannot resume a run of `hparams` and `bundle` on
    `world_size` ranks (env indices, normaliser merging and the optimiser's batch depend on it)."""
    check_policy_fits(checkpoint, hparams, bundle)
    if checkpoint["world_size"] != world_size:
        raise CheckpointMismatchError(
            f"checkpoint was written by a run on {checkpoint['world_size']} processes (world size "
            f"{checkpoint['world_size']}), this run has world size {world_size}; resume with the same "
            "trainer.devices × trainer.num_nodes"
        )
