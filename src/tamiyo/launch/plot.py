"""`tamiyo-plot <run_dir | latest> [--out DIR]`: redraw a training run's pictures from its logs.

`latest` is the newest training run under `./outputs/train/runs/` (where `train.py` writes from this directory).

Reads the CSV metrics (`<run_dir>/csv/metrics.csv`, written by `logger=csv`) and, when present, the
lifecycle trace the run saved (`<run_dir>/plots/lifecycle.json`); writes `returns_accuracy.png`,
`head_entropy.png` (learned policies only) and `lifecycle.png` into `--out` (default `<run_dir>/plots`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamiyo.evaluation.lifecycle import LIFECYCLE_JSON, LifecycleTrace
from tamiyo.evaluation.metric_history import read_metrics_csv
from tamiyo.evaluation.plots import draw_run_plots
from tamiyo.training.checkpoints import LATEST, latest_checkpoint, run_dir_of


def plot_run(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    if str(run_dir) == LATEST:
        run_dir = run_dir_of(latest_checkpoint(Path("outputs"), "train"))
        print(f"latest: {run_dir}")
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    history = read_metrics_csv(run_dir / "csv" / "metrics.csv")
    trace_path = run_dir / "plots" / LIFECYCLE_JSON
    trace = LifecycleTrace.load(trace_path) if trace_path.is_file() else None
    return draw_run_plots(history, trace, out_dir or run_dir / "plots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a training run's directory, or latest")
    parser.add_argument("--out", type=Path, default=None, help="where to write the PNGs (default <run_dir>/plots)")
    args = parser.parse_args()
    try:
        written = plot_run(args.run_dir, args.out)
    except (FileNotFoundError, ValueError) as error:  # ConfigError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print("\n".join(f"wrote {path}" for path in written))


if __name__ == "__main__":
    main()
