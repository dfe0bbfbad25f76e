"""An op curriculum for PPO's rollouts (`ppo.ops_from_update`): an op named there is kept out of the rollouts
before its update, so its mask is false wherever the env would allow it and PPO neither samples it nor credits it.

`{prune: 20}` lets the seeds a learner plants stay for its first 20 updates: the blueprint and slot heads see what
the seeds they chose are worth before pruning can undo every choice (from scratch, pruning all seeds is a safe
habit PPO finds first: an average random seed does not pay its price). Validation and evaluation episodes are
never restricted; WAIT is always allowed.
"""

from __future__ import annotations

from collections.abc import Mapping

from tamiyo.core.actions import LifecycleOp

_NAMES = {op.name.lower(): op for op in LifecycleOp if op is not LifecycleOp.WAIT}


def op_curriculum(ops_from_update: Mapping[str, int]) -> dict[LifecycleOp, int]:
    """The first update at which each named op may be sampled; refuses unknown ops, WAIT and bad updates."""
    curriculum = {}
    for name, first in ops_from_update.items():
        if name not in _NAMES:
            raise ValueError(f"unknown op {name!r}; ops that can wait for an update: {', '.join(_NAMES)}")
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise ValueError(f"{name} needs an update index ≥ 0, got {first!r}")
        curriculum[_NAMES[name]] = first
    return curriculum


def forbidden_ops(curriculum: Mapping[LifecycleOp, int], update: int) -> frozenset[LifecycleOp]:
    """The ops kept out of the rollout of `update`."""
    return frozenset(op for op, first in curriculum.items() if update < first)
