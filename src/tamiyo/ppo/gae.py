"""Generalised advantage estimation over `[num_envs, num_steps]` rollouts."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: torch.Tensor | None,
    gamma: float = 0.995,
    lam: float = 0.98,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (`advantages + values`), each `[N, T]`.

    `dones[n, t]` means env n's episode ended after step t, and an episode end is terminal: the value
    after it is 0 and the advantage recursion restarts there. The episodes here end at their horizon,
    which is the end of the task (the final reward is paid there), so bootstrapping from the state after
    it would only feed the value head its own estimate of a state it is never trained on.

    `bootstrap_value [N]` is V of the observation (and hidden state) after the last step. It is used only
    by rows whose last step is not done, i.e. rollouts cut before the horizon; it may be None when every
    row ends its episode at the last step.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [num_envs, num_steps], got shape {tuple(rewards.shape)}")
    for name, tensor in (("values", values), ("dones", dones)):
        if tensor.shape != rewards.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(rewards.shape)} like rewards")
    num_envs, num_steps = rewards.shape
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    dones = dones.bool()
    if bootstrap_value is None:
        if not dones[:, -1].all():
            cut = int((~dones[:, -1]).nonzero()[0])
            raise ValueError(
                f"env {cut}'s rollout is cut before its episode ends, so it needs a bootstrap_value; none was given"
            )
        bootstrap_value = torch.zeros(num_envs, dtype=rewards.dtype, device=rewards.device)
    if tuple(bootstrap_value.shape) != (num_envs,):
        raise ValueError(f"bootstrap_value has shape {tuple(bootstrap_value.shape)}, expected ({num_envs},)")
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
