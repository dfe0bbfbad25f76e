"""Controllers compared by the objective: the schedule grid, static-final controls and the summary.

* The schedule grid: fixed schedules (`policy=schedule`) for every blueprint × slot set; the best by
  mean objective on the *training* seeds is the one reported on the held-out seeds, so nothing is
  selected on the seeds it is judged on.
* A static-final control retrains the final architecture of a controller's episode from scratch as a
  fixed network (its seeds fossilized from epoch 0, nothing grown; `architecture_fossils` reads them),
  on the same seed, env and episode index, so the host initialisation and data order match the grown
  episode: is growing better than starting big? Each seed is planted at the alpha it ended with and with
  the fault it had, so the control has the grown network's function class, faults included.
* The summary: one row per controller (mean objective with a 95 % t interval, mean accuracy, added
  parameters and training GFLOPs) and paired differences to a reference controller (the learned one),
  paired by (seed, episode, env).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from tamiyo.core.actions import BLUEPRINT_IDS, topology_blueprints
from tamiyo.env.kinds import default_kind_name
from tamiyo.evaluation.runner import EpisodeResult


def schedule_grid(
    blueprints: str | Sequence[str], slot_sets: Sequence[str | Sequence[str]], topology: str,
    slot_ids: Sequence[str],
) -> list[dict[str, Any]]:
    """Schedule options for every blueprint × slot set.

    `blueprints` is "all" (every blueprint of the topology, in action order) or a list of ids;
    each slot set is "each" (every single slot), "all" (all slots together) or a list of slot ids.
    """
    if blueprints == "all":
        names = [BLUEPRINT_IDS[b] for b in sorted(topology_blueprints(topology))]
    elif isinstance(blueprints, str) or not blueprints:
        raise ValueError(f"schedule_grid.blueprints must be 'all' or a non-empty list, got {blueprints!r}")
    else:
        names = list(blueprints)
    if isinstance(slot_sets, str) or not slot_sets:
        raise ValueError(f"schedule_grid.slots must be a non-empty list (of 'each', 'all' or slot lists), "
                         f"got {slot_sets!r}")
    sets: list[str | list[str]] = []
    for entry in slot_sets:
        if entry == "each":
            sets += [[slot] for slot in slot_ids]
        elif entry == "all" or not isinstance(entry, str):
            sets.append(entry if entry == "all" else list(entry))
        else:
            raise ValueError(f"schedule_grid.slots entries are 'each', 'all' or lists of slot ids, got {entry!r}")
    return [{"blueprint": name, "slots": slots} for name in names for slots in sets]


def equal_compute_epochs(grown: EpisodeResult, control: EpisodeResult, max_epochs: int) -> int:
    """Epochs of a static-final control that fit in its grown episode's training FLOPs, from the control's own
    full-length run (`max_epochs` epochs at a constant cost each): at least 1, at most `max_epochs`."""
    per_epoch = control.train_gflops / max_epochs
    return max(1, min(max_epochs, math.floor(grown.train_gflops / per_epoch * (1 + 1e-9))))


def architecture_fossils(architecture: str) -> dict[str, str]:
    """"r0c1=conv_small/add@0.5 r0c2=conv_heavy/add!dead" → {"r0c1": "conv_small/add@0.5", "r0c2": ...}."""
    return dict(item.split("=", 1) for item in architecture.split())


@dataclass(frozen=True)
class ControllerSummary:
    """One controller's row of comparison.csv (objective and accuracy in points)."""

    policy: str
    n: int
    objective_mean: float
    objective_ci95: float  # half-width of the 95 % t interval of the mean (NaN for n = 1)
    accuracy_mean: float
    added_params_mean: float
    train_gflops_mean: float
    return_mean: float
    diff_objective_mean: float  # paired mean of (this − reference); NaN for the reference itself
    diff_objective_ci95: float
    diff_accuracy_mean: float
    diff_added_params_mean: float


def ci95(values: Sequence[float]) -> float:
    """Half-width of the two-sided 95 % t interval of the mean (NaN with fewer than two values)."""
    if len(values) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))


def _key(result: EpisodeResult) -> tuple[int, int, int]:
    return result.seed, result.episode, result.env


