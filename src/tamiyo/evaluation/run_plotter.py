"""The callback that draws a training run's pictures into `<run_dir>/plots/` when fit ends.

It keeps the metrics of every update (rollout statistics and PPO update metrics, exactly the values
the logging callbacks log) independently of which logger is configured, and carries them in the
checkpoint so a resumed run still plots its whole history. The lifecycle timeline shows every env of
the last rollout; its trace is saved as `plots/lifecycle.json` so `scripts/plot_run.py` can redraw it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L

from tamiyo.evaluation.lifecycle import LIFECYCLE_JSON, LifecycleTrace, trace_of_envs
from tamiyo.evaluation.metric_history import history_from_rows
from tamiyo.evaluation.plots import draw_run_plots

log = logging.getLogger("tamiyo")


class RunPlotter(L.Callback):
    def __init__(self, run_dir: str | Path) -> None:
        self.out_dir = Path(run_dir) / "plots"
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        metrics = {**pl_module.last_rollout_stats, **pl_module.last_update_metrics}
        self.rows.append({"update": float(trainer.current_epoch), **{k: float(v) for k, v in metrics.items()}})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.rows:
            return
        trace = self._last_rollout_trace(trainer)
        if trace is not None:
            trace.save(self.out_dir / LIFECYCLE_JSON)
        written = draw_run_plots(history_from_rows(self.rows), trace, self.out_dir)
        log.info("plots: %s", ", ".join(str(path) for path in written))

    def _last_rollout_trace(self, trainer: L.Trainer) -> LifecycleTrace | None:
        step_infos = trainer.datamodule.collector.episode_infos
        if not step_infos:  # a resumed run that had no update left to run
            return None
        return trace_of_envs(step_infos, label=f"last rollout (update {int(self.rows[-1]['update'])})")

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(row) for row in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(row) for row in state_dict["rows"]]
