"""The options of the update: `PPOOptions` (the `ppo` config group) and `ImitationOptions` (the `imitation` key).

Each holds every option with its one default (Hydra stores them as `ppo_base` and `imitation_base`, which
`conf/ppo/default.yaml` and `conf/train.yaml` extend) and checks itself on construction, with an error naming the
key. Checks that need another group (minibatches against envs, imitation updates against updates) are the run's
(`tamiyo.launch.validation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.core.values import is_int, is_number
from tamiyo.ppo.curriculum import op_curriculum

RATIO_MODES = ("joint", "per_head")
ADVANTAGE_NORMALIZATIONS = ("rollout", "minibatch", "none")


def per_head_coefficients(coefficients: float | Mapping[str, float]) -> dict[str, float]:
    """Entropy coefficients as `{head: coef}` over all heads; one number applies to every head."""
    if isinstance(coefficients, Mapping):
        if set(coefficients) != set(HEAD_NAMES):
            raise ValueError(
                f"entropy coefficients must name exactly the heads {list(HEAD_NAMES)}, got {sorted(coefficients)}"
            )
        per_head = {head: float(coefficients[head]) for head in HEAD_NAMES}
    else:
        per_head = dict.fromkeys(HEAD_NAMES, float(coefficients))
    negative = {head: c for head, c in per_head.items() if c < 0}
    if negative:
        raise ValueError(f"entropy coefficients must be ≥ 0, got {negative}")
    return per_head


def _check_entropy_coef(key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        try:
            per_head_coefficients(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{key}: {error}") from error
    elif not is_number(value) or value < 0:
        raise ValueError(f"{key} must be a number ≥ 0 or a mapping head → number ≥ 0, got {value!r}")


def _check(key: str, value: Any, integer: bool, minimum: float, strict: bool, demand: str) -> None:
    kind_ok = is_int(value) if integer else is_number(value)
    if not kind_ok or value < minimum or strict and value == minimum:
        raise ValueError(f"{key} must be {demand}, got {value!r}")


@dataclass
class PPOOptions:
    """The `ppo` config group (keys as `ppo.<key>` on the command line)."""

    lr: float = 1.0e-3
    adam_eps: float = 1.0e-5
    gamma: float = 0.995
    gae_lambda: float = 0.98
    clip_ratio: float = 0.2
    # Clip of V_new − V_old in return units; null: a plain squared error.
    value_clip: float | None = 0.2
    value_coef: float = 0.5
    # Entropy bonus on normalised entropy: one number for every head or {head: number} for each (all eight);
    # annealed linearly to entropy_coef_end over the run when that is set.
    entropy_coef: Any = 0.01
    entropy_coef_end: Any = None
    # The probability ratio of the clipped surrogate: of the whole factored action (joint) or per head.
    ratio: str = "joint"
    # Updates at the start of a run that train only the value head (the actor's weights stay as they are and
    # sample the rollouts): a warm-started policy keeps what it knows until its critic has learned the new env's
    # returns.
    critic_warmup_updates: int = 0
    # Ops kept out of the rollouts until an update (an op curriculum): {prune: 20} lets PPO sample PRUNE from
    # update 20 on, so the seeds it plants first stay and show what they are worth (null: every op from the start).
    # Validation and evaluation play every op.
    ops_from_update: Any = None
    update_epochs: int = 4
    num_minibatches: int = 2
    max_grad_norm: float = 1.0
    # The epochs of an update stop early once the mean approximate KL exceeds it (null: never).
    target_kl: float | None = 0.03
    # Advantages centred and scaled by the whole rollout's statistics, by each minibatch's, or not at all. Per
    # minibatch, a minibatch of a few whole episodes that all went well gets half its advantages negative.
    advantage_normalization: str = "rollout"
    obs_clip: float = 5.0
    reward_clip: float = 10.0
    normalize_rewards: bool = True

    def __post_init__(self) -> None:
        for name, integer, minimum, strict, demand in (
            ("lr", False, 0, True, "a number > 0"),
            ("adam_eps", False, 0, True, "a number > 0"),
            ("clip_ratio", False, 0, True, "a number > 0"),
            ("value_coef", False, 0, False, "a number ≥ 0"),
            ("update_epochs", True, 0, True, "an integer > 0"),
            ("num_minibatches", True, 0, True, "an integer > 0"),
            ("max_grad_norm", False, 0, True, "a number > 0"),
            ("critic_warmup_updates", True, 0, False, "an integer ≥ 0"),
            ("obs_clip", False, 0, True, "a number > 0"),
            ("reward_clip", False, 0, True, "a number > 0"),
        ):
            _check(f"ppo.{name}", getattr(self, name), integer, minimum, strict, demand)
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not (is_number(value) and 0 <= value <= 1):
                raise ValueError(f"ppo.{name} must be a number in [0, 1], got {value!r}")
        for name in ("value_clip", "target_kl"):
            if getattr(self, name) is not None:
                _check(f"ppo.{name}", getattr(self, name), False, 0, True, "a number > 0 or null")
        if self.ratio not in RATIO_MODES:
            raise ValueError(f"ppo.ratio must be 'joint' or 'per_head', got {self.ratio!r}")
        if self.advantage_normalization not in ADVANTAGE_NORMALIZATIONS:
            raise ValueError(f"ppo.advantage_normalization must be 'rollout', 'minibatch' or 'none', "
                             f"got {self.advantage_normalization!r}")
        if not isinstance(self.normalize_rewards, bool):
            raise ValueError(f"ppo.normalize_rewards must be true or false, got {self.normalize_rewards!r}")
        _check_entropy_coef("ppo.entropy_coef", self.entropy_coef)
        if self.entropy_coef_end is not None:
            _check_entropy_coef("ppo.entropy_coef_end", self.entropy_coef_end)
        if self.ops_from_update is not None:
            if not isinstance(self.ops_from_update, Mapping):
                raise ValueError(f"ppo.ops_from_update must be a mapping op → update, e.g. {{prune: 20}}, "
                                 f"got {self.ops_from_update!r}")
            try:
                op_curriculum(self.ops_from_update)
            except ValueError as error:
                raise ValueError(f"ppo.ops_from_update: {error}") from error


@dataclass
class ImitationOptions:
    """Behaviour cloning before PPO, and a teacher's guide after it (the `imitation` key, `imitation.<key>=…`).

    The first `updates` updates collect their rollouts with `teacher` and train the policy to choose the teacher's
    actions and its critic to value them; PPO takes over from there. Their episode statistics are logged under
    imitation/ (the teacher's, not this policy's). `guide_coef` > 0 keeps the teacher after them: PPO's rollouts
    also record the teacher's action in every state this policy reached, and the PPO loss adds guide_coef ·
    NLL(teacher's action), annealed linearly to `guide_coef_end` at the last update (0 sets the policy free by the
    end)."""

    updates: int = 0
    # Any policy config, e.g. {name: schedule, blueprint: conv_heavy, slots: [r0c1]}.
    teacher: Any = None
    # Entropy bonus of the cloning updates (one number or per head, on the normalised entropy): it keeps the clone
    # from turning deterministic, so that PPO still tries other actions.
    entropy_coef: Any = 0.0
    guide_coef: float = 0.0
    guide_coef_end: float = 0.0

    def __post_init__(self) -> None:
        _check("imitation.updates", self.updates, True, 0, False, "an integer ≥ 0")
        _check("imitation.guide_coef", self.guide_coef, False, 0, False, "a number ≥ 0")
        _check("imitation.guide_coef_end", self.guide_coef_end, False, 0, False, "a number ≥ 0")
        _check_entropy_coef("imitation.entropy_coef", self.entropy_coef)
        users = [f"imitation.{key}={getattr(self, key)}" for key in ("updates", "guide_coef", "guide_coef_end")
                 if getattr(self, key)]
        if users and not (isinstance(self.teacher, Mapping) and isinstance(self.teacher.get("name"), str)):
            raise ValueError(f"{users[0]} needs imitation.teacher, a policy config such as "
                             f"{{name: schedule, blueprint: conv_heavy, slots: [r0c1]}}; got {self.teacher!r}")

    @property
    def uses_teacher(self) -> bool:
        return bool(self.updates or self.guide_coef or self.guide_coef_end)
