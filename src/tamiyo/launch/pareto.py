"""`tamiyo-pareto`: the accuracy-vs-added-parameters front of learned controllers trained at several parameter prices.

    python train.py -m experiment=mnist1d_controller objective.param_weight=0.02,0.05,0.1
    python scripts/compare.py ckpt_path=<job k's last.ckpt> objective.param_weight=<its weight> seeds=10  # per job
    tamiyo-pareto <compare run dir> <compare run dir> ... [--out pareto_front.png]

Each compare run dir holds `comparison.csv` and `.hydra/config.yaml` (its `objective.param_weight`).
The learned row of every run becomes one point of the front; the fixed controllers (static, random,
heuristic, schedules; not static-final) are drawn from the first run, since their accuracy and size
do not depend on the price (only which schedule the grid picks does).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from omegaconf import OmegaConf

from tamiyo.evaluation.plots import plot_front


def read_comparison(run_dir: Path) -> tuple[float, int, list[dict[str, str]]]:
    """(param_weight, host params, rows of comparison.csv) of one compare run."""
    table, episodes = run_dir / "comparison.csv", run_dir / "comparison_episodes.csv"
    config = run_dir / ".hydra" / "config.yaml"
    for path in (table, episodes, config):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: is {run_dir} the output dir of tamiyo-compare?")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with episodes.open(newline="") as handle:
        host = int(next(csv.DictReader(handle))["host_params"])
    return float(OmegaConf.load(config).objective.param_weight), host, rows


def front(run_dirs: list[Path], out: Path) -> Path:
    learned, fixed = [], []
    for index, run_dir in enumerate(run_dirs):
        weight, host, rows = read_comparison(run_dir)
        mine = [r for r in rows if r["policy"].startswith("learned")]
        if len(mine) != 1:
            raise ValueError(f"{run_dir / 'comparison.csv'} has {len(mine)} learned rows, expected 1")
        learned.append((weight, float(mine[0]["added_params_mean"]), float(mine[0]["accuracy_mean"])))
        if index == 0:
            fixed = [(r["policy"], float(r["added_params_mean"]), float(r["accuracy_mean"])) for r in rows
                     if not r["policy"].startswith(("learned", "static-final"))]
    return plot_front(fixed, learned, host, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="output dirs of tamiyo-compare, one per price")
    parser.add_argument("--out", type=Path, default=Path("pareto_front.png"))
    args = parser.parse_args()
    try:
        print(f"wrote {front(args.run_dirs, args.out)}")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
