"""How harmful is each seed fault? Grows conv_heavy in r0c0 of a fresh host (ADVANCE whenever legal) with a
healthy seed, an unstable one of the given gain and a dead one, on a few env seeds, and prints the final
accuracy, the governor's rollbacks, the seed's contribution every third epoch and its last gradient ratio.

    python scripts/experiments/seed_faults.py --task mnist1d --gain 100 --seeds 3

The record of what it measured is scripts/experiments/seed_faults.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools

from tamiyo.core.actions import FactoredAction, LifecycleOp, blueprint_from_id
from tamiyo.core.legality import IllegalActionError
from tamiyo.env import blueprints
from tamiyo.env.config import EnvConfig
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task

WAIT = FactoredAction.wait()


def grow(env: SeedEnv, blueprint: str, epochs: int) -> list[dict]:
    infos = [env.step(dataclasses.replace(WAIT, op=LifecycleOp.GERMINATE, slot=0,
                                          blueprint=blueprint_from_id(blueprint))).info]
    for _ in range(epochs - 1):
        action = dataclasses.replace(WAIT, op=LifecycleOp.ADVANCE, slot=0)
        try:
            env.check(action)
        except IllegalActionError:
            action = WAIT
        infos.append(env.step(action).info)
    return infos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--blueprint", default="conv_heavy")
    parser.add_argument("--gain", type=float, default=100.0, help="the unstable fault's gain")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    blueprints.SEED_FAULTS["unstable"] = functools.partial(blueprints.UnstableSeed, gain=args.gain)
    task = make_task(args.task)
    for fault in ("healthy", "unstable", "dead"):
        config = EnvConfig(max_epochs=args.epochs, seed_failure_rate=0.0 if fault == "healthy" else 1.0,
                           seed_faults=("dead",) if fault == "healthy" else (fault,), max_seeds=0,
                           auto_advance=False)
        for seed in range(args.seeds):
            env = SeedEnv(task, config)
            env.reset(seed=seed, episode=0)
            infos = grow(env, args.blueprint, args.epochs)
            contributions = [round(i["counterfactuals"].get("r0c0", float("nan")), 1) for i in infos[::3]]
            ratio = env.model.slot("r0c0").report().gradient_ratio
            print(f"{fault} (gain {args.gain:g}) seed {seed}: final acc {infos[-1]['val_accuracy']:.1f}, "
                  f"rollbacks {sum(i['rolled_back'] for i in infos)}, contribution every 3rd epoch {contributions}, "
                  f"gradient ratio {ratio}")


if __name__ == "__main__":
    main()
