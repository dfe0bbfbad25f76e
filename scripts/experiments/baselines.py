"""Baseline controllers on the default task: final accuracy, size, lifecycle counts and return.

Runs the `static`, `random` and `heuristic` bundles for several seeds, one episode of one env per
seed (the env's RNG derives from (seed, env index 0, episode 0)), with exactly the env and reward
configuration that `python train.py policy=<name>` composes from `conf/`. Prints a table and writes
it as JSON and Markdown. Goal: the heuristic beats the static host by ≥ 5 accuracy points.

    python scripts/experiments/baselines.py [--policies static random heuristic] [--seeds 0 1 2 3 4]
                                [--epochs N] [--override KEY=VALUE ...] [--threads 1]
                                [--output bench/baselines.json] [--markdown bench/baselines.md]

Quick check: `python scripts/experiments/baselines.py --seeds 0 --epochs 3`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from tamiyo.collectors.rollout import RolloutCollector
from tamiyo.conf import CONF_DIR
from tamiyo.core.seeding import derive_seed
from tamiyo.env.config import build_env_config
from tamiyo.env.tasks import make_task
from tamiyo.env.vector import VectorEnv
from tamiyo.policy import create_policy, obs_dim
from tamiyo.ppo.normalizers import ObservationNormalizer

# Per-seed rollout statistics aggregated over seeds.
_STAT_KEYS = (
    "episode/final_accuracy",
    "episode/return",
    "episode/host_params",
    "episode/seed_params",
    "episode/seeds_germinated",
    "episode/seeds_fossilized",
    "episode/seeds_pruned",
)


def compose_config(policy: str, overrides: list[str]) -> DictConfig:
    """The configuration `python train.py policy=<policy> <overrides>` would run with."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"policy={policy}", *overrides])


def run_episode(cfg: DictConfig, seed: int) -> dict[str, float]:
    """One episode of one env under the configured policy; the rollout's episode statistics."""
    env_cfg = OmegaConf.to_container(cfg.env, resolve=True)
    reward_cfg = OmegaConf.to_container(cfg.reward, resolve=True)
    policy_cfg = OmegaConf.to_container(cfg.policy, resolve=True)
    task = make_task(env_cfg["task"], **dict(env_cfg.get("task_options") or {}))
    env_config = build_env_config(env_cfg, reward_cfg, cfg.ppo.gamma, autocast_dtype=None)
    vec_env = VectorEnv(task, num_envs=1, config=env_config, seed=seed)
    width = obs_dim(vec_env.slot_config.num_slots)
    options = {k: v for k, v in policy_cfg.items() if k != "name"}
    policy = create_policy(policy_cfg["name"], slot_config=vec_env.slot_config, topology=vec_env.topology,
                           obs_dim=width, **options)
    # Fixed bundles ignore the normalised features; a frozen normaliser keeps the episode side-effect free.
    collector = RolloutCollector(vec_env, ObservationNormalizer(width, clip=cfg.ppo.obs_clip, frozen=True), None)
    # As in training: the global RNG (the random bundle's draws) is seeded per (seed, update 0, rank 0).
    torch.manual_seed(derive_seed(seed, 0, 0, 1))
    started = time.perf_counter()
    stats = collector.collect(policy, storage=None, seed=seed, episode=0)
    stats["time/episode_s"] = time.perf_counter() - started
    return stats


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def summarise(per_seed: list[dict[str, float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key in _STAT_KEYS:
        mean, std = _mean_std([s[key] for s in per_seed])
        summary[key] = {"mean": mean, "std": std}
    total = [s["episode/host_params"] + s["episode/seed_params"] for s in per_seed]
    mean, std = _mean_std(total)
    summary["episode/total_params"] = {"mean": mean, "std": std}
    return summary


def paired_gains(grown: list[dict[str, float]], static: list[dict[str, float]]) -> list[float]:
    """Final-accuracy gain per seed: both runs of a seed start from the same host, data order and init."""
    static_by_seed = {s["seed"]: s["episode/final_accuracy"] for s in static}
    return [g["episode/final_accuracy"] - static_by_seed[g["seed"]] for g in grown]


def markdown_table(results: dict[str, dict[str, Any]], seeds: list[int], max_epochs: int) -> str:
    lines = [
        f"Baselines on mnist1d ({len(seeds)} seeds: {', '.join(map(str, seeds))}; one episode of "
        f"{max_epochs} epochs per seed; mean ± population std over seeds)",
        "",
        "| policy | final val acc (%) | params (host+seed) | germinated | fossilized | pruned | episode return |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        s = result["summary"]
        acc, ret = s["episode/final_accuracy"], s["episode/return"]
        lines.append(
            f"| {name} | {acc['mean']:.2f} ± {acc['std']:.2f} | {s['episode/total_params']['mean']:,.0f} "
            f"| {s['episode/seeds_germinated']['mean']:.2f} | {s['episode/seeds_fossilized']['mean']:.2f} "
            f"| {s['episode/seeds_pruned']['mean']:.2f} | {ret['mean']:.2f} ± {ret['std']:.2f} |"
        )
    if "heuristic" in results and "static" in results:
        gains = paired_gains(results["heuristic"]["per_seed"], results["static"]["per_seed"])
        gap, spread = _mean_std(gains)
        verdict = "met" if gap >= 5.0 else "NOT met"
        lines += ["", f"Heuristic − static final accuracy, paired by seed: {gap:+.2f} ± {spread:.2f} points "
                      f"(per seed: {', '.join(f'{g:+.1f}' for g in gains)}; goal ≥ +5: {verdict})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", default=["static", "random", "heuristic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None, help="env.max_epochs override (default: the config's)")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides, e.g. env.max_seeds=0")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=Path("bench/baselines.json"))
    parser.add_argument("--markdown", type=Path, default=Path("bench/baselines.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    overrides = list(args.override) + ([f"env.max_epochs={args.epochs}"] if args.epochs is not None else [])
    results: dict[str, dict[str, Any]] = {}
    for name in args.policies:
        cfg = compose_config(name, overrides)
        per_seed = []
        for seed in args.seeds:
            stats = run_episode(cfg, seed)
            per_seed.append({"seed": seed, **stats})
            print(f"{name:>9} seed {seed}: acc {stats['episode/final_accuracy']:6.2f}%  "
                  f"return {stats['episode/return']:7.3f}  fossilized {stats['episode/seeds_fossilized']:.0f}  "
                  f"pruned {stats['episode/seeds_pruned']:.0f}  ({stats['time/episode_s']:.1f} s)", flush=True)
        results[name] = {"env": OmegaConf.to_container(cfg.env, resolve=True), "per_seed": per_seed,
                         "summary": summarise(per_seed)}

    max_epochs = next(iter(results.values()))["env"]["max_epochs"]
    table = markdown_table(results, args.seeds, max_epochs)
    print()
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "baselines",
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.machine(),
        "seeds": args.seeds,
        "overrides": overrides,
        "results": results,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.markdown.write_text(table)
    print(f"wrote {args.output} and {args.markdown}")


if __name__ == "__main__":
    main()
