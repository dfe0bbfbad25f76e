"""Helpers of distributed (DDP) runs: gathering values from all ranks and merging what each rank
measured, so every rank — and the checkpoint rank 0 writes — holds the statistics of the whole run."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from tamiyo.ppo.normalizers import RunningMeanStd

T = TypeVar("T")


def gather_from_ranks(value: T) -> list[T]:
    """`value` from every rank of the process group, in rank order; `[value]` when there is no group."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def _added_since(start: dict[str, Any], end: dict[str, Any]) -> tuple[float, torch.Tensor, torch.Tensor]:
    """(count, mean, variance) of the samples folded into statistics `start` to reach `end`
    (Chan et al.'s merge, inverted)."""
    count_a, mean_a, var_a = float(start["count"]), start["mean"], start["var"]
    count, mean, var = float(end["count"]), end["mean"], end["var"]
    count_b = count - count_a
    if count_b == 0:
        return 0.0, torch.zeros_like(mean_a), torch.zeros_like(var_a)
    mean_b = (mean * count - mean_a * count_a) / count_b
    m2_b = var * count - var_a * count_a - (mean_b - mean_a).square() * (count_a * count_b / count)
    return count_b, mean_b, m2_b.clamp(min=0.0) / count_b  # rounding can leave a tiny negative M2


def merge_rank_statistics(stats: RunningMeanStd, start: dict[str, Any], ends: list[dict[str, Any]]) -> None:
    """Set `stats` to `start` plus every rank's samples since `start`.

    Each rank started the rollout from the same `start` and ended at its own state in `ends`; merging
    the ranks' contributions in rank order gives every rank the same statistics, those of one
    normaliser that had seen the samples of all ranks.
    """
    merged = RunningMeanStd(stats.shape, stats.epsilon)
    merged.load_state_dict(start)
    for end in ends:
        merged.merge(*_added_since(start, end))
    stats.load_state_dict(merged.state_dict())


def reduce_episode_stats(per_rank: list[dict[str, float]]) -> dict[str, float]:
    """The episode statistics of all envs of the run from each rank's.

    Every rank runs the same number of envs, so the mean of the ranks' means is the mean over all
    envs; the return's standard deviation is pooled. One rank's statistics are returned unchanged.
    """
    if len(per_rank) == 1:
        return per_rank[0]
    keys = per_rank[0].keys()
    for rank, stats in enumerate(per_rank):
        if stats.keys() != keys:
            raise RuntimeError(
                f"rank {rank} reported episode statistics {sorted(stats)}, rank 0 reported {sorted(keys)}"
            )
    reduced = {key: sum(stats[key] for stats in per_rank) / len(per_rank) for key in keys}
    second_moment = sum(s["episode/return_std"] ** 2 + s["episode/return"] ** 2 for s in per_rank) / len(per_rank)
    reduced["episode/return_std"] = math.sqrt(max(second_moment - reduced["episode/return"] ** 2, 0.0))
    return reduced
