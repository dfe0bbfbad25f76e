"""Preallocated rollout storage for recurrent PPO, sampled as minibatches of whole env sequences.

One rollout is `num_steps` steps of each of `num_envs` envs. Each env's row is replayed by the
update as ONE recurrent sequence starting from that env's stored initial hidden state, so the policy
must see during the update exactly what it saw while acting:

* the stored observations are the normalised ones the policy acted on;
* the stored masks are the per-head masks used at sampling;
* a sequence may not contain an episode end before its last step, because `evaluate_actions`
  replays it without resetting the hidden state. The intended use is one rollout = one whole
  episode per env (T = episode length, initial hidden state zeros); a chunk of a longer episode
  also works if it is started with the hidden state carried over from the previous chunk.

A rollout may also record a guide's action at every step (the teacher's choice in the state this policy
visited, with the masks of that choice), for a PPO term that pulls the policy towards the teacher.

Lifecycle per rollout: `set_initial_hidden(hidden)` (starts the rollout) → `insert(step, …)` for
steps 0..T−1 in order → `set_bootstrap(value)` (only if some env's rollout is cut before its episode
ends: an episode end is terminal) → `compute_returns(gamma, gae_lambda)` → `minibatches(...)` once per
PPO epoch. Every step may run under `torch.inference_mode()`: data is
copied into the preallocated buffers, which stay normal tensors usable by autograd.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from tamiyo.ppo.gae import compute_gae

Hidden = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Minibatch:
    """Whole sequences of a subset of envs. Per-step tensors are `[b, T, ...]`."""

    env_indices: torch.Tensor  # [b] rows of the rollout in this minibatch
    obs: torch.Tensor  # [b, T, D] normalised observations the policy acted on
    actions: dict[str, torch.Tensor]  # head -> [b, T] long
    masks: dict[str, torch.Tensor]  # head -> [b, T, n] bool, the masks used at sampling
    log_probs: dict[str, torch.Tensor]  # head -> [b, T] log-probs at sampling
    values: torch.Tensor  # [b, T] values at sampling
    advantages: torch.Tensor  # [b, T] GAE advantages (not normalised)
    returns: torch.Tensor  # [b, T] value targets
    initial_hidden: Hidden  # (h, c), each [num_layers, b, hidden_dim]
    rollout_advantage_mean: torch.Tensor  # 0-d: mean of the advantages over the whole rollout
    rollout_advantage_std: torch.Tensor  # 0-d: their standard deviation over the whole rollout
    guide_actions: dict[str, torch.Tensor] | None = None  # head -> [b, T] the guide's actions, when recorded
    guide_masks: dict[str, torch.Tensor] | None = None  # head -> [b, T, n] the masks of the guide's actions


def _check_shape(name: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape}")


def _check_heads(name: str, given: Mapping[str, torch.Tensor], heads: Mapping[str, int]) -> None:
    if set(given) != set(heads):
        raise ValueError(f"{name} has heads {sorted(given)}, expected {sorted(heads)}")


class RolloutStorage:
    def __init__(
        self,
        num_envs: int,
        num_steps: int,
        obs_dim: int,
        head_sizes: Mapping[str, int],
        hidden_shape: tuple[int, int, int],
        device: torch.device | str = "cpu",
    ) -> None:
        for name, size in (("num_envs", num_envs), ("num_steps", num_steps), ("obs_dim", obs_dim)):
            if size < 1:
                raise ValueError(f"{name} must be ≥ 1, got {size}")
        if not head_sizes or any(n < 1 for n in head_sizes.values()):
            raise ValueError(f"head_sizes must name at least one head, each of size ≥ 1, got {dict(head_sizes)}")
        if len(hidden_shape) != 3 or hidden_shape[1] != num_envs or min(hidden_shape) < 1:
            raise ValueError(
                f"hidden_shape must be the LSTM state shape (num_layers, num_envs={num_envs}, hidden_dim), "
                f"got {hidden_shape}"
            )
        self.num_envs, self.num_steps, self.obs_dim = num_envs, num_steps, obs_dim
        self.head_sizes = dict(head_sizes)
        self.hidden_shape = tuple(hidden_shape)
        self.device = torch.device(device)

        steps = (num_envs, num_steps)

        def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            # Normal tensors even when built inside inference mode: the update backpropagates through them.
            with torch.inference_mode(False):
                return torch.zeros(shape, dtype=dtype, device=self.device)

        self.obs = zeros(*steps, obs_dim)
        self.masks = {h: zeros(*steps, n, dtype=torch.bool) for h, n in self.head_sizes.items()}
        self.actions = {h: zeros(*steps, dtype=torch.long) for h in self.head_sizes}
        self.log_probs = {h: zeros(*steps) for h in self.head_sizes}
        self.guide_actions = {h: zeros(*steps, dtype=torch.long) for h in self.head_sizes}
        self.guide_masks = {h: zeros(*steps, n, dtype=torch.bool) for h, n in self.head_sizes.items()}
        self.values = zeros(*steps)
        self.rewards = zeros(*steps)
        self.dones = zeros(*steps, dtype=torch.bool)
        self.initial_hidden: Hidden = (zeros(*self.hidden_shape), zeros(*self.hidden_shape))
        self.bootstrap_value = zeros(num_envs)
        self.advantages = zeros(*steps)
        self.returns = zeros(*steps)

        self._next_step: int | None = None  # None until a rollout is started
        self._guided_steps = 0  # steps of the current rollout that recorded a guide's action
        self._has_bootstrap = False
        self._has_advantages = False

    def set_initial_hidden(self, hidden: Hidden) -> None:
        """Start a new rollout whose sequences begin from `hidden` ((h, c), each `hidden_shape`; zeros at
        an episode start, the carried state for a chunk of a longer episode)."""
        if len(hidden) != 2:
            raise ValueError(f"initial hidden must be the LSTM pair (h, c), got {len(hidden)} tensors")
        names = ("initial hidden h", "initial hidden c")
        for name, tensor, stored in zip(names, hidden, self.initial_hidden, strict=True):
            _check_shape(name, tensor, self.hidden_shape)
            stored.copy_(tensor.detach())
        self._next_step = 0
        self._guided_steps = 0
        self._has_bootstrap = False
        self._has_advantages = False

    def insert(
        self,
        step: int,
        obs: torch.Tensor,
        masks: Mapping[str, torch.Tensor],
        actions: Mapping[str, torch.Tensor],
        log_probs: Mapping[str, torch.Tensor],
        value: torch.Tensor,
        reward: torch.Tensor,
        done: torch.Tensor,
        guide_actions: Mapping[str, torch.Tensor] | None = None,
        guide_masks: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Record step `step` for all envs: `obs [N, D]` as the policy saw it (normalised), per-head
        `masks [N, n]`, `actions [N]`, `log_probs [N]`, and `value`, `reward`, `done`, each `[N]`; with a guide,
        its per-head `guide_actions [N]` and `guide_masks [N, n]` at every step of the rollout or at none."""
        if self._next_step is None:
            raise RuntimeError("insert before set_initial_hidden(): each rollout starts from its initial hidden state")
        if self._next_step == self.num_steps:
            raise RuntimeError(f"the rollout already holds all {self.num_steps} steps; set_initial_hidden() starts one")
        if step != self._next_step:
            raise ValueError(f"insert got step {step}, expected step {self._next_step}")
        n = self.num_envs
        _check_shape("obs", obs, (n, self.obs_dim))
        for name, per_head in (("masks", masks), ("actions", actions), ("log_probs", log_probs)):
            _check_heads(name, per_head, self.head_sizes)
        for head, size in self.head_sizes.items():
            _check_shape(f"masks[{head!r}]", masks[head], (n, size))
            _check_shape(f"actions[{head!r}]", actions[head], (n,))
            _check_shape(f"log_probs[{head!r}]", log_probs[head], (n,))
        for name, tensor in (("value", value), ("reward", reward), ("done", done)):
            _check_shape(name, tensor, (n,))
        if (guide_actions is None) != (guide_masks is None):
            raise ValueError("guide_actions and guide_masks go together: give both or neither")
        if step > 0 and (guide_actions is not None) != (self._guided_steps == step):
            raise ValueError(f"a rollout records a guide's action at every step or at none; step {step} breaks that")
        if guide_actions is not None:
            _check_heads("guide_actions", guide_actions, self.head_sizes)
            _check_heads("guide_masks", guide_masks, self.head_sizes)
            for head, size in self.head_sizes.items():
                _check_shape(f"guide_masks[{head!r}]", guide_masks[head], (n, size))
                _check_shape(f"guide_actions[{head!r}]", guide_actions[head], (n,))
                self.guide_actions[head][:, step].copy_(guide_actions[head])
                self.guide_masks[head][:, step].copy_(guide_masks[head])
            self._guided_steps += 1

        self.obs[:, step].copy_(obs.detach())
        for head in self.head_sizes:
            self.masks[head][:, step].copy_(masks[head])
            self.actions[head][:, step].copy_(actions[head])
            self.log_probs[head][:, step].copy_(log_probs[head].detach())
        self.values[:, step].copy_(value.detach())
        self.rewards[:, step].copy_(reward.detach())
        self.dones[:, step].copy_(done)
        self._next_step += 1

    @property
    def guided(self) -> bool:
        """Whether the current rollout recorded a guide's action at its steps."""
        return self._guided_steps > 0

    def set_bootstrap(self, value: torch.Tensor) -> None:
        """V of the observation after the last step, from the hidden state after the last step `[N]`; read
        only for envs whose last step is not an episode end (a rollout cut before the horizon)."""
        if self._next_step != self.num_steps:
            raise RuntimeError(f"set_bootstrap before the rollout is full: {self._next_step}/{self.num_steps} steps")
        _check_shape("bootstrap value", value, (self.num_envs,))
        self.bootstrap_value.copy_(value.detach())
        self._has_bootstrap = True

    @property
    def cut_rows(self) -> torch.Tensor:
        """`[N]` bool: envs whose rollout stops before their episode ends (these need a bootstrap value)."""
        return ~self.dones[:, -1]

    def compute_returns(self, gamma: float, gae_lambda: float) -> None:
        """Fill `advantages` and `returns` by GAE. An episode end is terminal (no bootstrap); a row cut
        before its episode ends continues from the bootstrap value."""
        if self._next_step != self.num_steps:
            raise RuntimeError(
                f"compute_returns needs a full rollout, got {self._next_step or 0}/{self.num_steps} steps"
            )
        early_ends = self.dones[:, :-1].nonzero()
        if len(early_ends):
            env, step = (int(i) for i in early_ends[0])
            raise ValueError(
                f"env {env} ended an episode at step {step} before the last step {self.num_steps - 1}; rows are "
                "replayed without hidden-state resets, so an episode may only end at a rollout's last step"
            )
        advantages, returns = compute_gae(
            self.rewards, self.values, self.dones, self._bootstrap(), gamma=gamma, lam=gae_lambda
        )
        self.advantages.copy_(advantages)
        self.returns.copy_(returns)
        self._has_advantages = True

    def first_step_return(self, gamma: float) -> torch.Tensor:
        """`[N]` discounted return from each env's first step, on the stored (normalised) reward scale: the
        quantity V(s_0) estimates. A cut row adds its discounted bootstrap value."""
        _, returns = compute_gae(
            self.rewards, torch.zeros_like(self.rewards), self.dones, self._bootstrap(), gamma=gamma, lam=1.0
        )
        return returns[:, 0]

    def _bootstrap(self) -> torch.Tensor | None:
        if self._has_bootstrap:
            return self.bootstrap_value
        if self.cut_rows.any():
            env = int(self.cut_rows.nonzero()[0])
            raise RuntimeError(
                f"env {env}'s rollout stops before its episode ends: call set_bootstrap() before computing returns"
            )
        return None

    def minibatches(self, num_minibatches: int, generator: torch.Generator) -> Iterator[Minibatch]:
        """One epoch: a random partition of the envs into `num_minibatches` groups (sizes differ by at
        most one), each yielded with its whole sequences. `generator` is a CPU generator."""
        if not self._has_advantages:
            raise RuntimeError("minibatches needs compute_returns() first")
        if not 1 <= num_minibatches <= self.num_envs:
            raise ValueError(f"num_minibatches must be in [1, num_envs={self.num_envs}], got {num_minibatches}")
        order = torch.randperm(self.num_envs, generator=generator)
        h, c = self.initial_hidden
        mean, std = self.advantages.mean(), self.advantages.std(correction=0)
        guided = self.guided
        for cpu_indices in order.tensor_split(num_minibatches):
            idx = cpu_indices.to(self.device)
            yield Minibatch(
                env_indices=idx,
                obs=self.obs[idx],
                actions={head: t[idx] for head, t in self.actions.items()},
                masks={head: t[idx] for head, t in self.masks.items()},
                log_probs={head: t[idx] for head, t in self.log_probs.items()},
                values=self.values[idx],
                advantages=self.advantages[idx],
                returns=self.returns[idx],
                initial_hidden=(h[:, idx], c[:, idx]),
                rollout_advantage_mean=mean,
                rollout_advantage_std=std,
                guide_actions={head: t[idx] for head, t in self.guide_actions.items()} if guided else None,
                guide_masks={head: t[idx] for head, t in self.guide_masks.items()} if guided else None,
            )
