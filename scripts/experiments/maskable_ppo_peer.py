"""A peer learner: sb3-contrib's MaskablePPO on `tamiyo/SeedLifecycle-v0`, at the budget of a tamiyo experiment.

Trains for `--episodes` episodes (default 480, the 60 updates × 8 envs of `experiment=mnist1d_scratch`) with the
library's defaults except one rollout of `--rollout-episodes` whole episodes, illegal choices carried out as WAIT
(MaskablePPO's per-head masks can pair an op with a slot where it is illegal), then plays each held-out seed's
evaluation episode (episode index 1,000,000: the episode `scripts/compare.py` plays on that seed) with arg-max
actions. Writes into `--out`: `training_episodes.csv` (objective and return of every training episode),
`heldout_episodes.csv` (one row per held-out seed, columns as compare's `comparison_episodes.csv`) and, with
`--pair-with <comparison_episodes.csv>`, `paired.csv`: the peer minus each controller of that comparison, paired
by seed, mean with 95 % t interval. Needs `pip install -e .[sb3]`.

    python scripts/experiments/maskable_ppo_peer.py --auto-advance --out ~/runs/peer \\
        --pair-with <compare run>/comparison_episodes.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch
from scipy import stats

import tamiyo  # noqa: F401  (registers the Gym env)
from tamiyo.env.gym_env import ENV_ID
from tamiyo.env.objective import Objective
from tamiyo.evaluation.runner import EVAL_EPISODE_BASE

LABEL = "MaskablePPO (sb3-contrib)"
EPISODE_COLUMNS = ["policy", "seed", "episode", "env", "task", "host_width", "episode_return", "objective",
                   "final_accuracy", "host_params", "added_params", "seeds_germinated", "seeds_pruned"]


class EpisodeLog(gymnasium.Wrapper):
    """Keeps one row per finished episode: its return and the objective of its final network."""

    def __init__(self, env: gymnasium.Env, objective: Objective) -> None:
        super().__init__(env)
        self.objective = objective
        self.rows: list[dict] = []
        self._return, self._ops = 0.0, {"GERMINATE": 0, "PRUNE": 0}
        self._reset_info: dict = {}

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._return, self._ops, self._reset_info = 0.0, {"GERMINATE": 0, "PRUNE": 0}, info
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if info["op"] in self._ops and info["took_effect"]:
            self._ops[info["op"]] += 1
        if terminated or truncated:
            accuracy, host, added = float(info["val_accuracy"]), int(info["host_params"]), int(info["seed_params"])
            self.rows.append({
                "policy": LABEL, "seed": self.unwrapped._base_seed, "episode": self._reset_info["episode"], "env": 0,
                "task": info["task"], "host_width": info["host_width"], "episode_return": round(self._return, 4),
                "objective": self.objective(accuracy, added, host, float(info["extra_compute"])),
                "final_accuracy": accuracy, "host_params": host, "added_params": added,
                "seeds_germinated": self._ops["GERMINATE"], "seeds_pruned": self._ops["PRUNE"],
            })
        return obs, reward, terminated, truncated, info


def make_env(args: argparse.Namespace) -> EpisodeLog:
    task = args.task[0] if len(args.task) == 1 else args.task
    env = gymnasium.make(ENV_ID, task=task, max_epochs=args.max_epochs, max_seeds=args.max_seeds,
                         host_widths=args.host_widths, seed_failure_rate=args.seed_failure_rate,
                         reward="objective", auto_advance=args.auto_advance, auto_prune_dead=args.auto_prune_dead,
                         illegal_action="wait")
    return EpisodeLog(env, Objective(param_weight=args.param_weight))


def write_rows(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def paired(peer: list[dict], comparison: Path) -> list[dict]:
    """The peer minus each controller of a comparison's episodes, paired by seed (episode 0, env 0 there)."""
    mine = {int(row["seed"]): float(row["objective"]) for row in peer}
    theirs: dict[str, dict[int, float]] = {}
    with comparison.open() as handle:
        for row in csv.DictReader(handle):
            if int(row["episode"]) == 0 and int(row["env"]) == 0:
                theirs.setdefault(row["policy"], {})[int(row["seed"])] = float(row["objective"])
    table = []
    for policy, objectives in theirs.items():
        seeds = sorted(set(objectives) & set(mine))
        if len(seeds) < 2:
            continue
        diffs = np.array([mine[s] - objectives[s] for s in seeds])
        half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs))
        table.append({"controller": policy, "n": len(seeds), "controller_objective": np.mean(
            [objectives[s] for s in seeds]).round(2), "peer_minus_controller": diffs.mean().round(2),
            "ci95": round(float(half), 2)})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the CSVs and the model")
    parser.add_argument("--episodes", type=int, default=480, help="training episodes (the budget)")
    parser.add_argument("--rollout-episodes", type=int, default=8, help="whole episodes per PPO rollout")
    parser.add_argument("--auto-advance", action="store_true", help="env.auto_advance (seeds advance on their own)")
    parser.add_argument("--task", nargs="+", default=["mnist1d"], help="a task, or several drawn per episode")
    parser.add_argument("--host-widths", type=float, nargs="+", default=[1.0], help="widths drawn per episode")
    parser.add_argument("--seed-failure-rate", type=float, default=0.0, help="chance a germinated seed fails")
    parser.add_argument("--auto-prune-dead", action="store_true", help="env.auto_prune_dead (the env prunes dead "
                        "seeds)")
    parser.add_argument("--max-epochs", type=int, default=25)
    parser.add_argument("--max-seeds", type=int, default=3)
    parser.add_argument("--param-weight", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0, help="training seed (env base seed and sb3's)")
    parser.add_argument("--heldout", default="7000-7019", help="held-out seeds, first-last")
    parser.add_argument("--pair-with", type=Path, default=None, help="a comparison_episodes.csv to pair with")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (tamiyo's torch_threads; the thread count changes the host's arithmetic)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sb3_contrib import MaskablePPO  # optional dependency (.[sb3])

    args.out.mkdir(parents=True, exist_ok=True)
    env = make_env(args)
    env.reset(seed=args.seed)
    steps = args.rollout_episodes * args.max_epochs
    batch = max(2, steps // 4)  # four minibatches, as experiment=mnist1d_scratch (and never one sample)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=steps, batch_size=batch, seed=args.seed, verbose=0)
    started = time.perf_counter()
    model.learn(total_timesteps=args.episodes * args.max_epochs)
    minutes = (time.perf_counter() - started) / 60
    model.save(args.out / "maskable_ppo.zip")
    write_rows(env.rows, args.out / "training_episodes.csv")
    fifth = max(1, len(env.rows) // 5)
    first, last = ([float(r["objective"]) for r in part] for part in (env.rows[:fifth], env.rows[-fifth:]))
    print(f"trained {len(env.rows)} episodes in {minutes:.1f} min; training objective {np.mean(first):.2f} over the "
          f"first fifth, {np.mean(last):.2f} over the last")

    low, high = (int(s) for s in args.heldout.split("-"))
    held = make_env(args)
    for seed in range(low, high + 1):
        obs, _ = held.reset(seed=seed, options={"episode": EVAL_EPISODE_BASE})
        done = False
        while not done:
            action, _ = model.predict(obs, action_masks=held.unwrapped.action_masks(), deterministic=True)
            obs, _, terminated, truncated, _ = held.step(action)
            done = terminated or truncated
    write_rows(held.rows, args.out / "heldout_episodes.csv")
    print(f"held out on seeds {low}-{high}: objective {np.mean([r['objective'] for r in held.rows]):.2f}")
    if args.pair_with is not None:
        table = paired(held.rows, args.pair_with)
        write_rows(table, args.out / "paired.csv")
        for row in table:
            print(f"peer − {row['controller']}: {row['peer_minus_controller']:+.2f} ± {row['ci95']:.2f} "
                  f"(n {row['n']}; {row['controller']} {row['controller_objective']:.2f})")


if __name__ == "__main__":
    main()
