"""The table of scripts/experiments/host_lr_tuning.sh: the static host's mean objective (= accuracy) with its
95 % t interval for every task, width and host learning rate, and the best rate of each (task, width).

    python scripts/experiments/host_lr_table.py bench/host_lr
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
from pathlib import Path

from tamiyo.evaluation.comparison import ci95

RUN = re.compile(r"(?P<task>\w+?)_w(?P<width>[\d.]+)_lr(?P<lr>[\d.]+)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the OUT directory of host_lr_tuning.sh")
    args = parser.parse_args()
    cells: dict[tuple[str, float], dict[float, list[float]]] = {}
    for path in sorted(args.root.glob("*/evaluation.csv")):
        match = RUN.match(path.parent.name)
        if match is None:
            continue
        with path.open() as handle:
            values = [float(row["objective"]) for row in csv.DictReader(handle)]
        key = (match["task"], float(match["width"]))
        cells.setdefault(key, {})[float(match["lr"])] = values
    rates = sorted({lr for by_lr in cells.values() for lr in by_lr})
    print("| task | width | " + " | ".join(f"lr {lr:g}" for lr in rates) + " | best |")
    print("|---|---|" + "---|" * len(rates) + "---|")
    for (task, width), by_lr in sorted(cells.items()):
        means = {lr: statistics.fmean(v) for lr, v in by_lr.items()}
        row = [f"{means[lr]:.1f} ± {ci95(by_lr[lr]):.1f}" if lr in by_lr else "—" for lr in rates]
        print(f"| {task} | ×{width:g} | " + " | ".join(row) + f" | {max(means, key=means.get):g} |")


if __name__ == "__main__":
    main()
