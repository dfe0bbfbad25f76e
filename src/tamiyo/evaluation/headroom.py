"""How much a controller that adapts could gain: the algorithm-selection ladder of an env.

Every schedule of the grid plays the training seeds and the held-out seeds. From them:

* **single best schedule** (SBS): the schedule with the best mean objective on the training seeds,
  scored on the held-out seeds — the best one fixed rule does without looking at the episode;
* **context selector**: for each kind of episode (`tamiyo.env.kinds`: task and host width, or the kinds the env
  names, told apart by the observation from epoch 0) the schedule best on the training seeds' episodes of that
  kind (the SBS for a kind the training seeds never drew), scored on the held-out seeds — what reading the
  context buys;
* **per-episode best** (VBS, the virtual best solver): the best schedule of each held-out episode in
  hindsight — an upper bound no controller is promised, inflated by the luck of a maximum over noisy
  outcomes.

Each controller's row holds its mean objective with a 95 % t interval, the paired difference to the SBS
(same seed, episode and env) and `gap_closed` = (controller − SBS) / (VBS − SBS): 0 for the SBS, 1 for
the VBS, negative below the SBS.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tamiyo.core.atomic_io import atomic_write_text
from tamiyo.evaluation.comparison import ci95
from tamiyo.evaluation.runner import EpisodeResult

SBS = "single best schedule"
SELECTOR = "context selector"
VBS = "per-episode best (VBS)"

EpisodeKey = tuple[int, int, int]


def episode_key(result: EpisodeResult) -> EpisodeKey:
    return result.seed, result.episode, result.env


def episode_kind(result: EpisodeResult) -> str:
    """The kind of episode a controller reads off its first observation."""
    return result.kind


def _means(results: Sequence[EpisodeResult]) -> dict[str, float]:
    """Mean objective per controller, in order of first appearance."""
    by_policy: dict[str, list[float]] = {}
    for result in results:
        by_policy.setdefault(result.policy, []).append(result.objective)
    return {policy: statistics.fmean(values) for policy, values in by_policy.items()}


def best_schedule(results: Sequence[EpisodeResult]) -> str:
    """The schedule with the best mean objective (the first in grid order on a tie)."""
    if not results:
        raise ValueError("no schedule results to choose from")
    means = _means(results)
    return max(means, key=lambda policy: (means[policy], -list(means).index(policy)))


def context_choices(train: Sequence[EpisodeResult]) -> dict[str, str]:
    """The best schedule for each kind of episode among the training results."""
    kinds: dict[str, list[EpisodeResult]] = {}
    for result in train:
        kinds.setdefault(episode_kind(result), []).append(result)
    return {kind: best_schedule(rows) for kind, rows in sorted(kinds.items())}


@dataclass(frozen=True)
class HeadroomRow:
    """One controller's row of headroom.csv (objective points)."""

    controller: str
    n: int
    objective_mean: float
    objective_ci95: float
    diff_sbs_mean: float  # paired mean of (this − SBS); 0 for the SBS itself
    diff_sbs_ci95: float
    gap_closed: float  # (this − SBS) / (VBS − SBS); NaN when the VBS equals the SBS


@dataclass(frozen=True)
class Headroom:
    rows: list[HeadroomRow]
    single_best: str  # the SBS's schedule
    choices: dict[str, str]  # the context selector's schedule per kind seen on the training seeds
    train_seeds: list[int]
    seeds: list[int]
    schedules: int


def _pick(grid: dict[tuple[str, EpisodeKey], EpisodeResult], keys: Sequence[EpisodeKey], label: str,
          choose: Callable[[EpisodeKey], str]) -> list[EpisodeResult]:
    """`label`'s episodes: in each held-out episode, the result of the schedule `choose` picks for it."""
    return [dataclasses.replace(grid[(choose(key), key)], policy=label) for key in keys]


