"""Checkpoint files of a training run: the `last.ckpt` writer and finding the newest run's checkpoint."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from tamiyo.core.errors import ConfigError


def latest_checkpoint(output_root: Path, task_name: str) -> Path:
    """The newest `last.ckpt` of any run under `<output_root>/<task_name>/`."""
    candidates = sorted((output_root / task_name).glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"ckpt_path=latest: no last.ckpt under {output_root / task_name}")
    return candidates[-1]


class LastCheckpoint(L.Callback):
    """Writes `<dirpath>/last.ckpt` after every update.

    Lightning's own `save_last` only writes when a top-k checkpoint was written in the same step and
    skips runs whose global step does not move (non-trainable bundles), so a resumable `last.ckpt`
    is written here instead. `Trainer.save_checkpoint` writes atomically (temporary file, then
    rename), so a run killed mid-write keeps the previous `last.ckpt`.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # a full checkpoint: resumable
