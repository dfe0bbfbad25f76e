"""Learning curve of PPO (lstm policy) against the random baseline, through the real entry point.

Runs `python train.py policy=lstm` (and `policy=random`, by default for a quarter of the updates:
a fixed policy's return does not drift) in subprocesses with their Hydra run directories under
`--run-root`, reads each run's CSV metrics, compares the mean episode return over the first and
the last 20 % of updates with the baseline's mean, and plots return and final accuracy per update.

    python scripts/experiments/learning_curve.py [--updates N] [--baseline-updates M] [--seed 0]
                                     [--override KEY=VALUE ...] [--threads 1]
                                     [--run-root bench/learning_curve] [--output bench/learning_curve.json]
                                     [--plot bench/learning_curve.png]

Quick check:
`python scripts/experiments/learning_curve.py --updates 3 --baseline-updates 1 \
    --override env.max_epochs=3 env.num_envs=2`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from tamiyo.evaluation.metric_history import read_metrics_csv  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]  # scripts/experiments/ -> the checkout
CURVE_KEYS = ("episode/return", "episode/return_std", "episode/final_accuracy", "episode/seeds_fossilized",
              "episode/seeds_pruned", "episode/seeds_germinated", "explained_variance", "approx_kl", "entropy/op",
              "time/rollout_s", "time/ppo_update_s")


def run_training(
    policy: str, updates: int | None, seed: int, threads: int, overrides: list[str], run_dir: Path
) -> float:
    """Run one `train.py` job into `run_dir` (emptied first; `updates=None` keeps the config's number);
    returns its wall time in seconds."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    command = [
        sys.executable, str(REPO_ROOT / "train.py"), f"policy={policy}", f"seed={seed}", f"torch_threads={threads}",
        f"hydra.run.dir={run_dir.resolve()}", "callbacks.progress_bar=null", *overrides,
    ]
    if updates is not None:
        command.append(f"updates={updates}")
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return time.perf_counter() - started


def read_curve(run_dir: Path) -> dict[str, list[float]]:
    """Per-update metrics of one run (keys the run did not log are left out)."""
    history = read_metrics_csv(run_dir / "csv" / "metrics.csv")
    return {"update": history["update"], **{key: history[key] for key in CURVE_KEYS if key in history}}


def window_mean(values: list[float], fraction: float, last: bool) -> float:
    """Mean over the first (or last) `fraction` of the values, at least one value."""
    count = max(1, round(fraction * len(values)))
    window = values[-count:] if last else values[:count]
    return statistics.fmean(window)


def plot(curve: dict[str, list[float]], baseline: dict[str, list[float]], baseline_name: str, path: Path) -> None:
    fig, (ax_return, ax_acc) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    updates = curve["update"]
    for ax, key, label in ((ax_return, "episode/return", "episode return (mean over envs)"),
                           (ax_acc, "episode/final_accuracy", "final validation accuracy (%)")):
        ax.plot(updates, curve[key], marker=".", label="lstm (PPO)")
        level = statistics.fmean(baseline[key])
        ax.axhline(level, color="tab:red", linestyle="--", label=f"{baseline_name} (mean {level:.2f})")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    returns, spread = curve["episode/return"], curve["episode/return_std"]
    ax_return.fill_between(updates, [r - s for r, s in zip(returns, spread, strict=True)],
                           [r + s for r, s in zip(returns, spread, strict=True)], alpha=0.2, label="± std over envs")
    ax_return.legend(loc="best")
    ax_acc.set_xlabel("PPO update")
    fig.suptitle("mnist1d: PPO learning curve vs baseline")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=None, help="PPO updates (default: conf/train.yaml's)")
    parser.add_argument("--baseline", default="random", help="fixed policy to compare against")
    parser.add_argument("--baseline-updates", type=int, default=None,
                        help="updates of the baseline run (default: a quarter of the PPO run's, at least 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for both runs")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of each run")
    parser.add_argument("--fraction", type=float, default=0.2, help="window of the first/last comparison")
    parser.add_argument("--run-root", type=Path, default=Path("bench/learning_curve"))
    parser.add_argument("--output", type=Path, default=Path("bench/learning_curve.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench/learning_curve.png"))
    args = parser.parse_args()
    if not 0 < args.fraction <= 0.5:
        parser.error(f"--fraction must lie in (0, 0.5], got {args.fraction}")

    lstm_dir, baseline_dir = args.run_root / "lstm", args.run_root / args.baseline
    lstm_wall = run_training("lstm", args.updates, args.seed, args.threads, args.override, lstm_dir)
    curve = read_curve(lstm_dir)
    baseline_updates = args.baseline_updates or max(1, len(curve["update"]) // 4)
    baseline_wall = run_training(args.baseline, baseline_updates, args.seed, args.threads, args.override,
                                 baseline_dir)
    baseline = read_curve(baseline_dir)

    returns = curve["episode/return"]
    summary: dict[str, Any] = {
        "updates": len(returns),
        "first_fraction_return": window_mean(returns, args.fraction, last=False),
        "last_fraction_return": window_mean(returns, args.fraction, last=True),
        "first_fraction_accuracy": window_mean(curve["episode/final_accuracy"], args.fraction, last=False),
        "last_fraction_accuracy": window_mean(curve["episode/final_accuracy"], args.fraction, last=True),
        "baseline": args.baseline,
        "baseline_updates": len(baseline["episode/return"]),
        "baseline_return": statistics.fmean(baseline["episode/return"]),
        "baseline_accuracy": statistics.fmean(baseline["episode/final_accuracy"]),
        "lstm_wall_s": lstm_wall,
        "baseline_wall_s": baseline_wall,
    }
    plot(curve, baseline, args.baseline, args.plot)
    report = {
        "benchmark": "learning_curve",
        "fraction": args.fraction,
        "seed": args.seed,
        "overrides": args.override,
        "threads": args.threads,
        "run_dirs": {"lstm": str(lstm_dir), args.baseline: str(baseline_dir)},
        "summary": summary,
        "curves": {"lstm": curve, args.baseline: baseline},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")

    pct = round(100 * args.fraction)
    print(f"\nupdates: {summary['updates']} (lstm), {summary['baseline_updates']} ({args.baseline})")
    print("| run | mean return | mean final acc (%) |\n|---|---|---|")
    print(f"| lstm, first {pct} % of updates | {summary['first_fraction_return']:.3f} "
          f"| {summary['first_fraction_accuracy']:.2f} |")
    print(f"| lstm, last {pct} % of updates | {summary['last_fraction_return']:.3f} "
          f"| {summary['last_fraction_accuracy']:.2f} |")
    print(f"| {args.baseline} (all updates) | {summary['baseline_return']:.3f} | {summary['baseline_accuracy']:.2f} |")
    print(f"wrote {args.output} and {args.plot}; run dirs under {args.run_root}")


if __name__ == "__main__":
    main()
