"""Re-price a headroom comparison offline: the ladder of `scripts/compare.py … headroom=true` at other objective
prices, without replaying an episode (every row holds the final accuracy, the added parameters and the extra
compute, which is all the objective reads). One CSV row per price combination; the ladder of each is printed.

    python scripts/experiments/reprice_headroom.py --run <compare run dir> --param-price 0 10 20 30 \\
        --compute-weight 0 0.05 --out prices.csv

The grid (`schedule_grid.csv`, training and held-out seeds) gives the single best schedule, the context selector
and the per-episode best; the other controllers of `comparison_episodes.csv` (baselines, learned) are ranked beside
them, except its "schedule: …" row (the single best at the run's own price, which the grid already holds).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from tamiyo.env.objective import Objective
from tamiyo.evaluation.headroom import SBS, SELECTOR, VBS, headroom
from tamiyo.evaluation.report import read_csv
from tamiyo.evaluation.runner import EpisodeResult


def repriced(results: list[EpisodeResult], objective: Objective) -> list[EpisodeResult]:
    return [dataclasses.replace(r, objective=objective(r.final_accuracy, r.added_params, r.host_params,
                                                       r.extra_compute)) for r in results]


@dataclass(frozen=True)
class Run:
    """A headroom comparison's episodes: the grid on the training and held-out seeds, and the other controllers."""

    train_seeds: frozenset[int]
    grid: list[EpisodeResult]
    others: list[EpisodeResult]

    @classmethod
    def load(cls, run: Path) -> Run:
        others = [r for r in read_csv(run / "comparison_episodes.csv") if not r.policy.startswith("schedule:")]
        return cls(frozenset(OmegaConf.load(run / ".hydra" / "config.yaml").train_seeds),
                   read_csv(run / "schedule_grid.csv"), others)


def ladder(run: Run, objective: Objective) -> dict[str, object]:
    grid = repriced(run.grid, objective)
    train = [r for r in grid if r.seed in run.train_seeds]
    report = headroom(train, [r for r in grid if r.seed not in run.train_seeds], repriced(run.others, objective))
    rows = {row.controller: row for row in report.rows}
    out: dict[str, object] = {"param_weight": objective.param_weight, "param_price": objective.param_price,
                              "compute_weight": objective.compute_weight, "single_best": report.single_best,
                              "sbs": round(rows[SBS].objective_mean, 2)}
    for name, row in rows.items():
        if name != SBS:
            out[f"{name} - sbs"] = round(row.diff_sbs_mean, 2)
            out[f"{name} - sbs ci95"] = round(row.diff_sbs_ci95, 2)
    out["vbs - selector"] = round(rows[VBS].objective_mean - rows[SELECTOR].objective_mean, 2)
    out["choices"] = "; ".join(f"{kind}: {choice}" for kind, choice in report.choices.items())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a compare run dir written with headroom=true")
    parser.add_argument("--param-weight", type=float, nargs="+", default=[0.0], help="relative parameter prices")
    parser.add_argument("--param-price", type=float, nargs="+", default=[0.0], help="points per 1,000 parameters")
    parser.add_argument("--compute-weight", type=float, nargs="+", default=[0.0], help="compute prices")
    parser.add_argument("--out", type=Path, required=True, help="CSV, one row per price combination")
    args = parser.parse_args()
    run = Run.load(args.run)
    rows = [ladder(run, Objective(weight, compute, price)) for weight, price, compute in
            itertools.product(args.param_weight, args.param_price, args.compute_weight)]
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(f"weight {row['param_weight']}, price {row['param_price']}, compute {row['compute_weight']}: "
              f"SBS {row['sbs']} ({row['single_best']}); "
              f"selector {row[f'{SELECTOR} - sbs']:+} ± {row[f'{SELECTOR} - sbs ci95']}; "
              f"VBS − selector {row['vbs - selector']:+}; "
              + "; ".join(f"{key[:-6]} {value:+}" for key, value in row.items()
                          if key.endswith(" - sbs") and not key.startswith((SELECTOR, VBS))))
        print(f"    {row['choices']}")


if __name__ == "__main__":
    main()