def summarise_controllers(results: Sequence[EpisodeResult], reference: str | None) -> list[ControllerSummary]:
    """One summary per controller (in order of first appearance), differences paired to `reference`."""
    by_policy: dict[str, list[EpisodeResult]] = {}
    for result in results:
        by_policy.setdefault(result.policy, []).append(result)
    if reference is not None and reference not in by_policy:
        raise ValueError(f"reference controller {reference!r} is not among {list(by_policy)}")
    ref = {_key(r): r for r in by_policy[reference]} if reference is not None else {}
    summaries = []
    for policy, rows in by_policy.items():
        paired = [(r, ref[_key(r)]) for r in rows if _key(r) in ref] if policy != reference else []
        if reference is not None and policy != reference and len(paired) != len(rows):
            raise ValueError(f"{policy} ran episodes that {reference} did not: differences need the same episodes")
        diffs = [r.objective - s.objective for r, s in paired]
        summaries.append(ControllerSummary(
            policy=policy,
            n=len(rows),
            objective_mean=statistics.fmean(r.objective for r in rows),
            objective_ci95=ci95([r.objective for r in rows]),
            accuracy_mean=statistics.fmean(r.final_accuracy for r in rows),
            added_params_mean=statistics.fmean(r.added_params for r in rows),
            train_gflops_mean=statistics.fmean(r.train_gflops for r in rows),
            return_mean=statistics.fmean(r.episode_return for r in rows),
            diff_objective_mean=statistics.fmean(diffs) if diffs else math.nan,
            diff_objective_ci95=ci95(diffs),
            diff_accuracy_mean=statistics.fmean(r.final_accuracy - s.final_accuracy for r, s in paired)
            if paired else math.nan,
            diff_added_params_mean=statistics.fmean(r.added_params - s.added_params for r, s in paired)
            if paired else math.nan,
        ))
    return summaries


def write_summary_csv(summaries: Sequence[ControllerSummary], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in dataclasses.fields(ControllerSummary)])
        writer.writeheader()
        for summary in summaries:
            writer.writerow(dataclasses.asdict(summary))
    return path


def _pm(mean: float, half_width: float, fmt: str) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:{fmt}}" if math.isnan(half_width) else f"{mean:{fmt}} ± {half_width:{fmt.lstrip('+')}}"


def summary_markdown(summaries: Sequence[ControllerSummary], caption: str, reference: str | None) -> str:
    """A caption, then one row per controller; ± is the 95 % t half-width."""
    versus = f" − {reference}" if reference is not None else ""
    header = (f"| controller | n | objective | final val acc (%) | added params | train GFLOPs | return | "
              f"objective{versus} (paired) | acc{versus} | added params{versus} |")
    lines = [caption, "", header, "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        cells = [
            _pm(s.objective_mean, s.objective_ci95, ".2f"), f"{s.accuracy_mean:.2f}", f"{s.added_params_mean:,.0f}",
            f"{s.train_gflops_mean:.2f}", f"{s.return_mean:.2f}",
            _pm(s.diff_objective_mean, s.diff_objective_ci95, "+.2f"),
            _pm(s.diff_accuracy_mean, math.nan, "+.2f"), _pm(s.diff_added_params_mean, math.nan, "+,.0f"),
        ]
        lines.append(f"| {s.policy} | {s.n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def episode_kind_markdown(results: Sequence[EpisodeResult]) -> str:
    """Mean objective of every controller by the task and by the host width its episodes drew, or by the kind
    where the env names its kinds (`env.kinds`; episode counts in brackets): where a controller gains or loses on
    an env that mixes kinds of episode. Empty when all episodes are of one kind."""
    if len({r.kind for r in results}) == 1:
        return ""
    if any(r.kind != default_kind_name(r.task, r.host_width) for r in results):
        columns = [("kind", kind) for kind in dict.fromkeys(r.kind for r in results)]
    else:
        columns = [("task", task) for task in dict.fromkeys(r.task for r in results)]
        columns += [("host_width", width) for width in sorted({r.host_width for r in results})]
    by_policy: dict[str, list[EpisodeResult]] = {}
    for result in results:
        by_policy.setdefault(result.policy, []).append(result)
    names = [f"width ×{value:g}" if field == "host_width" else value for field, value in columns]
    lines = ["", "Mean objective by kind of episode (episodes):", "",
             "| controller | " + " | ".join(names) + " |", "|---" * (len(columns) + 1) + "|"]
    for policy, rows in by_policy.items():
        cells = []
        for field, value in columns:
            mine = [r.objective for r in rows if getattr(r, field) == value]
            cells.append(f"{statistics.fmean(mine):.2f} ({len(mine)})" if mine else "—")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
