"""Benchmark the policy hot paths and write the medians to JSON for comparison across commits.

* act step = features (`extract_features`) + masks (`compute_masks`) + `get_action`, for 1, 4, 16
  and 64 envs with 3 slots, on observation batches built from realistic random slot reports;
* `evaluate_actions` forward + backward on 16×25 and 64×25 stored steps (trainable bundles only).

Each part is timed separately in the same iteration; the act-step total is the median of the
per-iteration sums. Usage: `python scripts/bench_policy.py [--policy lstm] [--repeats 50] [--out bench/policy.json]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from tamiyo.core.actions import HEAD_NAMES, AlphaAlgorithm, AlphaCurveAction, AlphaMode, BlueprintAction
from tamiyo.core.observation import HISTORY_LENGTH, ObservationBatch, SlotReport, TrainingSignals
from tamiyo.core.slots import SlotConfig
from tamiyo.core.stages import SeedStage
from tamiyo.policy import COMPILE_MODES, compute_masks, create_policy, extract_features, set_validation

ENV_COUNTS = (1, 4, 16, 64)
EVAL_SHAPES = ((16, 25), (64, 25))
TOPOLOGY = "cnn"
# esper-lite's published figures: act step at 16 envs, and
# evaluate_actions forward + backward on 16 envs × 25 steps.
REFERENCE_MS = {"act_step_16": 5.3, "evaluate_16x25": 15.0}
_CNN_BLUEPRINTS = (BlueprintAction.CONV_LIGHT, BlueprintAction.CONV_HEAVY, BlueprintAction.ATTENTION,
                   BlueprintAction.NORM, BlueprintAction.DEPTHWISE)
# Stage mix of a mid-episode batch: mostly empty or live slots, some terminal ones.
_STAGE_WEIGHTS = {
    SeedStage.DORMANT: 4, SeedStage.GERMINATED: 1, SeedStage.TRAINING: 2, SeedStage.BLENDING: 2,
    SeedStage.HOLDING: 1, SeedStage.FOSSILIZED: 1, SeedStage.PRUNED: 0.5, SeedStage.EMBARGOED: 0.5,
    SeedStage.RESETTING: 0.5,
}


def random_signals(rng: random.Random, max_epochs: int = 25) -> TrainingSignals:
    epoch = rng.randint(1, max_epochs)
    progress = epoch / max_epochs
    val_loss = 2.3 * (1 - 0.7 * progress) + rng.gauss(0, 0.05)
    val_accuracy = 10 + 70 * progress + rng.gauss(0, 2)
    max_seeds = rng.choice([0, 3])
    return TrainingSignals(
        epoch=epoch, max_epochs=max_epochs, train_loss=val_loss * 0.9, val_loss=val_loss,
        loss_delta=rng.gauss(0.03, 0.05), train_accuracy=val_accuracy + 3, val_accuracy=val_accuracy,
        accuracy_delta=rng.gauss(1.0, 1.5), plateau_epochs=rng.randint(0, 5), host_stabilized=epoch > 4,
        best_val_accuracy=val_accuracy + abs(rng.gauss(0, 1)), best_val_loss=val_loss - abs(rng.gauss(0, 0.05)),
        loss_scale=math.log(10), host_params=25_000, seed_params=rng.choice([0, 2_000, 6_000]),
        seeds_used=rng.randint(0, 3), max_seeds=max_seeds,
        val_loss_history=tuple(val_loss + 0.02 * k for k in range(HISTORY_LENGTH, 0, -1)),
        val_accuracy_history=tuple(val_accuracy - k for k in range(HISTORY_LENGTH, 0, -1)),
    )


def random_slot(rng: random.Random) -> SlotReport:
    stage = rng.choices(list(_STAGE_WEIGHTS), weights=list(_STAGE_WEIGHTS.values()))[0]
    if stage == SeedStage.DORMANT:
        return SlotReport.empty()
    age = rng.randint(0, 12)
    blending = stage == SeedStage.BLENDING
    steps_total = rng.choice([3, 5, 8]) if blending else 0
    alpha = {SeedStage.BLENDING: rng.random(), SeedStage.HOLDING: 1.0, SeedStage.FOSSILIZED: 1.0}.get(stage, 0.0)
    return SlotReport(
        stage=stage, epochs_in_stage=rng.randint(0, age), age=age, alpha=alpha, alpha_target=1.0,
        alpha_mode=rng.choice([AlphaMode.UP, AlphaMode.HOLD]) if blending else AlphaMode.HOLD,
        alpha_steps_total=steps_total, alpha_steps_done=rng.randint(0, steps_total),
        alpha_curve=rng.choice(list(AlphaCurveAction)), blend_tempo_epochs=rng.choice([3, 5, 8]),
        alpha_algorithm=rng.choice(list(AlphaAlgorithm)), blueprint=rng.choice(_CNN_BLUEPRINTS),
        counterfactual=rng.gauss(0.5, 1.5) if stage in (SeedStage.BLENDING, SeedStage.HOLDING) else None,
        contribution_velocity=rng.gauss(0, 0.3), improvement_since_stage_start=rng.gauss(0.5, 2),
        total_improvement=rng.gauss(0.5, 2), seed_params=rng.choice([2_000, 6_000]),
    )


def random_batch(rng: random.Random, num_envs: int, slots: SlotConfig, device: torch.device) -> ObservationBatch:
    return ObservationBatch.pack(
        [random_signals(rng) for _ in range(num_envs)],
        [[random_slot(rng) for _ in range(slots.num_slots)] for _ in range(num_envs)],
        device=device,
    )


class Timer:
    """Wall-clock milliseconds of a call, synchronising the GPU so queued kernels are counted."""

    def __init__(self, device: torch.device) -> None:
        self._sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def __call__(self, fn: Callable[[], object]) -> tuple[object, float]:
        self._sync()
        start = time.perf_counter()
        out = fn()
        self._sync()
        return out, (time.perf_counter() - start) * 1e3


def bench_act_step(bundle, num_envs: int, repeats: int, warmup: int, rng: random.Random, timer: Timer) -> dict:
    # A pool of distinct batches, so no part benefits from seeing the same input twice in a row.
    pool = [random_batch(rng, num_envs, bundle.slot_config, bundle.device) for _ in range(8)]
    hidden = bundle.initial_hidden(num_envs)
    parts: dict[str, list[float]] = {"features": [], "masks": [], "get_action": [], "total": []}
    for i in range(warmup + repeats):
        obs = pool[i % len(pool)]
        features, t_features = timer(partial(extract_features, obs))
        masks, t_masks = timer(partial(compute_masks, obs, TOPOLOGY))
        result, t_act = timer(partial(bundle.get_action, features, hidden, masks, context=obs))
        hidden = result.hidden
        if i >= warmup:
            for name, ms in zip(parts, (t_features, t_masks, t_act, t_features + t_masks + t_act), strict=True):
                parts[name].append(ms)
    return {name: statistics.median(values) for name, values in parts.items()}


def stored_rollout(bundle, num_envs: int, steps: int, rng: random.Random) -> tuple:
    """`[envs, steps]` features, actions and the masks they were drawn under, as PPO storage holds them."""
    hidden, features, actions, masks = bundle.initial_hidden(num_envs), [], [], []
    for _ in range(steps):
        obs = random_batch(rng, num_envs, bundle.slot_config, bundle.device)
        step_features = extract_features(obs)
        result = bundle.get_action(step_features, hidden, compute_masks(obs, TOPOLOGY), context=obs)
        hidden = result.hidden
        features.append(step_features)
        actions.append(result.actions)
        masks.append(result.masks)
    stack = lambda per_step: {h: torch.stack([s[h] for s in per_step], 1) for h in HEAD_NAMES}  # noqa: E731
    return torch.stack(features, 1), stack(actions), stack(masks)


def bench_evaluate(bundle, num_envs: int, steps: int, repeats: int, warmup: int, rng: random.Random,
                   timer: Timer) -> float:
    obs, actions, masks = stored_rollout(bundle, num_envs, steps, rng)

    def forward_backward() -> None:
        bundle.network.zero_grad(set_to_none=True)
        evaluation = bundle.evaluate_actions(obs, actions, masks)
        loss = sum(lp.mean() + 0.01 * e.mean() for lp, e in zip(evaluation.log_probs.values(),
                                                                evaluation.entropy.values(), strict=True))
        (loss + evaluation.value.square().mean()).backward()

    times = [timer(forward_backward)[1] for _ in range(warmup + repeats)]
    return statistics.median(times[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="lstm", help="registered policy bundle to time")
    parser.add_argument("--repeats", type=int, default=50, help="timed iterations per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", default="off", choices=COMPILE_MODES, dest="compile_mode")
    parser.add_argument("--no-validation", dest="validation", action="store_false",
                        help="switch off the per-batch mask/logit validation (on by default, as in the library)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/policy.json"))
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error(f"need --repeats ≥ 1, --warmup ≥ 0, --threads ≥ 1; got {args.repeats}, {args.warmup}, "
                     f"{args.threads}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    set_validation(args.validation)
    rng = random.Random(args.seed)
    device = torch.device(args.device)
    timer = Timer(device)
    slots = SlotConfig.default()
    bundle = create_policy(args.policy, slots, TOPOLOGY, device=device, compile_mode=args.compile_mode)

    act = {n: bench_act_step(bundle, n, args.repeats, args.warmup, rng, timer) for n in ENV_COUNTS}
    evaluate = {}
    if bundle.is_trainable:
        evaluate = {f"{n}x{t}": bench_evaluate(bundle, n, t, args.repeats, args.warmup, rng, timer)
                    for n, t in EVAL_SHAPES}
    ratios = {"act_step_16": act[16]["total"] / REFERENCE_MS["act_step_16"]}
    if evaluate:
        ratios["evaluate_16x25"] = evaluate["16x25"] / REFERENCE_MS["evaluate_16x25"]

    report = {
        # Other processes competing for the cores make multi-threaded timings meaningless (OpenMP threads spin).
        "load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count(),
        "policy": args.policy, "device": str(device), "compile": args.compile_mode, "threads": args.threads,
        "repeats": args.repeats, "warmup": args.warmup, "validation": args.validation, "num_slots": slots.num_slots,
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor(),
        "act_step_ms": {str(n): parts for n, parts in act.items()},
        "evaluate_fwd_bwd_ms": evaluate,
        "reference_ms": REFERENCE_MS,
        "ratio_vs_reference": ratios,  # < 1 means faster than esper-lite
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    Console().print(f"wrote {args.out}")


def _print(report: dict) -> None:
    console = Console()
    table = Table(title=f"act step, policy={report['policy']} on {report['device']} "
                        f"({report['threads']} threads, median ms)")
    for column in ("envs", "features", "masks", "get_action", "total"):
        table.add_column(column, justify="right")
    for n, parts in report["act_step_ms"].items():
        table.add_row(n, *(f"{parts[k]:.3f}" for k in ("features", "masks", "get_action", "total")))
    console.print(table)
    if report["load_average_1min"] > report["cpu_count"] - report["threads"]:
        console.print(f"[yellow]warning: load average {report['load_average_1min']:.1f} on {report['cpu_count']} "
                      f"cores: other processes compete with the {report['threads']} torch threads; timings are "
                      "unreliable (use an idle machine or fewer --threads)[/yellow]")
    if report["evaluate_fwd_bwd_ms"]:
        table = Table(title="evaluate_actions forward + backward (median ms)")
        table.add_column("envs × steps")
        table.add_column("ms", justify="right")
        for shape, ms in report["evaluate_fwd_bwd_ms"].items():
            table.add_row(shape, f"{ms:.2f}")
        console.print(table)
    for name, ratio in report["ratio_vs_reference"].items():
        console.print(f"{name}: {ratio:.2f}× esper-lite's {report['reference_ms'][name]} ms")


if __name__ == "__main__":
    main()
