"""Callbacks that log what one PPO update and its rollout measured.

The LightningModule leaves the numbers of the latest update in `last_update_metrics` and those of
its rollout in `last_rollout_stats`; these callbacks decide what gets logged and how.
"""

from __future__ import annotations

from typing import Any

import lightning as L

_PER_HEAD_PREFIXES = ("entropy/", "clip_fraction/")


def _log(pl_module: L.LightningModule, metrics: dict[str, float], prog_bar: tuple[str, ...] = ()) -> None:
    # One update is one step of a one-batch epoch, so step and epoch values are the same numbers. Logged
    # per step, an update's row reaches the loggers at the end of its batch, before `last.ckpt` is
    # written at the end of the epoch: a kill in between leaves a metrics row the resume rewrites,
    # never a checkpointed update without its row.
    for key, value in metrics.items():
        pl_module.log(key, float(value), on_step=True, on_epoch=False, prog_bar=key in prog_bar, batch_size=1)


class HeadEntropyLogger(L.Callback):
    """Per-head normalised entropy (`entropy/<head>`) and clip fraction, each averaged only over the
    steps where that head was relevant to the sampled op (the same masking as the loss)."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        metrics = pl_module.last_update_metrics
        _log(pl_module, {k: v for k, v in metrics.items() if k.startswith(_PER_HEAD_PREFIXES)})


class PPODiagnosticsLogger(L.Callback):
    """Losses, approx KL, explained variance, gradient norm, learning rate, on-policy check."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        metrics = pl_module.last_update_metrics
        _log(pl_module, {k: v for k, v in metrics.items() if not k.startswith(_PER_HEAD_PREFIXES)})


class EpisodeStatsLogger(L.Callback):
    """Episode and lifecycle statistics of each rollout: return, final accuracy, parameter counts,
    seeds germinated/fossilized/pruned, op counts and reward components."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        _log(pl_module, pl_module.last_rollout_stats, prog_bar=("episode/return", "env_steps"))
