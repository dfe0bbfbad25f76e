"""Environment throughput benchmark: env-epochs per second and the env's bookkeeping share.

For each number of envs (default 1 and 4) and each action scenario it resets a `VectorEnv` on the
full task, steps it for a few epochs and reports the median step time, env-epochs per second, and
the share of step wall time spent outside host training and validation (action application,
lifecycle, governor snapshots, rewards, observation packing). Feature extraction and masks are
policy-side and not measured here. Goal: bookkeeping ≤ 10 % of step time with 4 envs.

    python scripts/bench_env.py [--task mnist1d] [--envs 1 4] [--epochs 6] [--threads N] [--output bench/env.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from tamiyo.core.actions import BlueprintAction, FactoredAction, GerminationStyle, LifecycleOp, TempoAction
from tamiyo.env.seed_env import EnvConfig
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


def run(task: str, num_envs: int, scenario: str, epochs: int, device: str, seed: int) -> dict[str, object]:
    envs = VectorEnv(task, num_envs, EnvConfig(max_epochs=epochs), device=device, seed=seed)
    started = time.perf_counter()
    envs.reset()
    reset_s = time.perf_counter() - started
    step_s, inside_s = [], []
    for action in scenario_actions(scenario, epochs, slot=1):
        started = time.perf_counter()
        _, _, _, infos = envs.step([action] * num_envs)
        step_s.append(time.perf_counter() - started)
        inside_s.append(sum(info["time_train_s"] + info["time_validate_s"] for info in infos))
    total = sum(step_s)
    bookkeeping = [(s - i) / s for s, i in zip(step_s, inside_s, strict=True)]
    return {
        "task": task,
        "num_envs": num_envs,
        "scenario": scenario,
        "epochs": epochs,
        "reset_s": reset_s,
        "median_step_s": statistics.median(step_s),
        "env_epochs_per_s": num_envs * epochs / total,
        "bookkeeping_share": (total - sum(inside_s)) / total,
        "median_bookkeeping_share": statistics.median(bookkeeping),
        "final_val_accuracy": [info["val_accuracy"] for info in infos],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--scenarios", nargs="+", default=["wait", "blend"], choices=["wait", "blend"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("bench/env.json"))
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be ≥ 1, got {args.epochs}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    # Warm-up: the first env step pays one-off import and kernel-selection costs.
    run(args.task, 1, "blend", 3, args.device, args.seed)
    results = [run(args.task, n, s, args.epochs, args.device, args.seed) for n in args.envs for s in args.scenarios]
    report = {
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
        print(f"{r['task']} envs={r['num_envs']} {r['scenario']:>5}: {r['env_epochs_per_s']:.2f} env-epochs/s, "
              f"median step {r['median_step_s'] * 1e3:.1f} ms, bookkeeping {100 * r['bookkeeping_share']:.1f} %")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
