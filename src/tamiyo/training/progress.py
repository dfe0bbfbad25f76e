"""A Rich progress display in PPO terms: updates done of the total, with an ETA, and inside each update
the rollout's env-epochs (host-training epochs summed over the envs) advancing as they finish.

Lightning's own bars count Lightning epochs and one batch per epoch, which for this loop is a single
step per update that looks frozen for a whole rollout.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class UpdateProgress(L.Callback):
    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._updates = None
        self._rollout = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        )
        self._progress.start()
        done = trainer.current_epoch  # updates already done (non-zero after a resume)
        self._updates = self._progress.add_task("updates", total=trainer.max_epochs, completed=done, info="")
        datamodule = trainer.datamodule
        per_rollout = datamodule.num_envs * datamodule.episode_length
        self._rollout = self._progress.add_task("rollout env-epochs", total=per_rollout, info="")
        datamodule.collector.on_env_epochs = lambda n: self._progress.advance(self._rollout, n)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self._progress is not None:
            self._progress.reset(self._rollout)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._progress is None:
            return
        stats = pl_module.last_rollout_stats
        info = " ".join(
            text.format(stats[key])
            for text, key in (("objective {:.2f}", "episode/objective"), ("return {:.2f}", "episode/return"),
                              ("accuracy {:.2f} %", "episode/final_accuracy"))
            if key in stats
        )
        self._progress.update(self._updates, advance=1, info=info)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._stop(trainer)

    def _stop(self, trainer: L.Trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            trainer.datamodule.collector.on_env_epochs = None
            self._progress = None
