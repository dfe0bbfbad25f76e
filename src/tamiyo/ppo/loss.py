"""The PPO loss for the factored action space.

Head relevance comes from the stored op action, through the policy's own relevance helper.
Irrelevant heads carry log-prob 0 and entropy 0 in both the rollout and the re-evaluation, so they
drop out of the joint log-ratio by themselves.

Weights: the policy gradient weights every step by Â/(b·T). A head's entropy bonus (and, with
`ratio=per_head`, its surrogate) is summed over its relevant steps with the same 1/(b·T) per step, so
each relevant step of every head is pulled by `coef` on the policy gradient's scale. Averaging over
the head's n_h relevant steps instead would multiply that pull by b·T/n_h: a head relevant on 6 of
50 steps would be pushed towards uniform 8× harder than op, and harder still as the policy learns to
wait. The logged per-head entropies and clip fractions are still means over the relevant steps, which
is what they describe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

import torch

from tamiyo.core.actions import HEAD_INDEX, HEAD_NAMES
from tamiyo.policy.relevance import HeadRelevance
from tamiyo.ppo.config import PPOOptions, per_head_coefficients
from tamiyo.ppo.storage import Minibatch

_ADVANTAGE_EPS = 1e-8


class EvaluatedActions(Protocol):
    """What the loss reads from `evaluate_actions` (the policy network's `EvalResult`)."""

    @property
    def log_probs(self) -> dict[str, torch.Tensor]: ...  # head -> [b, T]

    @property
    def entropy(self) -> dict[str, torch.Tensor]: ...  # head -> [b, T], normalised to [0, 1]

    @property
    def value(self) -> torch.Tensor: ...  # [b, T]


def entropy_coefficients(
    step: int,
    total_steps: int,
    start: float | Mapping[str, float],
    end: float | Mapping[str, float] | None,
) -> dict[str, float]:
    """Per-head coefficients linearly annealed from `start` (step 0) to `end` (step ≥ total_steps);
    `end=None` keeps `start` throughout."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be ≥ 1, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be ≥ 0, got {step}")
    first = per_head_coefficients(start)
    last = first if end is None else per_head_coefficients(end)
    progress = min(1.0, step / total_steps)
    return {head: first[head] + progress * (last[head] - first[head]) for head in HEAD_NAMES}


def head_relevance(op: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-head bool masks `[...]` of the steps where each head is relevant, given the op actions `[...]`."""
    relevant = HeadRelevance(op).relevant  # [..., head], the same rule the policy samples and evaluates with
    return {head: relevant[..., HEAD_INDEX[head]] for head in HEAD_NAMES}


def per_step_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over the masked steps divided by the number of ALL steps: every relevant step weighs 1/(b·T)."""
    return torch.where(mask, x, 0.0).mean()


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked steps; 0 when there are none."""
    return torch.where(mask, x, 0.0).sum() / mask.sum().clamp(min=1)


def masked_mean_or_nan(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked steps for logging; NaN when there are none (no data, not a zero)."""
    return torch.where(mask.any(), _masked_mean(x, mask), math.nan)


def _clipped_surrogate_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    ratio = log_ratio.exp()
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)


def max_logprob_gap(log_probs: Mapping[str, torch.Tensor], stored: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The largest |recomputed − stored| log-probability over heads and steps (detached): 0 while on policy."""
    return torch.stack([(log_probs[h].detach().float() - stored[h]).abs().max() for h in log_probs]).max()


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """1 − Var(returns − values) / Var(returns); NaN when the returns are constant."""
    returns_var = returns.var(correction=0)
    ev = 1 - (returns - values).var(correction=0) / returns_var
    return torch.where(returns_var > 0, ev, math.nan).detach()


def ppo_loss(
    evaluated: EvaluatedActions,
    batch: Minibatch,
    cfg: PPOOptions,
    entropy_coef: float | Mapping[str, float],
    train_actor: bool = True,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The loss terms by name, for the caller to sum — `policy` (the clipped surrogate), `value` (value_coef · ½
    squared error) and `entropy` (− Σ_h coef_h · entropy_h, where `entropy_h` is head h's entropy summed over its
    relevant steps and divided by all b·T steps) — and detached 0-d tensor metrics. With `train_actor=False` only
    the `value` term (a critic warm-up); the metrics are the same.

    Metrics: `loss/{policy,value,entropy}` (`loss/value` unweighted, `loss/entropy` the signed term), `approx_kl`
    (k3, joint), `ratio/{mean,min,max}` and `clip_fraction/joint` of the joint
    ratio, `advantage/{mean,std}` before normalisation, and per head `clip_fraction/<head>`,
    `entropy/<head>` (means over the head's relevant steps; NaN when it has none in this minibatch)
    and `relevant_steps/<head>` (the weight to average those over minibatches with).
    """
    for name, per_head in (("evaluated log_probs", evaluated.log_probs), ("evaluated entropy", evaluated.entropy),
                           ("minibatch log_probs", batch.log_probs)):
        if set(per_head) != set(HEAD_NAMES):
            raise ValueError(f"{name} has heads {sorted(per_head)}, expected {list(HEAD_NAMES)}")
    entropy_coef = per_head_coefficients(entropy_coef)
    relevant = head_relevance(batch.actions["op"])

    raw_advantages = batch.advantages.float()
    advantages = raw_advantages
    if cfg.advantage_normalization == "rollout":
        advantages = (advantages - batch.rollout_advantage_mean) / (batch.rollout_advantage_std + _ADVANTAGE_EPS)
    elif cfg.advantage_normalization == "minibatch":
        advantages = (advantages - advantages.mean()) / (advantages.std(correction=0) + _ADVANTAGE_EPS)

    # Log-ratios in float32 even when the forward pass ran under reduced-precision autocast.
    head_log_ratio = {h: evaluated.log_probs[h].float() - batch.log_probs[h].float() for h in HEAD_NAMES}
    joint_log_ratio = torch.stack(list(head_log_ratio.values())).sum(dim=0)
    if cfg.ratio == "joint":
        policy_loss = _clipped_surrogate_loss(joint_log_ratio, advantages, cfg.clip_ratio).mean()
    else:
        policy_loss = torch.stack([
            per_step_mean(_clipped_surrogate_loss(head_log_ratio[h], advantages, cfg.clip_ratio), relevant[h])
            for h in HEAD_NAMES
        ]).sum()

    new_values = evaluated.value.float()
    squared_error = (new_values - batch.returns).square()
    if cfg.value_clip is not None:
        clipped_values = batch.values + (new_values - batch.values).clamp(-cfg.value_clip, cfg.value_clip)
        squared_error = torch.max(squared_error, (clipped_values - batch.returns).square())
    value_loss = 0.5 * squared_error.mean()  # the ½ makes the gradient the plain error; value_coef weighs it

    head_entropy = {h: per_step_mean(evaluated.entropy[h].float(), relevant[h]) for h in HEAD_NAMES}
    entropy_loss = -sum(entropy_coef[h] * head_entropy[h] for h in HEAD_NAMES)

    value_term = cfg.value_coef * value_loss
    terms = {"policy": policy_loss, "value": value_term, "entropy": entropy_loss} if train_actor else \
        {"value": value_term}

    with torch.no_grad():
        joint_ratio = joint_log_ratio.exp()
        metrics = {
            "loss/policy": policy_loss.detach(),
            "loss/value": value_loss.detach(),
            "loss/entropy": entropy_loss.detach(),
            # k3 estimator of KL(old ‖ new) for the whole factored action.
            "approx_kl": ((joint_ratio - 1) - joint_log_ratio).mean(),
            "ratio/mean": joint_ratio.mean(),
            "ratio/min": joint_ratio.min(),
            "ratio/max": joint_ratio.max(),
            "clip_fraction/joint": ((joint_ratio - 1).abs() > cfg.clip_ratio).float().mean(),
            "advantage/mean": raw_advantages.mean(),
            "advantage/std": raw_advantages.std(correction=0),
        }
        for h in HEAD_NAMES:
            clipped = (head_log_ratio[h].exp() - 1).abs() > cfg.clip_ratio
            metrics[f"clip_fraction/{h}"] = masked_mean_or_nan(clipped.float(), relevant[h])
        metrics.update(head_entropy_metrics(evaluated.entropy, relevant))
    return terms, metrics


def head_entropy_metrics(
    entropy: Mapping[str, torch.Tensor], relevant: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Per head, `entropy/<head>` (mean over its relevant steps, NaN when none) and `relevant_steps/<head>` (the
    weight to average it over minibatches with); detached when called under no_grad."""
    metrics = {}
    for h in HEAD_NAMES:
        metrics[f"entropy/{h}"] = masked_mean_or_nan(entropy[h].float(), relevant[h])
        metrics[f"relevant_steps/{h}"] = relevant[h].sum().float()
    return metrics
