"""Generalised advantage estimation over `[num_envs, num_steps]` rollouts."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: torch.Tensor,
    gamma: float = 0.995,
    lam: float = 0.98,
    truncated: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (`advantages + values`), each `[N, T]`.

    `dones[n, t]` means env n's episode ended after step t. `bootstrap_value [N]` is V of the
    observation (and hidden state) that follows the last step; it continues every sequence whose last
    step is not a true terminal.

    * `truncated=True` (time-limit episode ends, the normal case here): an episode end is not a
      terminal state, so its last step bootstraps from `bootstrap_value` instead of from zero. Only the
      rollout's final observation has a bootstrap value, so an episode end before the last step is an error.
    * `truncated=False`: dones are true terminals; the value after a done is 0 and the advantage
      recursion restarts there, so dones may appear anywhere.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [num_envs, num_steps], got shape {tuple(rewards.shape)}")
    for name, tensor in (("values", values), ("dones", dones)):
        if tensor.shape != rewards.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(rewards.shape)} like rewards")
    num_envs, num_steps = rewards.shape
    if tuple(bootstrap_value.shape) != (num_envs,):
        raise ValueError(f"bootstrap_value has shape {tuple(bootstrap_value.shape)}, expected ({num_envs},)")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    dones = dones.bool()
    if truncated:
        if dones[:, :-1].any():
            first = int(dones[:, :-1].any(dim=0).nonzero()[0])
            raise ValueError(
                f"truncated episode ends at step {first} before the last step {num_steps - 1}: "
                "only the final observation has a bootstrap value"
            )
        continues = torch.ones_like(rewards)
    else:
        continues = (~dones).to(rewards.dtype)

    advantages = torch.empty_like(rewards)
    next_value = bootstrap_value.to(rewards.dtype)
    next_advantage = torch.zeros_like(next_value)
    for t in reversed(range(num_steps)):
        delta = rewards[:, t] + gamma * continues[:, t] * next_value - values[:, t]
        next_advantage = delta + gamma * lam * continues[:, t] * next_advantage
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, advantages + values
