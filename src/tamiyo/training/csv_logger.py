"""The CSV logger of a run: one `metrics.csv` that a resumed run continues, rewritten atomically.

Lightning's CSV logger deletes an existing `metrics.csv` when it starts and appends to it in place.
This one keeps a resumed run's history: rows already on disk are kept up to the first step (update)
the resumed run logs again (rows of updates after the checkpoint, written before a kill, are replaced),
and every save rewrites the whole file through `atomic_write_text`, so a reader never sees a
half-written row and a full disk leaves the previous file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from tamiyo.core.atomic_io import atomic_write_text


def _step(row: dict[str, Any]) -> float | None:
    """The row's logging step: one per update (every row has one, also those without an epoch)."""
    value = row.get("step")
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        # The parent's start-up deletes an existing metrics file; read it first and keep it in memory.
        path = Path(log_dir) / self.NAME_METRICS_FILE
        self.history: list[dict[str, Any]] = []
        if path.is_file():
            with path.open(newline="") as handle:
                self.history = list(csv.DictReader(handle))
        self._history_trimmed = False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        """Keep the existing files: a resumed run continues them."""

    def save(self) -> None:
        if not self.metrics:
            return
        if not self._history_trimmed:
            first = min((step for step in map(_step, self.metrics) if step is not None), default=None)
            if first is not None:
                self.history = [row for row in self.history if (_step(row) or 0.0) < first]
                self._history_trimmed = True
        self.history.extend(self.metrics)
        self.metrics = []
        keys = sorted({key for row in self.history for key in row})
        self.metrics_keys = keys
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.metrics_file_path, buffer.getvalue())


class ContinuingCSVLogger(CSVLogger):
    """`CSVLogger` whose `metrics.csv` continues across a resume and is replaced atomically."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            Path(self.root_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment
