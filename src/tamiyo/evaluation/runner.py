"""Evaluate a controller: run whole episodes without learning and record one result per env-episode.

A learned controller is rebuilt from a training checkpoint (its `hyper_parameters` name the bundle,
slots, topology and feature width; `policy_net.*` are its weights; the DataModule state holds the
observation normaliser statistics, which are restored *frozen* so evaluation never shifts them).
Baselines are built from their name as in training.

Evaluation seeds never replay a training episode: an env's randomness derives from
(seed, env index, episode index), training uses episode indices 0, 1, 2, … (one per PPO update), and
evaluation episode k of any seed uses episode index `EVAL_EPISODE_BASE + k`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tamiyo.collectors.rollout import RolloutCollector
from tamiyo.core.seeding import derive_seed
from tamiyo.core.slots import SlotConfig
from tamiyo.env.objective import Objective
from tamiyo.env.vector import VectorEnv
from tamiyo.evaluation.lifecycle import EpisodeLifecycle, LifecycleTrace, episode_lifecycle
from tamiyo.policy import create_policy
from tamiyo.policy.features import obs_dim
from tamiyo.policy.protocol import PolicyBundle
from tamiyo.ppo.normalizers import ObservationNormalizer
from tamiyo.training.checkpoints import check_op_conditioning, load_checkpoint

# Far beyond any training run's number of updates, so evaluation episodes are always unseen ones.
EVAL_EPISODE_BASE = 1_000_000


class CheckpointContentError(ValueError):
    """A checkpoint file that lacks what evaluation needs, or does not fit the configured env."""


@dataclass(frozen=True)
class EvalPolicy:
    """A controller ready to evaluate: the bundle, its frozen normaliser, and how it picks actions."""

    name: str  # registry name of the bundle
    label: str  # how tables name it: the name, or "learned (<name>)" for a checkpoint
    bundle: PolicyBundle
    obs_normalizer: ObservationNormalizer
    deterministic: bool
    slot_ids: tuple[str, ...]
    topology: str


@dataclass(frozen=True)
class EpisodeResult:
    """One env-episode of an evaluation (accuracy in percent, counts of ops that took effect)."""

    policy: str
    seed: int
    episode: int
    env: int
    kind: str  # the kind of episode drawn (tamiyo.env.kinds; "<task> ×<width>" unless env.kinds names them)
    task: str  # the task the episode drew (an env may mix several)
    host_width: float  # the host width multiplier the episode drew
    episode_return: float
    objective: float  # final accuracy minus the price of the added params (env/objective.py)
    final_accuracy: float
    host_params: int
    added_params: int  # parameters of the seeds in the final network
    total_params: int
    seeds_germinated: int
    seeds_fossilized: int
    seeds_pruned: int
    seeds_failed: int  # germinated seeds that broke (env.seed_failure_rate), kept or not
    train_gflops: float  # training compute of the episode (forward + backward matmuls and convolutions)
    extra_compute: float  # training compute beyond the static host's, as a fraction of its episode's (objective)
    architecture: str  # the final network's seeds as fossil specs, "slot=blueprint/algorithm[@alpha][!fault]"


@dataclass(frozen=True)
class Evaluation:
    results: list[EpisodeResult]
    lifecycle: LifecycleTrace  # env 0 of the first episode of every seed


def load_checkpoint_policy(path: Path, deterministic: bool = True) -> EvalPolicy:
    """The controller a training checkpoint holds, on CPU, with its normaliser statistics frozen."""
    checkpoint = load_checkpoint(path)  # refuses missing, corrupt and foreign files in one line
    hparams: dict[str, Any] = checkpoint["hyper_parameters"]
    policy_cfg = dict(hparams["policy"])
    name = policy_cfg.pop("name")
    slot_config = SlotConfig(tuple(hparams["slot_ids"]))
    bundle = create_policy(
        name, slot_config=slot_config, topology=hparams["topology"], obs_dim=hparams["obs_dim"], **policy_cfg
    )
    prefix = "policy_net."
    check_op_conditioning(checkpoint["state_dict"], bundle, prefix)
    bundle.load_state_dict({k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)})
    normalizer = ObservationNormalizer(hparams["obs_dim"], clip=hparams["ppo"]["obs_clip"], frozen=True)
    normalizer.load_state_dict(checkpoint["RolloutDataModule"]["obs_normalizer"])
    return EvalPolicy(
        name=name,
        label=f"learned ({name})",
        bundle=bundle,
        obs_normalizer=normalizer,
        deterministic=deterministic,
        slot_ids=slot_config.slot_ids,
        topology=hparams["topology"],
    )


def baseline_policy(name: str, options: dict[str, Any], env: VectorEnv, obs_dim: int, obs_clip: float) -> EvalPolicy:
    """A fixed (non-learned) controller built from its registry name, for the env's slots and topology."""
    bundle = create_policy(name, slot_config=env.slot_config, topology=env.topology, obs_dim=obs_dim, **options)
    if bundle.is_trainable:
        raise ValueError(f"policy {name!r} is learned: evaluate it from a training checkpoint (ckpt_path=...)")
    return EvalPolicy(
        name=name,
        label=name,
        bundle=bundle,
        # Fixed bundles ignore the normalised features; a frozen, empty normaliser keeps runs side-effect free.
        obs_normalizer=ObservationNormalizer(obs_dim, clip=obs_clip, frozen=True),
        deterministic=True,
        slot_ids=env.slot_config.slot_ids,
        topology=env.topology,
    )


