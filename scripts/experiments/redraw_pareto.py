"""Redraw a record's accuracy-against-added-parameters picture from the comparison table the record holds.

Reads the record's `--table`-th Markdown table (counting only tables with `final val acc (%)` and `added params`
columns: the means `compare` reported) and draws it with today's `plot_pareto` (one style per controller in every
figure):

    python scripts/experiments/redraw_pareto.py scripts/experiments/mnist1d_controller.md --host-params 690 \\
        --out scripts/experiments/figures/controller_pareto.png
    python scripts/experiments/redraw_pareto.py scripts/experiments/mixed_imitation.md --table 4 \\
        --out scripts/experiments/figures/mixed_pareto.png
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tamiyo.evaluation.plots import plot_pareto


def comparison_points(record: str, table: int = 1) -> list[tuple[str, float, float]]:
    """(controller, added params, final val acc) of the `table`-th table that has those columns."""
    lines = record.splitlines()
    seen = 0
    for index, line in enumerate(lines):
        header = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or "final val acc (%)" not in header or "added params" not in header:
            continue
        seen += 1
        if seen < table:
            continue
        points = []
        for row in lines[index + 2:]:
            if not row.startswith("|"):
                break
            cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
            label = re.sub(r"[*`]", "", cells[0])
            label = re.sub(r" \(best of .*\)$", "", label)
            number = [float(cells[header.index(key)].replace(",", "")) for key in ("added params", "final val acc (%)")]
            points.append((label, number[0], number[1]))
        return points
    raise ValueError(f"the record has {seen} table(s) with 'final val acc (%)' and 'added params' columns, "
                     f"not {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path)
    parser.add_argument("--host-params", type=int, default=None, help="the host's parameters (None: hosts vary)")
    parser.add_argument("--param-weight", type=float, default=0.05)
    parser.add_argument("--table", type=int, default=1, help="which of the record's comparison tables (from 1)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    points = comparison_points(args.record.read_text(), args.table)
    print(f"wrote {plot_pareto(points, args.param_weight, args.host_params, args.out)} ({len(points)} controllers)")


if __name__ == "__main__":
    main()
