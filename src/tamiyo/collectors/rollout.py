"""Collect whole-episode rollouts: env → observation + masks → policy → factored action → env.

One call of `RolloutCollector.collect` runs one episode in every env of a `VectorEnv` with the
policy's current weights, fills a `RolloutStorage` with exactly what the policy acted on
(normalised observations, the masks used for sampling, actions, log-probs, values) plus the
(normalised) rewards, and returns per-episode statistics for logging. The episode's end is terminal;
a value bootstrap is stored only for envs whose episode has not ended at the last step collected.
The per-env infos of every step of the latest episode stay in `episode_infos` (a few small dicts per
step) for per-env evaluation and lifecycle pictures.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext

import torch

from tamiyo.core.actions import HEAD_NAMES, FactoredAction, LifecycleOp
from tamiyo.env.objective import Objective
from tamiyo.env.vector import VectorEnv
from tamiyo.policy.features import extract_features
from tamiyo.policy.masks import compute_masks
from tamiyo.policy.protocol import PolicyBundle
from tamiyo.ppo.normalizers import ObservationNormalizer, RewardNormalizer
from tamiyo.ppo.storage import Hidden, RolloutStorage


def actions_to_factored(actions: dict[str, torch.Tensor]) -> list[FactoredAction]:
    """Turn per-head action tensors `[N]` into one `FactoredAction` per env (one host transfer)."""
    rows = torch.stack([actions[name] for name in HEAD_NAMES], dim=1).tolist()
    return [FactoredAction.from_indices(row) for row in rows]


class RolloutCollector:
    """Runs episodes of a `VectorEnv` under a `PolicyBundle` and records them for PPO."""

    def __init__(
        self,
        env: VectorEnv,
        obs_normalizer: ObservationNormalizer,
        reward_normalizer: RewardNormalizer | None,
        autocast_dtype: torch.dtype | None = None,
        objective: Objective | None = None,  # logs `episode/objective` when given
    ) -> None:
        self.env = env
        self.objective = objective
        self.obs_normalizer = obs_normalizer
        self.reward_normalizer = reward_normalizer
        self.autocast_dtype = autocast_dtype
        self.episode_infos: list[list[dict]] = []  # [step][env] infos of the latest episode
        # Called with the number of env-epochs just completed (e.g. to advance a progress bar).
        self.on_env_epochs: Callable[[int], None] | None = None

    def _autocast(self, device: torch.device):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)

    def collect(
        self,
        policy: PolicyBundle,
        storage: RolloutStorage | None,
        seed: int,
        episode: int,
        deterministic: bool = False,
        learner_hidden: Hidden | None = None,
        guide: PolicyBundle | None = None,
        forbidden_ops: frozenset[LifecycleOp] = frozenset(),
    ) -> dict[str, float]:
        """Run one episode in every env; fill `storage` (if given) and return episode statistics.

        When `policy` is a teacher acting for another policy (imitation), `learner_hidden` is that learner's
        initial hidden state, which `storage` records as the start of its sequences. A `guide` (a teacher) is
        asked at every step what it would do in the state `policy` reached, and `storage` records its action.
        `forbidden_ops` are masked out wherever they would be legal (an op curriculum, `tamiyo.ppo.curriculum`).

        Not under inference mode as a whole: the envs train their host networks with autograd.
        """
        env = self.env
        obs = env.reset(seed=seed, episode_index=episode)
        hidden = policy.initial_hidden(env.num_envs)
        guide_hidden = None if guide is None else guide.initial_hidden(env.num_envs)
        if storage is not None:
            storage.set_initial_hidden(hidden if learner_hidden is None else learner_hidden)
        device = policy.device
        num_envs = env.num_envs
        returns = torch.zeros(num_envs, dtype=torch.float64)
        op_counts: Counter[str] = Counter()  # ops chosen
        effective_ops: Counter[str] = Counter()  # ops that took effect (passed their gate)
        component_sums: Counter[str] = Counter()
        last_infos: list[dict] = []
        self.episode_infos = []
        timings: Counter[str] = Counter()
        for step in range(env.max_epochs):
            started = time.perf_counter()
            with torch.inference_mode():
                features = extract_features(obs).to(device)
                if not self.obs_normalizer.frozen:
                    self.obs_normalizer.update(features)
                policy_obs = self.obs_normalizer.normalize(features)
                masks = compute_masks(obs, env.topology).to(device)
                if forbidden_ops:
                    masks = masks.without_ops(forbidden_ops)
                with self._autocast(device):
                    result = policy.get_action(policy_obs, hidden, masks, deterministic=deterministic, context=obs)
                    advice = None if guide is None else guide.get_action(
                        policy_obs, guide_hidden, masks, deterministic=True, context=obs
                    )
            actions = actions_to_factored(result.actions)
            timings["time/act_s"] += time.perf_counter() - started
            started = time.perf_counter()
            next_obs, rewards, dones, infos = env.step(actions)
            timings["time/env_step_s"] += time.perf_counter() - started
            if self.on_env_epochs is not None:
                self.on_env_epochs(num_envs)
            returns += rewards.double()
            self.episode_infos.append(infos)
            for action in actions:
                op_counts[action.op.name] += 1
            for info in infos:
                component_sums.update(info["reward_components"])
                timings["time/host_train_s"] += info["time_train_s"]
                timings["time/validate_s"] += info["time_validate_s"]
                if info["took_effect"]:
                    effective_ops[info["op"]] += 1
            if storage is not None:
                if self.reward_normalizer is not None:
                    self.reward_normalizer.update(rewards, dones)
                    rewards = self.reward_normalizer.normalize(rewards)
                storage.insert(
                    step,
                    obs=policy_obs,
                    masks=result.masks,
                    actions=result.actions,
                    log_probs=result.log_probs,
                    value=result.value,
                    reward=rewards,
                    done=dones,
                    guide_actions=None if advice is None else advice.actions,
                    guide_masks=None if advice is None else advice.masks,
                )
            if advice is not None:
                guide_hidden = advice.hidden
            obs, hidden, last_infos = next_obs, result.hidden, infos
        if storage is not None and storage.cut_rows.any():
            # Only a rollout cut before its episode ends continues from V; an episode end is terminal.
            with torch.inference_mode(), self._autocast(device):
                features = extract_features(obs).to(device)
                storage.set_bootstrap(policy.get_value(self.obs_normalizer.normalize(features), hidden))
        stats = self._summarise(returns, last_infos, op_counts, effective_ops, component_sums, num_envs)
        if self.objective is not None:
            judge = self.objective
            stats["episode/objective"] = sum(
                judge(float(info["val_accuracy"]), int(info["seed_params"]), int(info["host_params"]),
                      float(info["extra_compute"]))
                for info in last_infos
            ) / num_envs
        stats.update(timings)
        return stats

    @staticmethod
    def _summarise(
        returns: torch.Tensor,
        final_infos: list[dict],
        op_counts: Counter[str],
        effective_ops: Counter[str],
        component_sums: Counter[str],
        num_envs: int,
    ) -> dict[str, float]:
        def mean(key: str) -> float:
            return sum(float(info[key]) for info in final_infos) / num_envs

        stats = {
            "episode/return": float(returns.mean()),
            "episode/return_std": float(returns.std(unbiased=False)),
            "episode/final_accuracy": mean("val_accuracy"),
            "episode/host_params": mean("host_params"),
            "episode/seed_params": mean("seed_params"),
            "episode/seeds_germinated": effective_ops["GERMINATE"] / num_envs,
            "episode/seeds_fossilized": mean("seeds_fossilized"),
            "episode/seeds_pruned": effective_ops["PRUNE"] / num_envs,
            "episode/seeds_failed": mean("seeds_failed"),
        }
        for op in LifecycleOp:
            stats[f"ops/{op.name.lower()}"] = op_counts[op.name] / num_envs
        for name, total in component_sums.items():
            stats[f"reward/{name}"] = total / num_envs
        return stats
