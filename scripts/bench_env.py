"""Environment throughput benchmark: env-epochs per second, the env's bookkeeping share, and the
speed-up of env worker processes.

For each number of envs (default 1 and 4), each action scenario and each worker count (`--workers`,
default 1) it resets a `VectorEnv` on the full task (worker start-up is timed apart), steps it for a
few epochs and reports the median step time, env-epochs per second, the share of step wall time
spent outside host training and validation (action application, lifecycle, governor snapshots,
rewards, observation packing), and the per-step overhead of the workers (step wall time minus the
slowest worker's time inside its envs: pipes, shared memory, scheduling). Feature extraction and
masks are policy-side and not measured here. Goal: bookkeeping ≤ 10 % of step time with 4 envs;
≥ 1.8× with 2 workers on 2 cores.

With two or more worker counts it ends with `speedup workers=W vs workers=1: X.XX` and a scaling
model: with c = seconds per env-epoch inside the env and o(W) = per-step overhead (fitted linearly
in W from the measured counts), N envs on W workers take (N/W)·c + o(W) per step.

    python scripts/bench_env.py [--task mnist1d] [--envs 1 4] [--workers 1,2] [--epochs 6] [--repeats 1]
                                [--threads N] [--output bench/env.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from tamiyo.core.actions import BlueprintAction, FactoredAction, GerminationStyle, LifecycleOp, TempoAction
from tamiyo.env.config import EnvConfig
from tamiyo.env.vector import VectorEnv

WAIT = FactoredAction.wait()


def _action(op: LifecycleOp, slot: int) -> FactoredAction:
    indices = list(WAIT.to_indices())
    indices[0], indices[1], indices[2], indices[3], indices[7] = (
        slot, int(BlueprintAction.CONV_LIGHT), int(GerminationStyle.LINEAR_ADD), int(TempoAction.FAST), int(op))
    return FactoredAction.from_indices(indices)


def scenario_actions(name: str, epochs: int, slot: int) -> list[FactoredAction]:
    """`wait`: the host trains alone. `blend`: germinate → TRAINING → BLENDING, then the ramp runs."""
    if name == "wait":
        return [WAIT] * epochs
    path = [_action(op, slot) for op in (LifecycleOp.GERMINATE, LifecycleOp.ADVANCE, LifecycleOp.ADVANCE)]
    return (path + [WAIT] * epochs)[:epochs]


def run(
    task: str, num_envs: int, scenario: str, epochs: int, device: str, seed: int, workers: int = 1
) -> dict[str, object]:
    config = EnvConfig(max_epochs=epochs, max_seeds=0, auto_advance=False)
    envs = VectorEnv(task, num_envs, config, device=device, seed=seed, workers=workers)
    started = time.perf_counter()
    envs.reset()  # starts the worker processes
    startup_s = time.perf_counter() - started
    started = time.perf_counter()
    envs.reset()  # a reset as every episode after the first pays it
    reset_s = time.perf_counter() - started
    step_s, inside_s, overhead_s = [], [], []
    groups = [list(range(g * num_envs // workers, (g + 1) * num_envs // workers)) for g in range(workers)]
    for action in scenario_actions(scenario, epochs, slot=1):
        started = time.perf_counter()
        _, _, _, infos = envs.step([action] * num_envs)
        step_s.append(time.perf_counter() - started)
        inside_s.append(sum(info["time_train_s"] + info["time_validate_s"] for info in infos))
        slowest = max(sum(infos[i]["time_step_s"] for i in group) for group in groups)
        overhead_s.append(step_s[-1] - slowest)
    envs.close()
    total = sum(step_s)
    bookkeeping = [(s - i) / s for s, i in zip(step_s, inside_s, strict=True)]
    return {
        "task": task,
        "num_envs": num_envs,
        "workers": workers,
        "scenario": scenario,
        "epochs": epochs,
        "startup_s": startup_s,
        "reset_s": reset_s,
        "median_step_s": statistics.median(step_s),
        "env_epochs_per_s": num_envs * epochs / total,
        "env_epoch_s": sum(info["time_step_s"] for info in infos) / num_envs,  # c, last step
        "median_overhead_s": statistics.median(overhead_s),
        "bookkeeping_share": (total - sum(inside_s) / workers) / total,
        "median_bookkeeping_share": statistics.median(bookkeeping),
        "final_val_accuracy": [info["val_accuracy"] for info in infos],
    }


def scaling_model(results: list[dict[str, object]], cores: tuple[int, ...] = (8, 16, 64)) -> list[str]:
    """Predicted env-epochs/s on more cores from the measured per-env-epoch time and per-step overhead."""
    c = statistics.median(float(r["env_epoch_s"]) for r in results)
    points = sorted(
        (w, statistics.median(float(r["median_overhead_s"]) for r in results if r["workers"] == w))
        for w in {int(r["workers"]) for r in results}
    )
    (w0, o0), (w1, o1) = points[0], points[-1]
    slope = max(0.0, (o1 - o0) / (w1 - w0)) if w1 != w0 else 0.0
    lines = [(f"scaling model: c = {c * 1e3:.0f} ms per env-epoch, overhead o(W) = {o0 * 1e3:.1f} ms + "
              f"{slope * 1e3:.2f} ms x (W - {w0}) per step")]
    for n in cores:
        for envs_per_worker in (1, 4):
            overhead = o0 + slope * (n - w0)
            step = envs_per_worker * c + overhead
            rate = n * envs_per_worker / step
            lines.append(f"  {n:>2} cores, {n} workers x {envs_per_worker} envs (env.num_envs={n * envs_per_worker}): "
                         f"{rate:.1f} env-epochs/s, efficiency {envs_per_worker * c / step:.2f}")
    if slope > 0:
        half_efficiency = w0 + max(0.0, c - o0) / slope
        lines.append(f"  efficiency falls below 0.5 with 1 env per worker at W ≈ {half_efficiency:.0f} workers")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--scenarios", nargs="+", default=["wait", "blend"], choices=["wait", "blend"])
    parser.add_argument("--workers", default="1", help="comma-separated env worker counts, e.g. 1,2")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure every setting this many times, interleaved (evens out a shared machine's load)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads of this process and of each env worker (default 1, as training "
                             "runs them: two threads per worker on two cores are 5-10x slower)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("bench/env.json"))
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be ≥ 1, got {args.epochs}")
    if args.threads < 1:
        parser.error(f"--threads must be ≥ 1, got {args.threads}")
    torch.set_num_threads(args.threads)

    workers = [int(w) for w in args.workers.split(",")]
    load_before = os.getloadavg()
    # Warm-up: the first env step pays one-off import and kernel-selection costs.
    run(args.task, 1, "blend", 3, args.device, args.seed)
    results = [
        run(args.task, n, s, args.epochs, args.device, args.seed, w)
        for _ in range(args.repeats) for n in args.envs for s in args.scenarios for w in workers if n % w == 0
    ]
    report = {
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "benchmark": "env",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r['task']} envs={r['num_envs']} workers={r['workers']} {r['scenario']:>5}: "
              f"{r['env_epochs_per_s']:.2f} env-epochs/s, median step {r['median_step_s'] * 1e3:.1f} ms, "
              f"bookkeeping {100 * r['bookkeeping_share']:.1f} %, "
              f"worker overhead {r['median_overhead_s'] * 1e3:.1f} ms/step, "
              f"start-up {r['startup_s']:.1f} s")
    print(f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {report['load_average_after'][0]:.2f} {report['load_average_after'][1]:.2f} "
          f"{report['load_average_after'][2]:.2f}; usable cores {len(os.sched_getaffinity(0))}")
    print(f"wrote {args.output}")
    if len(workers) > 1:
        largest = max(n for n in args.envs if all(n % w == 0 for w in workers))
        measured = [r for r in results if r["num_envs"] == largest and r["scenario"] == args.scenarios[0]]
        for line in scaling_model(measured):
            print(line)

        def rate(w: int) -> float:  # env-epochs per second over all scenarios at `largest` envs
            runs = [r for r in results if r["workers"] == w and r["num_envs"] == largest]
            epochs = sum(int(r["num_envs"]) * int(r["epochs"]) for r in runs)
            return epochs / sum(int(r["num_envs"]) * int(r["epochs"]) / float(r["env_epochs_per_s"]) for r in runs)

        for w in workers[1:]:
            print(f"speedup workers={w} vs workers={workers[0]}: {rate(w) / rate(workers[0]):.2f}")


if __name__ == "__main__":
    main()