def headroom(
    grid_train: Sequence[EpisodeResult], grid_test: Sequence[EpisodeResult], controllers: Sequence[EpisodeResult],
) -> Headroom:
    """The ladder from the grid on the training seeds (`grid_train`, for every choice), the grid on the
    held-out seeds (`grid_test`, for the scores) and other controllers' held-out episodes."""
    train_seeds = sorted({r.seed for r in grid_train})
    seeds = sorted({r.seed for r in grid_test})
    if set(train_seeds) & set(seeds):
        raise ValueError(f"training seeds {train_seeds} and held-out seeds {seeds} overlap: every choice must be "
                         "made on seeds it is not scored on")
    schedules = list(dict.fromkeys(r.policy for r in grid_test))
    if list(dict.fromkeys(r.policy for r in grid_train)) != schedules:
        raise ValueError("the grid on the training seeds and on the held-out seeds must hold the same schedules")
    grid = {(r.policy, episode_key(r)): r for r in grid_test}
    keys = list(dict.fromkeys(episode_key(r) for r in grid_test))
    if len(grid) != len(schedules) * len(keys):
        raise ValueError("every schedule must play every held-out episode")
    kind_of = {episode_key(r): episode_kind(r) for r in grid_test}
    single_best = best_schedule(grid_train)
    choices = context_choices(grid_train)
    rows_by_controller = {
        SBS: _pick(grid, keys, SBS, lambda key: single_best),
        SELECTOR: _pick(grid, keys, SELECTOR, lambda key: choices.get(kind_of[key], single_best)),
        VBS: _pick(grid, keys, VBS, lambda key: max(schedules, key=lambda s: grid[(s, key)].objective)),
    }
    for result in controllers:
        rows_by_controller.setdefault(result.policy, []).append(result)
    sbs = {episode_key(r): r.objective for r in rows_by_controller[SBS]}
    sbs_mean, vbs_mean = _mean(rows_by_controller[SBS]), _mean(rows_by_controller[VBS])
    span = vbs_mean - sbs_mean
    rows = []
    for controller, results in rows_by_controller.items():
        missing = {episode_key(r) for r in results} ^ set(keys)
        if missing:
            raise ValueError(f"{controller} did not play the held-out episodes the grid played: {sorted(missing)}")
        diffs = [r.objective - sbs[episode_key(r)] for r in results]
        mean = _mean(results)
        rows.append(HeadroomRow(
            controller=controller, n=len(results), objective_mean=mean,
            objective_ci95=ci95([r.objective for r in results]), diff_sbs_mean=statistics.fmean(diffs),
            diff_sbs_ci95=ci95(diffs), gap_closed=(mean - sbs_mean) / span if span > 0 else math.nan,
        ))
    return Headroom(rows, single_best, choices, train_seeds, seeds, len(schedules))


def _mean(results: Sequence[EpisodeResult]) -> float:
    return statistics.fmean(r.objective for r in results)


def write_headroom_csv(report: Headroom, path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in dataclasses.fields(HeadroomRow)], lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(dataclasses.asdict(row))
    return atomic_write_text(path, buffer.getvalue())


def headroom_markdown(report: Headroom, caption: str) -> str:
    """The ladder as a Markdown table, then the schedules each choice made."""
    lines = [caption, "", "| controller | n | objective | − single best schedule (paired) | gap closed |",
             "|---|---|---|---|---|"]
    for row in report.rows:
        diff = f"{row.diff_sbs_mean:+.2f}" + ("" if math.isnan(row.diff_sbs_ci95) else f" ± {row.diff_sbs_ci95:.2f}")
        objective = f"{row.objective_mean:.2f}" + (
            "" if math.isnan(row.objective_ci95) else f" ± {row.objective_ci95:.2f}")
        gap = "—" if math.isnan(row.gap_closed) else f"{row.gap_closed:+.2f}"
        lines.append(f"| {row.controller} | {row.n} | {objective} | {diff} | {gap} |")
    lines += ["", f"Single best schedule (on training seeds {report.train_seeds}): {report.single_best}.",
              "Context selector's choice by kind of episode, on the same training seeds:"]
    lines += [f"- {kind}: {schedule}" for kind, schedule in report.choices.items()]
    return "\n".join(lines) + "\n"
