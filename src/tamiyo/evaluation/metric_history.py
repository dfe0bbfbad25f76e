"""A run's metric *history*: `{"update": [...], "<metric>": [...]}`, one value per PPO update, NaN where a
metric was not logged. The training callback builds it in memory from its rows; `read_metrics_csv` rebuilds it from
a run's CSV log, so a redrawn picture or a printed summary shows exactly what the run logged."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def history_from_rows(rows: Sequence[Mapping[str, float]]) -> dict[str, list[float]]:
    """A history from one metrics row per update (each with an "update" key); missing values become NaN."""
    if not rows:
        raise ValueError("no updates were recorded")
    ordered = sorted(rows, key=lambda row: row["update"])
    keys = sorted({key for row in ordered for key in row} - {"update"})
    history: dict[str, list[float]] = {"update": [float(row["update"]) for row in ordered]}
    for key in keys:
        history[key] = [float(row.get(key, math.nan)) for row in ordered]
    return history


def read_metrics_csv(path: Path) -> dict[str, list[float]]:
    """A history from a Lightning CSV log: rows merged per epoch (= PPO update), empty cells as NaN."""
    if not path.is_file():
        raise FileNotFoundError(f"no metrics CSV at {path}: was the run started with logger=csv?")
    merged: dict[int, dict[str, float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row.get("epoch"):
                continue
            epoch = int(row["epoch"])
            values = merged.setdefault(epoch, {"update": float(epoch)})
            for key, text in row.items():
                if key not in ("epoch", "step") and text not in ("", None):
                    values[key] = float(text)
    if not merged:
        raise ValueError(f"the metrics CSV {path} holds no logged updates")
    return history_from_rows(list(merged.values()))
