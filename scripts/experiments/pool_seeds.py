"""Pool the comparisons of several training seeds of one learned controller on the same held-out seeds.

    python scripts/experiments/pool_seeds.py <compare dir of training seed 0> <... seed 1> <... seed 2>

Every directory is a `scripts/compare.py` output on the same `seeds`; fixed controllers play the same
episodes in each, so they are read from the first directory that has them. Prints one Markdown row per
controller: the mean objective over all episodes, and the paired difference learned − controller with
its 95 % t interval taken over the training seeds' mean differences (the unit that varies between runs),
plus each training seed's own mean difference.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from scipy import stats

LEARNED = "learned (lstm)"


def episodes(directory: Path) -> dict[str, dict[tuple[str, str, str], float]]:
    """Controller → (seed, episode, env) → objective, from one comparison_episodes.csv."""
    table: dict[str, dict[tuple[str, str, str], float]] = {}
    with (directory / "comparison_episodes.csv").open() as handle:
        for row in csv.DictReader(handle):
            table.setdefault(row["policy"], {})[(row["seed"], row["episode"], row["env"])] = float(row["objective"])
    return table


def half_width(values: list[float]) -> float:
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5


def main(directories: list[Path]) -> None:
    runs = [episodes(d) for d in directories]
    fixed: dict[str, dict[tuple[str, str, str], float]] = {}
    for run in runs:
        for policy, rows in run.items():
            if policy != LEARNED and not policy.startswith("static-final"):
                fixed.setdefault(policy, rows)
    learned = [run[LEARNED] for run in runs]
    pooled = [v for run in learned for v in run.values()]
    per_seed = [statistics.fmean(run.values()) for run in learned]
    print(f"| controller | objective (n) | learned − controller, per training seed "
          f"| over seeds (95 % t, n={len(runs)}) |")
    print("|---|---|---|---|")
    print(f"| {LEARNED} | {statistics.fmean(pooled):.2f} ({len(pooled)}) | "
          f"{', '.join(f'{m:.2f}' for m in per_seed)} (means) | {statistics.fmean(per_seed):.2f} ± "
          f"{half_width(per_seed):.2f} |")
    for policy, rows in fixed.items():
        diffs = [statistics.fmean(run[key] - rows[key] for key in run) for run in learned]
        print(f"| {policy} | {statistics.fmean(rows.values()):.2f} ({len(rows)}) | "
              f"{', '.join(f'{d:+.2f}' for d in diffs)} | {statistics.fmean(diffs):+.2f} ± {half_width(diffs):.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path, help="compare.py output dirs, one per training seed")
    main(parser.parse_args().directories)
