"""Evaluation results as files: a CSV with one row per env-episode and a Markdown table of mean ± std."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

from tamiyo.core.atomic_io import atomic_write_text
from tamiyo.evaluation.runner import EpisodeResult

# (result field, column title, number format) of the summary table.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("objective", "objective", ".2f"),
    ("final_accuracy", "final val acc (%)", ".2f"),
    ("episode_return", "return", ".3f"),
    ("total_params", "params (host+seed)", ",.0f"),
    ("added_params", "added params", ",.0f"),
    ("train_gflops", "train GFLOPs", ".2f"),
    ("extra_compute", "extra compute", ".2f"),
    ("seeds_germinated", "germinated", ".2f"),
    ("seeds_fossilized", "fossilized", ".2f"),
    ("seeds_pruned", "pruned", ".2f"),
)
CSV_FIELDS = tuple(f.name for f in fields(EpisodeResult))


def write_csv(results: Sequence[EpisodeResult], path: Path) -> Path:
    """One row per env-episode, replacing `path` atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for result in results:
        writer.writerow(asdict(result))
    return atomic_write_text(path, buffer.getvalue())


_FIELD_TYPES = {f.name: {"int": int, "float": float, "str": str}[str(f.type)] for f in fields(EpisodeResult)}


def read_csv(path: Path) -> list[EpisodeResult]:
    """The episodes a `write_csv` file holds (e.g. a comparison's `schedule_grid.csv`), to re-analyse offline."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(set(CSV_FIELDS) - set(reader.fieldnames or ()))
        if missing:
            raise ValueError(f"{path} is not an episode table of this version: it lacks columns {missing}")
        return [EpisodeResult(**{name: _FIELD_TYPES[name](row[name]) for name in CSV_FIELDS}) for row in reader]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for a single value: one episode shows no spread)."""
    if not values:
        raise ValueError("no values to summarise")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def summarise(results: Sequence[EpisodeResult]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per policy (in order of first appearance): mean and std of every table column, plus the row count."""
    by_policy: dict[str, list[EpisodeResult]] = {}
    for result in results:
        by_policy.setdefault(result.policy, []).append(result)
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for policy, rows in by_policy.items():
        summary[policy] = {name: mean_std([float(getattr(r, name)) for r in rows]) for name, _, _ in TABLE_COLUMNS}
        summary[policy]["n"] = (float(len(rows)), math.nan)
    return summary


def _cell(mean: float, std: float, fmt: str) -> str:
    return f"{mean:{fmt}}" if math.isnan(std) else f"{mean:{fmt}} ± {std:{fmt}}"


def markdown_table(results: Sequence[EpisodeResult], caption: str) -> str:
    """A caption line, then one row per policy: n and mean ± sample std of every column."""
    header = "| policy | n | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |"
    lines = [caption, "", header, "|" + "---|" * (len(TABLE_COLUMNS) + 2)]
    for policy, stats in summarise(results).items():
        cells = [_cell(*stats[name], fmt) for name, _, fmt in TABLE_COLUMNS]
        lines.append(f"| {policy} | {int(stats['n'][0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
