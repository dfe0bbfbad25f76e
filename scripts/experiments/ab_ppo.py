"""A/B of PPO code versions: the same training budget and seeds, run from two checkouts, compared.

`run` trains `python train.py policy=lstm` from one checkout (its `train.py`, with its `src/` first on
PYTHONPATH) for each seed, one run after the other, and writes the per-update curves of every seed to
a JSON file. `compare` reads several such files and prints, per variant, the mean over seeds of the
episode return, final accuracy and explained variance over the first and last `--fraction` of updates.

    python scripts/experiments/ab_ppo.py run --label after --seeds 0 1 2 --updates 15 --output bench/ab/after.json
    python scripts/experiments/ab_ppo.py run --label before --code /path/to/old/checkout --seeds 0 1 2 --updates 15 \\
        --output bench/ab/before.json
    python scripts/experiments/ab_ppo.py compare bench/ab/before.json bench/ab/after.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tamiyo.evaluation.metric_history import read_metrics_csv

REPO_ROOT = Path(__file__).resolve().parents[2]  # scripts/experiments/ -> the checkout
CURVE_KEYS = ("episode/return", "episode/final_accuracy", "explained_variance", "value/first_step",
              "return/first_step", "entropy/op", "entropy/blueprint", "approx_kl", "grad_norm")
SUMMARY_KEYS = ("episode/return", "episode/final_accuracy", "explained_variance")


def read_curve(run_dir: Path) -> dict[str, list[float]]:
    """Per-update metrics of one run (keys the run did not log are left out)."""
    history = read_metrics_csv(run_dir / "csv" / "metrics.csv")
    return {"update": history["update"], **{key: history[key] for key in CURVE_KEYS if key in history}}


def run(args: argparse.Namespace) -> None:
    code = args.code.resolve()
    env = dict(os.environ, PYTHONPATH=str(code / "src"))
    report: dict[str, Any] = {"label": args.label, "code": str(code), "updates": args.updates,
                              "overrides": args.override, "runs": {}}
    for seed in args.seeds:
        run_dir = (args.run_root / args.label / f"seed{seed}").resolve()
        if run_dir.exists():
            shutil.rmtree(run_dir)
        command = [sys.executable, str(code / "train.py"), "policy=lstm", f"seed={seed}", f"updates={args.updates}",
                   "torch_threads=1", f"hydra.run.dir={run_dir}", "callbacks.progress_bar=null", *args.override]
        print("$", " ".join(command), flush=True)
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=code, env=env)
        report["runs"][str(seed)] = {"wall_s": time.perf_counter() - started, "curve": read_curve(run_dir)}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")  # after every seed: partial results survive


def window_mean(values: list[float], fraction: float, last: bool) -> float:
    count = max(1, round(fraction * len(values)))
    window = [v for v in (values[-count:] if last else values[:count]) if not math.isnan(v)]
    return statistics.fmean(window) if window else math.nan


def compare(args: argparse.Namespace) -> None:
    pct = round(100 * args.fraction)
    print(f"means over seeds of the first / last {pct} % of updates (± std over seeds of the last window)")
    print("| variant | seeds | updates | " + " | ".join(f"{k} first → last" for k in SUMMARY_KEYS) + " |")
    print("|---|---|---|" + "---|" * len(SUMMARY_KEYS))
    by_label: dict[str, list[dict[str, list[float]]]] = {}
    for path in args.reports:  # files with the same label (seeds run separately) are pooled
        report = json.loads(Path(path).read_text())
        by_label.setdefault(report["label"], []).extend(entry["curve"] for entry in report["runs"].values())
    for label, curves in by_label.items():
        cells = []
        for key in SUMMARY_KEYS:
            first = [window_mean(c[key], args.fraction, last=False) for c in curves]
            last = [window_mean(c[key], args.fraction, last=True) for c in curves]
            spread = statistics.pstdev(last) if len(last) > 1 else 0.0
            cells.append(f"{statistics.fmean(first):.3f} → {statistics.fmean(last):.3f} ± {spread:.3f}")
        updates = min(len(c["update"]) for c in curves)
        print(f"| {label} | {len(curves)} | {updates} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train one code version for several seeds")
    run_parser.add_argument("--label", required=True)
    run_parser.add_argument("--code", type=Path, default=REPO_ROOT, help="checkout whose train.py and src/ run")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument("--updates", type=int, default=15)
    run_parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides")
    run_parser.add_argument("--run-root", type=Path, default=Path("bench/ab"))
    run_parser.add_argument("--output", type=Path, required=True)
    compare_parser = sub.add_parser("compare", help="summarise the JSON files of `run`")
    compare_parser.add_argument("reports", nargs="+")
    compare_parser.add_argument("--fraction", type=float, default=0.2)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        if not 0 < args.fraction <= 0.5:
            parser.error(f"--fraction must lie in (0, 0.5], got {args.fraction}")
        compare(args)


if __name__ == "__main__":
    main()
