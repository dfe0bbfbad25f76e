"""Drive `tamiyo/SeedLifecycle-v0` as any Gymnasium environment: a plain loop with a masked random
policy, then `gymnasium.vector` with two envs in worker processes, and optionally a short
sb3-contrib `MaskablePPO` run (`pip install -e .[sb3]`).

    python scripts/gym_example.py [--max-epochs 5] [--train-subset 1000] [--maskable-ppo-steps 64]
"""

from __future__ import annotations

import argparse

import gymnasium
import numpy as np

import tamiyo  # noqa: F401  (registers tamiyo/SeedLifecycle-v0)
from tamiyo.core.actions import HEAD_NAMES, LifecycleOp


def masked_random_action(obs: dict[str, np.ndarray], rng: np.random.Generator, nvec: np.ndarray) -> np.ndarray:
    """A legal action from the observation alone: an op legal somewhere, then a slot where that op is legal."""
    legal = obs["legal_ops"].astype(bool)  # [slots, ops]
    op = rng.choice(np.flatnonzero(legal.any(axis=0)))
    action = np.array([rng.integers(n) for n in nvec])
    action[HEAD_NAMES.index("op")] = op
    action[HEAD_NAMES.index("slot")] = rng.choice(np.flatnonzero(legal[:, op]))
    action[HEAD_NAMES.index("blueprint")] = rng.choice(np.flatnonzero(obs["legal_blueprints"]))
    return action


def plain_loop(options: dict[str, object]) -> None:
    env = gymnasium.make("tamiyo/SeedLifecycle-v0", **options)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(masked_random_action(obs, rng, env.action_space.nvec))
        total += reward
        done = terminated or truncated
        print(f"epoch {info['epoch']:>2}: {info['op']:<16} val acc {info['val_accuracy']:5.1f}%  "
              f"stages {info['slot_stages']}")
    print(f"plain loop: return {total:.2f}, final validation accuracy {info['val_accuracy']:.1f}%")
    env.close()


def vector_loop(options: dict[str, object]) -> None:
    # Worker processes are started with "spawn", hence the `if __name__ == "__main__"` guard below.
    envs = gymnasium.make_vec("tamiyo/SeedLifecycle-v0", num_envs=2, vectorization_mode="async",
                              vector_kwargs={"context": "spawn"}, **options)
    envs.reset(seed=0)
    wait = np.zeros((2, len(HEAD_NAMES)), dtype=np.int64)
    wait[:, HEAD_NAMES.index("op")] = LifecycleOp.WAIT
    returns = np.zeros(2)
    for _ in range(int(options["max_epochs"])):
        _, rewards, _, _, infos = envs.step(wait)
        returns += rewards
    print(f"gymnasium.vector (2 async envs, WAIT only): returns {np.round(returns, 2).tolist()}, "
          f"final validation accuracy {np.round(infos['val_accuracy'], 1).tolist()}")
    envs.close()


def maskable_ppo(options: dict[str, object], steps: int) -> None:
    """MaskablePPO reads `action_masks()` (independent per-head masks), so it can still pair an op with
    a slot where that op is illegal: `illegal_action="wait"` turns such a choice into WAIT."""
    from sb3_contrib import MaskablePPO  # optional dependency: imported only when asked for

    env = gymnasium.make("tamiyo/SeedLifecycle-v0", illegal_action="wait", **options)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=steps, batch_size=steps, n_epochs=1, seed=0, verbose=0)
    model.learn(total_timesteps=steps)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks(), deterministic=True)
    print(f"MaskablePPO: trained {steps} steps; first action of a new episode {action.tolist()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--train-subset", type=int, default=1000)
    parser.add_argument("--maskable-ppo-steps", type=int, default=0, help="0 skips the MaskablePPO example")
    args = parser.parse_args()
    options = {"task": "mnist1d", "max_epochs": args.max_epochs, "train_subset": args.train_subset, "reward": "shaped"}
    plain_loop(options)
    vector_loop(options)
    if args.maskable_ppo_steps:
        maskable_ppo(options, args.maskable_ppo_steps)


if __name__ == "__main__":
    main()