def check_fits(policy: EvalPolicy, env: VectorEnv) -> None:
    """Refuse a controller built for other slots, another host topology or another observation than the env's."""
    if policy.slot_ids != env.slot_config.slot_ids:
        raise CheckpointContentError(
            f"{policy.label} was trained with slots {list(policy.slot_ids)}, the env has "
            f"{list(env.slot_config.slot_ids)}: pass the training run's env options"
        )
    if policy.topology != env.topology:
        raise CheckpointContentError(
            f"{policy.label} was trained on a {policy.topology!r} host, the env's task has a {env.topology!r} host"
        )
    width = obs_dim(env.slot_config.num_slots)
    if policy.bundle.obs_dim != width:
        raise CheckpointContentError(
            f"{policy.label} observes {policy.bundle.obs_dim} feature columns, this tamiyo's observation has "
            f"{width}: a checkpoint from before columns were added can start a training run (init_from), "
            "not be evaluated as it is"
        )


def episode_results(
    step_infos: Sequence[Sequence[dict]], policy: str, seed: int, episode: int, objective: Objective
) -> list[EpisodeResult]:
    """One result per env from the per-step infos of one episode (`step_infos[step][env]`)."""
    results = []
    for env in range(len(step_infos[0])):
        steps = [step[env] for step in step_infos]
        final = steps[-1]

        def effective(op: str, steps: list[dict] = steps) -> int:
            return sum(1 for info in steps if info["op"] == op and info["took_effect"])

        accuracy, host, added = float(final["val_accuracy"]), int(final["host_params"]), int(final["seed_params"])
        results.append(EpisodeResult(
            policy=policy,
            seed=seed,
            episode=episode,
            env=env,
            kind=str(final["kind"]),
            task=str(final["task"]),
            host_width=float(final["host_width"]),
            episode_return=sum(float(info["reward"]) for info in steps),
            objective=objective(accuracy, added, host, float(final["extra_compute"])),
            final_accuracy=accuracy,
            host_params=host,
            added_params=added,
            total_params=host + added,
            seeds_germinated=effective("GERMINATE"),
            seeds_fossilized=int(final["seeds_fossilized"]),
            seeds_pruned=effective("PRUNE"),
            seeds_failed=int(final["seeds_failed"]),
            train_gflops=float(final["train_flops"]) / 1e9,
            extra_compute=float(final["extra_compute"]),
            architecture=" ".join(f"{sid}={seed}" for sid, seed in sorted(final["slot_seeds"].items())),
        ))
    return results


def evaluate(
    policy: EvalPolicy,
    env: VectorEnv,
    seeds: Sequence[int],
    episodes: int,
    objective: Objective,
    on_episode: Callable[[], None] | None = None,
    first_episode: int = 0,
) -> Evaluation:
    """Run episodes `first_episode` … `first_episode + episodes − 1` of every env for each seed;
    `on_episode()` is called after each (progress)."""
    check_fits(policy, env)
    if episodes < 1:
        raise ValueError(f"episodes must be ≥ 1, got {episodes}")
    collector = RolloutCollector(env, policy.obs_normalizer, reward_normalizer=None)
    results: list[EpisodeResult] = []
    lifecycles: list[EpisodeLifecycle] = []
    for seed in seeds:
        for episode in range(first_episode, first_episode + episodes):
            index = EVAL_EPISODE_BASE + episode
            # Sampled actions (random bundle, sampled learned policy) draw from the global RNG.
            torch.manual_seed(derive_seed(seed, index, 0, 1))
            collector.collect(policy.bundle, None, seed=seed, episode=index, deterministic=policy.deterministic)
            results += episode_results(collector.episode_infos, policy.label, seed, episode, objective)
            if episode == first_episode:
                label = f"{policy.label}: seed {seed}, episode {episode}, env 0"
                lifecycles.append(episode_lifecycle(collector.episode_infos, 0, label))
            if on_episode is not None:
                on_episode()
    return Evaluation(results, LifecycleTrace(slot_ids=list(env.slot_config.slot_ids), episodes=lifecycles))
