"""Learning curves of from-scratch runs side by side: each update's mean training objective (running mean of 5) and
the validation objective, from the runs' CSV logs.

    python scripts/experiments/from_scratch_curves.py auto=<run dir> manual=<run dir> \
        --out scripts/experiments/figures/from_scratch_curves.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from tamiyo.evaluation.metric_history import read_metrics_csv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="label=run dir (the run's csv/metrics.csv is read)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--window", type=int, default=5, help="running mean over this many updates")
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(8, 5))
    for index, spec in enumerate(args.runs):
        label, _, run_dir = spec.partition("=")
        if not run_dir:
            parser.error(f"give label=run dir, got {spec!r}")
        history = read_metrics_csv(Path(run_dir) / "csv" / "metrics.csv")
        updates = np.array(history["update"])
        objective = np.array(history["episode/objective"], dtype=float)
        window = min(args.window, len(objective))
        smooth = np.convolve(objective, np.ones(window) / window, mode="valid")
        colour = f"C{index}"
        ax.plot(updates[window - 1:], smooth, color=colour, label=f"{label}: training episodes "
                f"(running mean of {window} updates)")
        val = [(u, v) for u, v in zip(updates, history.get("val/objective", []), strict=False) if np.isfinite(v)]
        if val:
            ax.plot(*zip(*val, strict=True), "o--", color=colour, label=f"{label}: validation (seed 3000)")
    ax.set_xlabel("update (8 episodes each)")
    ax.set_ylabel("objective")
    ax.set_title("PPO from scratch on mnist1d")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)  # below the axes, off the data
    ax.grid(alpha=0.3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
