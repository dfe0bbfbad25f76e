"""Cost of measuring the seed/host gradient-norm ratio (strict gate G2) during host training.

Times one host-training epoch of a `SeedEnv` whose first slot holds a seed in TRAINING, with the
gradient-ratio meter measuring and with it switched off, interleaved so machine load hits both alike.

    python scripts/experiments/bench_gradient_ratio.py [--task mnist1d] [--train-subset 4000] [--repeats 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tamiyo.core.actions import GerminationStyle, topology_blueprints
from tamiyo.env import gradients
from tamiyo.env.blueprints import build_seed
from tamiyo.env.config import EnvConfig
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--train-subset", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = EnvConfig(max_epochs=1000, max_seeds=0, auto_advance=False)
    env = SeedEnv(make_task(args.task, train_subset=args.train_subset, val_subset=500), config)
    env.reset(seed=0, episode=0)
    model = env.model
    slot = model.slots[0]
    blueprint = min(topology_blueprints(model.topology))
    slot.germinate(build_seed(blueprint, model.host.layout, slot.channels), blueprint, GerminationStyle.LINEAR_ADD,
                   3, 1.0, accuracy=0.0)
    slot.advance()  # TRAINING: the meter measures this seed
    measuring = gradients.GradientRatioMeter.accumulate
    times: dict[str, list[float]] = {"meter on": [], "meter off": []}
    for _ in range(args.repeats):
        for mode, values in times.items():
            gradients.GradientRatioMeter.accumulate = measuring if mode == "meter on" else (lambda self: None)
            started = time.perf_counter()
            env._train_epoch()
            values.append(time.perf_counter() - started)
    gradients.GradientRatioMeter.accumulate = measuring
    batches = -(-args.train_subset // env.config.batch_size)
    print(f"{args.task}, {batches} batches per epoch, every {gradients.MEASURE_EVERY}th measured")
    for mode, values in times.items():
        print(f"{mode}: median {statistics.median(values) * 1000:.1f} ms per epoch")
    print(f"gradient ratio (EMA): {slot.metrics.gradient_ratio:.3f}")


if __name__ == "__main__":
    main()
