"""Wall time of a two-job sweep with the joblib launcher against the basic launcher.

Runs the same multirun (`seed=0,1`; by default the default env config, 4 envs × 25 epochs, for 5
updates per job) once with Hydra's basic launcher, which runs the jobs one after the other in the
launching process, and once with `hydra/launcher=joblib`, which runs them at the same time in worker
processes with one torch thread each. Reports both wall times and their ratio (issue goal:
joblib ≤ 0.6 × basic on 2 cores), and the CPU seconds of each sweep (the joblib workers import torch
and Lightning again, a fixed cost that short jobs do not amortise). With --repeats N the pairs
alternate (basic, joblib, basic, ...) and the medians are compared, so a drift in background load hits
both launchers alike. The load average is recorded around every sweep: on a shared machine other
processes take the cores the parallel jobs need.

    python scripts/bench_sweep.py [--jobs 2] [--updates 5] [--envs 4] [--epochs 25] [--repeats 1]
                                  [--override KEY=VALUE ...] [--output bench/sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = ("basic", "joblib")


def sweep_command(launcher: str, output_root: Path, args: argparse.Namespace) -> list[str]:
    seeds = ",".join(str(seed) for seed in range(args.jobs))
    launcher_args = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if launcher == "joblib" else []
    return [
        sys.executable, str(REPO_ROOT / "train.py"), "-m", *launcher_args, f"seed={seeds}",
        f"updates={args.updates}", f"env.num_envs={args.envs}", f"env.max_epochs={args.epochs}",
        "torch_threads=1", "callbacks.progress_bar=null", f"paths.output_root={output_root}", *args.override,
    ]


def run_sweep(launcher: str, args: argparse.Namespace) -> dict[str, Any]:
    output_root = Path(tempfile.mkdtemp(prefix=f"bench_sweep_{launcher}_"))
    command = sweep_command(launcher, output_root, args)
    print("$", " ".join(command), flush=True)
    load_before = os.getloadavg()
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu = _children_cpu_s() - cpu_before
    load_after = os.getloadavg()
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise RuntimeError(f"the {launcher} sweep failed with exit code {result.returncode}")
    runs = sorted((output_root / "train" / "multiruns").glob("*/*/checkpoints/last.ckpt"))
    if len(runs) != args.jobs:
        raise RuntimeError(f"the {launcher} sweep left {len(runs)} checkpoints, expected {args.jobs}")
    shutil.rmtree(output_root)
    print(f"  {launcher}: {wall:.1f} s wall, {cpu:.1f} s CPU (load average {load_before[0]:.2f} → "
          f"{load_after[0]:.2f})", flush=True)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(load_after[0], 2)}


def _children_cpu_s() -> float:
    """User + system CPU seconds of every finished descendant (the sweep and the workers it reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="sweep jobs (seeds 0..jobs-1), run at once by joblib")
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=25, help="host epochs per episode")
    parser.add_argument("--repeats", type=int, default=1, help="alternating basic/joblib pairs; medians compared")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every job")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "sweep.json")
    args = parser.parse_args()
    for name in ("jobs", "updates", "envs", "epochs", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be ≥ 1, got {getattr(args, name)}")

    samples: dict[str, list[dict[str, Any]]] = {launcher: [] for launcher in LAUNCHERS}
    for _ in range(args.repeats):
        for launcher in LAUNCHERS:
            samples[launcher].append(run_sweep(launcher, args))
    medians = {launcher: statistics.median(s["wall_s"] for s in samples[launcher]) for launcher in LAUNCHERS}
    ratio = medians["joblib"] / medians["basic"]
    report = {
        "config": {"jobs": args.jobs, "updates": args.updates, "envs": args.envs, "epochs": args.epochs,
                   "repeats": args.repeats, "override": args.override, "torch_threads": 1},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "basic_wall_s": medians["basic"],
        "joblib_wall_s": medians["joblib"],
        "basic_cpu_s": statistics.median(s["cpu_s"] for s in samples["basic"]),
        "joblib_cpu_s": statistics.median(s["cpu_s"] for s in samples["joblib"]),
        "ratio_joblib_to_basic": round(ratio, 3),
        "goal_ratio": 0.6,
        "meets_goal": ratio <= 0.6,
        "samples": samples,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"basic {medians['basic']:.1f} s, joblib {medians['joblib']:.1f} s, ratio {ratio:.3f} (goal ≤ 0.6) "
          f"→ {args.output}")


if __name__ == "__main__":
    main()
