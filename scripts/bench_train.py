"""Where the wall time of a training run goes, its framework overhead and its peak memory.

Runs `python train.py policy=<name> updates=N` in a subprocess per policy (default: lstm and the
heuristic, 3 updates of 4 envs × 25 epochs), reads the `time/*` metrics that each update logs, and
splits the process wall time into host training, validation, policy acting, the env's own
bookkeeping, rollout bookkeeping, the PPO update and the rest (interpreter and library start-up,
task generation, Lightning set-up, logging and checkpoints, teardown). Framework overhead
(goal ≤ 1.10 on mnist1d) = wall ÷ (host training + validation), reported for the whole
process and for the training steps alone (Σ rollout + PPO update). Peak memory is the child's
maximum resident set size. Writes JSON and prints a table.

    python scripts/bench_train.py [--policies lstm heuristic] [--updates 3] [--envs 4] [--epochs N]
                                  [--override KEY=VALUE ...] [--threads 1] [--output bench/train.json]

Quick check: `python scripts/bench_train.py --policies lstm --updates 1 --envs 2 --epochs 3`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
TIME_KEYS = ("time/host_train_s", "time/validate_s", "time/act_s", "time/env_step_s", "time/rollout_s",
             "time/ppo_update_s")


def run_job(command: list[str]) -> tuple[float, float, int, str]:
    """Run `command`; its wall seconds, peak RSS in MiB (Linux reports KiB), exit code and output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    # wait4 rather than wait: it returns this child's own resource usage (RUSAGE_CHILDREN would
    # report the maximum over every child so far).
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, process.returncode, output


def read_times(run_dir: Path) -> list[dict[str, float]]:
    """The `time/*` metrics of every update, from the run's CSV log."""
    path = run_dir / "csv" / "metrics.csv"
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("time/rollout_s")]
    missing = [key for key in TIME_KEYS if key != "time/ppo_update_s" and key not in rows[0]]
    if missing:
        raise KeyError(f"{path} lacks the timing metrics {missing}")
    # Fixed bundles run no PPO update, so they log no time/ppo_update_s.
    return [{key: float(row.get(key) or 0.0) for key in TIME_KEYS} for row in rows]


def measure(policy: str, args: argparse.Namespace) -> dict[str, Any]:
    run_dir = args.run_root / policy
    if run_dir.exists():
        shutil.rmtree(run_dir)
    command = [
        sys.executable, str(REPO_ROOT / "train.py"), f"policy={policy}", f"updates={args.updates}",
        f"env.num_envs={args.envs}", f"seed={args.seed}", f"torch_threads={args.threads}",
        f"hydra.run.dir={run_dir.resolve()}", "callbacks.progress_bar=null", *args.override,
    ]
    if args.epochs is not None:
        command.append(f"env.max_epochs={args.epochs}")
    print("$", " ".join(command), flush=True)
    wall, peak_mib, code, output = run_job(command)
    if code != 0:
        sys.stderr.write(output[-4000:])
        raise RuntimeError(f"training run for policy={policy} failed with exit code {code}")
    (run_dir / "stdout.log").write_text(output)
    per_update = read_times(run_dir)
    total = {key: sum(update[key] for update in per_update) for key in TIME_KEYS}
    host_train, validate = total["time/host_train_s"], total["time/validate_s"]
    inside = host_train + validate
    steps = total["time/rollout_s"] + total["time/ppo_update_s"]
    parts = {
        "host_train_s": host_train,
        "validate_s": validate,
        "act_s": total["time/act_s"],
        "env_bookkeeping_s": total["time/env_step_s"] - inside,
        "rollout_bookkeeping_s": total["time/rollout_s"] - total["time/act_s"] - total["time/env_step_s"],
        "ppo_update_s": total["time/ppo_update_s"],
        "rest_s": wall - steps,
    }
    return {
        "policy": policy,
        "updates": len(per_update),
        "wall_s": wall,
        "parts": parts,
        "training_steps_s": steps,
        "overhead_whole_process": wall / inside,
        "overhead_training_steps": steps / inside,
        "peak_rss_mib": peak_mib,
        "per_update": per_update,
        "run_dir": str(run_dir),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    names = list(results[0]["parts"])
    header = ["policy", "wall s", *[name.removesuffix("_s").replace("_", " ") + " s" for name in names],
              "overhead (process)", "overhead (steps)", "peak RSS MiB"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        cells = [r["policy"], f"{r['wall_s']:.1f}", *[f"{r['parts'][n]:.2f}" for n in names],
                 f"{r['overhead_whole_process']:.3f}", f"{r['overhead_training_steps']:.3f}",
                 f"{r['peak_rss_mib']:.0f}"]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", default=["lstm", "heuristic"])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=None, help="env.max_epochs override (default: the config's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every run")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of each run")
    parser.add_argument("--run-root", type=Path, default=Path("bench/train_runs"))
    parser.add_argument("--output", type=Path, default=Path("bench/train.json"))
    args = parser.parse_args()

    results = [measure(policy, args) for policy in args.policies]
    print()
    print_table(results)
    report = {
        "benchmark": "train",
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "threads": args.threads,
        "updates": args.updates,
        "num_envs": args.envs,
        "max_epochs_override": args.epochs,
        "overrides": args.override,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
