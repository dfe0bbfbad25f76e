"""Behaviour cloning of a teacher's actions: the loss of the imitation updates that may precede PPO.

On a rollout the teacher acted in, the policy learns to choose the teacher's factored action (the
negative log-likelihood of every head relevant to the teacher's op) and its critic learns the value of
the teacher's behaviour. PPO then starts from a controller that already acts like the teacher and a
critic calibrated to it, so its advantages measure what deviating from the teacher gains in each state.
An entropy bonus keeps the clone from becoming deterministic: a clone that never deviates from its teacher
gives PPO nothing to compare.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.ppo.config import per_head_coefficients
from tamiyo.ppo.loss import (
    EvaluatedActions,
    head_entropy_metrics,
    head_relevance,
    per_step_mean,
)
from tamiyo.ppo.storage import Minibatch


def teacher_nll(evaluated: EvaluatedActions) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean negative log-likelihood of the evaluated (teacher's) whole actions over the steps, and the mean
    probability of those actions (detached). Irrelevant heads carry log-prob 0, so the sum over heads is the
    log-probability of the whole action."""
    joint_log_prob = torch.stack([evaluated.log_probs[h].float() for h in HEAD_NAMES]).sum(dim=0)
    return -joint_log_prob.mean(), joint_log_prob.detach().exp().mean()


def imitation_loss(
    evaluated: EvaluatedActions,
    batch: Minibatch,
    value_coef: float,
    entropy_coef: float | Mapping[str, float] = 0.0,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The loss terms by name, for the caller to sum — `imitation` (NLL of the teacher's action), `value`
    (value_coef · ½ (V − return)²) and `entropy` (− Σ_h coef_h · entropy_h, each head's normalised entropy over its
    relevant steps, weighted as in `ppo_loss`), averaged over the steps — and detached metrics:
    `loss/{imitation,value,entropy}`, `imitation/teacher_prob` (mean probability the policy gives the teacher's
    whole action) and, per head, `entropy/<head>` and `relevant_steps/<head>` as in `ppo_loss`.
    """
    nll, teacher_prob = teacher_nll(evaluated)
    value_loss = 0.5 * (evaluated.value.float() - batch.returns).square().mean()
    relevant = head_relevance(batch.actions["op"])
    coef = per_head_coefficients(entropy_coef)
    entropy_loss = -sum(coef[h] * per_step_mean(evaluated.entropy[h].float(), relevant[h]) for h in HEAD_NAMES)
    terms = {"imitation": nll, "value": value_coef * value_loss, "entropy": entropy_loss}
    with torch.no_grad():
        metrics = {
            "loss/imitation": nll.detach(),
            "loss/value": value_loss.detach(),
            "loss/entropy": entropy_loss.detach(),
            "imitation/teacher_prob": teacher_prob,
        }
        metrics.update(head_entropy_metrics(evaluated.entropy, relevant))
    return terms, metrics


def guide_loss(advised: EvaluatedActions, coef: float) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The guide term after imitation, `coef` · NLL of the teacher's action in the states this policy visited
    (`advised`: the policy's evaluation of the teacher's actions there), and its metrics `loss/guide` (the NLL)
    and `guide/teacher_prob`."""
    nll, teacher_prob = teacher_nll(advised)
    return {"guide": coef * nll}, {"loss/guide": nll.detach(), "guide/teacher_prob": teacher_prob}
