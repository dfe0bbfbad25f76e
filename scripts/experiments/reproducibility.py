"""Is a training run the same run on another machine of this kind? Trains one short env=mixed_imitation run
per setting (CPU kernel ISA forced through ATEN_CPU_CAPABILITY, in-process envs or worker processes, a
repeat) and prints, against the first run, the largest difference of any policy weight in last.ckpt and
of the logged episode objectives.

    python scripts/experiments/reproducibility.py --out /tmp/repro [--updates 6]

The record of what it measured is scripts/experiments/reproducibility.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
# (name, environment variables, extra overrides); the first is the reference.
SETTINGS: tuple[tuple[str, dict[str, str], tuple[str, ...]], ...] = (
    ("default ISA, 2 workers", {}, ("env.workers=2",)),
    ("default ISA, 2 workers, repeat", {}, ("env.workers=2",)),
    ("default ISA, in-process envs", {}, ("env.workers=1",)),
    ("avx2 kernels, 2 workers", {"ATEN_CPU_CAPABILITY": "avx2"}, ("env.workers=2",)),
    ("no-SIMD kernels, 2 workers", {"ATEN_CPU_CAPABILITY": "default"}, ("env.workers=2",)),
)


def train(out: Path, env: dict[str, str], overrides: tuple[str, ...], updates: int) -> Path:
    command = [
        sys.executable, str(ROOT / "train.py"), "experiment=mixed_imitation", "seed=0", f"updates={updates}",
        "imitation.updates=2", "env.num_envs=4", "ppo.num_minibatches=2", "env.max_epochs=6", "validation.every=0",
        "env.task_options.train_subset=512", "env.task_options.val_subset=256", "callbacks.progress_bar=null",
        f"hydra.run.dir={out}", *overrides,
    ]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training for {out} failed: {done.stderr.strip().splitlines()[-1]}")
    return out


def policy_weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("policy_net.")}


def objectives(run: Path) -> list[float]:
    with (run / "csv" / "metrics.csv").open() as handle:
        return [float(row["episode/objective"]) for row in csv.DictReader(handle) if row.get("episode/objective")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--updates", type=int, default=6, help="PPO updates per run (2 of them imitation)")
    args = parser.parse_args()
    runs = [(name, train(args.out / f"run{i}", env, extra, args.updates)) for i, (name, env, extra) in
            enumerate(SETTINGS)]
    reference_weights, reference_objectives = policy_weights(runs[0][1]), objectives(runs[0][1])
    print(f"| setting | max |Δ weight| vs {runs[0][0]} | max |Δ episode objective| |")
    print("|---|---|---|")
    for name, run in runs:
        weights = policy_weights(run)
        weight_diff = max((weights[k] - v).abs().max().item() for k, v in reference_weights.items())
        objective_diff = max(abs(a - b) for a, b in zip(objectives(run), reference_objectives, strict=True))
        print(f"| {name} | {weight_diff:.3g} | {objective_diff:.3g} |")


if __name__ == "__main__":
    main()
