"""What configures an environment.

`EnvOptions` is the `env` config group: every option with its one default (each `conf/env/<name>.yaml` overrides
some, the Gym env takes the same keywords), checked once on construction with an error naming the key. `EnvConfig`
is what one `SeedEnv` runs with: the options plus what other groups decide (the reward, the host training
precision) and the fixed settings of host training. Training, evaluation and the Gym env build it the one way,
`build_env_config`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from tamiyo.core.actions import BLUEPRINT_IDS, AlphaAlgorithm, BlueprintAction, blueprint_from_id
from tamiyo.core.values import is_int, is_number
from tamiyo.env.blueprints import SEED_FAULTS
from tamiyo.env.governor import GovernorConfig
from tamiyo.env.kinds import check_kinds
from tamiyo.env.rewards import make_reward
from tamiyo.env.targets import is_target

_AUTOCAST_DTYPES = (torch.bfloat16,)


@dataclass
class EnvOptions:
    """The `env` config group (keys as `env.<key>` on the command line)."""

    # A task name, a task of your own named by `_target_` (a loader returning a `tamiyo.env.tasks.Task`, its
    # arguments in the mapping), or a list of them drawn per episode.
    task: Any = "mnist1d"
    # Options of the task's loader; every task keeps only the first train_subset / val_subset examples when they
    # are set (tiny runs); cifar10 also takes data_dir and download; others are added with
    # `+env.task_options.<key>=`.
    task_options: dict[str, Any] = field(default_factory=lambda: {"train_subset": None, "val_subset": None})
    num_envs: int = 4
    # Env worker processes (each steps num_envs / workers envs); auto = usable cores ÷ torch_threads (÷ parallel
    # sweep jobs and local DDP ranks), at most num_envs and a divisor of it; 1 = in the training process.
    workers: Any = "auto"
    max_epochs: int = 25
    batch_size: int = 128
    # Germinations per episode (0 = unlimited); pruning does not refund one.
    max_seeds: int = 3
    # Strict gates add thresholds on training time and improvement to the structural lifecycle conditions.
    strict_gates: bool = False
    # Slot ids seeds may use (e.g. [r0c0, r0c2]); null enables every injection point of the host.
    slots: list[str] | None = None
    # Host width multipliers, one drawn per episode (with the task, when `task` lists several).
    host_widths: list[float] = field(default_factory=lambda: [1.0])
    # Episode kinds, one drawn per episode, when they differ in more than task and width (tamiyo.env.kinds): a list
    # of mappings, each a `name` and the keys it sets among task, task_options, host and host_width; null: the
    # kinds are `task` × `host_widths`.
    kinds: Any = None
    # Chance that a germinated seed fails (stays in the network and is paid for until pruned, never learns well).
    seed_failure_rate: float = 0.0
    # Faults a failing seed draws from: dead (zero gradient, noisy output) and/or unstable (amplified updates that
    # drift into harm while it still gets gradient).
    seed_faults: list[str] = field(default_factory=lambda: ["dead"])
    # Seeds advance through their gates and fossilize on their own (the controller germinates, holds or prunes), so
    # a germination is a complete decision; false: the controller advances every seed itself.
    auto_advance: bool = True
    # The env prunes a seed that no gradient reached in its TRAINING epoch (a dead seed, which can never learn) before
    # it blends, as a watchdog would, so a controller need not learn to; the slot can be germinated again.
    auto_prune_dead: bool = False
    # SGD learning rates of the host (and its fossils) and of each live seed (momentum 0.9 for both).
    host_lr: float = 0.01
    seed_lr: float = 0.01
    # A host of your own: {_target_: <module>.<Host subclass or factory>, …}, called with task and width; null:
    # the task's built-in host.
    host: Any = None
    # Seed blueprints of your own (null: none) by the name of the built-in one each replaces (its action), e.g.
    # {conv_light: {_target_: my_package.MySeed}}, called with layout and channels.
    blueprints: Any = None

    def __post_init__(self) -> None:
        for name, minimum in (("num_envs", 1), ("max_epochs", 1), ("batch_size", 1), ("max_seeds", 0)):
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                demand = "an integer > 0" if minimum else "an integer ≥ 0 (0 = unlimited)"
                raise ValueError(f"env.{name} must be {demand}, got {value!r}")
        if not (self.workers == "auto" or is_int(self.workers) and self.workers >= 1
                and self.num_envs % self.workers == 0):
            raise ValueError(f"env.workers must be auto or an integer ≥ 1 that divides env.num_envs "
                             f"({self.num_envs}), got {self.workers!r}")
        for name in ("strict_gates", "auto_advance", "auto_prune_dead"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"env.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("host_lr", "seed_lr"):
            if not (is_number(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"env.{name} must be a number > 0, got {getattr(self, name)!r}")
        if not self.host_widths or not all(is_number(w) and w > 0 for w in self.host_widths):
            raise ValueError(f"env.host_widths must be a list of numbers > 0, got {list(self.host_widths)}")
        check_kinds(self.kinds, self.task, self.host_widths)
        if not (is_number(self.seed_failure_rate) and 0.0 <= self.seed_failure_rate <= 1.0):
            raise ValueError(f"env.seed_failure_rate must be a number in [0, 1], got {self.seed_failure_rate!r}")
        if not self.seed_faults or set(self.seed_faults) - set(SEED_FAULTS):
            raise ValueError(f"env.seed_faults must name faults from {sorted(SEED_FAULTS)}, "
                             f"got {list(self.seed_faults)}")
        if self.host is not None and not is_target(self.host):
            raise ValueError(f"env.host must be null or a mapping with a _target_, got {self.host!r}")
        names = {b.name.lower() for b in BlueprintAction if b != BlueprintAction.NOOP}
        for name, spec in (self.blueprints or {}).items():
            if name not in names:
                raise ValueError(f"env.blueprints: {name!r} is not a blueprint; a blueprint of your own takes "
                                 f"the place of one of {sorted(names)}")
            if not is_target(spec):
                raise ValueError(f"env.blueprints.{name} must be a mapping with a _target_, got {spec!r}")


@dataclass
class EnvConfig(EnvOptions):
    """What one `SeedEnv` runs with: the `env` options, the reward (name and options of the `reward` group), the
    host training precision, the fixed settings of host training and the fossils of a static-final control."""

    val_batch_size: int = 1024
    host_momentum: float = 0.9
    host_weight_decay: float = 5e-4
    seed_momentum: float = 0.9
    reward: str = "objective"
    reward_config: Mapping[str, float | str] = field(default_factory=dict)
    governor: GovernorConfig = field(default_factory=GovernorConfig)
    autocast_dtype: torch.dtype | None = None  # bf16 autocast for host training and validation
    # Seeds that are part of the network from epoch 0 (slot id → "blueprint/algorithm[@alpha][!fault]", as the
    # step info's `slot_seeds` writes them): a grown architecture trained from scratch as a fixed network (the
    # comparison's static-final controls).
    fossils: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.val_batch_size < 1:
            raise ValueError(f"env config val_batch_size must be ≥ 1, got {self.val_batch_size}")
        for name in ("host_momentum", "seed_momentum", "host_weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"env config {name} must be ≥ 0, got {getattr(self, name)}")
        if self.autocast_dtype is not None and self.autocast_dtype not in _AUTOCAST_DTYPES:
            raise ValueError(
                f"env autocast_dtype {self.autocast_dtype} is not supported; use torch.bfloat16 or None "
                f"(fp16 host training would need loss scaling)"
            )
        make_reward(self.reward, **self.reward_config)  # fail on a bad reward name or field now
        for seed in self.fossils.values():
            parse_fossil(seed)


def build_env_config(
    options: EnvOptions | Mapping[str, Any], reward: Mapping[str, Any], gamma: float,
    autocast_dtype: torch.dtype | None,
) -> EnvConfig:
    """The config of every env of a run: its `env` options (an `EnvOptions` or a mapping of its keys), the
    `reward` group (`name` and options), and PPO's discount (shaped rewards must discount with the same gamma as
    PPO for the shaping to telescope)."""
    values = dataclasses.asdict(options) if isinstance(options, EnvOptions) else dict(options)
    reward_options = {k: v for k, v in reward.items() if k != "name"}
    if "gamma" in {f.name for f in dataclasses.fields(make_reward(reward["name"]).config)}:
        reward_options["gamma"] = gamma
    # bf16 host training follows the precision choice; fp16 host training would need loss scaling.
    env_autocast = autocast_dtype if autocast_dtype == torch.bfloat16 else None
    return EnvConfig(**values, reward=reward["name"], reward_config=reward_options, autocast_dtype=env_autocast)


@dataclass(frozen=True)
class Fossil:
    """A seed planted from epoch 0 of a control network: "blueprint/algorithm[@alpha][!fault]"."""

    blueprint: BlueprintAction
    algorithm: AlphaAlgorithm
    alpha: float = 1.0
    fault: str | None = None

    def __str__(self) -> str:
        text = f"{BLUEPRINT_IDS[self.blueprint]}/{self.algorithm.name.lower()}"
        text += "" if self.alpha == 1.0 else f"@{self.alpha:.6g}"
        return text if self.fault is None else f"{text}!{self.fault}"


def parse_fossil(seed: str) -> Fossil:
    """"conv_heavy/add", "conv_heavy/add@0.5!dead" → a `Fossil`; a clear error for anything else."""
    spec, _, fault = seed.partition("!")
    spec, has_alpha, alpha_text = spec.partition("@")
    blueprint, _, algorithm = spec.partition("/")
    algorithms = [a.name.lower() for a in AlphaAlgorithm]
    if algorithm not in algorithms:
        raise ValueError(f"fossil {seed!r} must be 'blueprint/algorithm[@alpha][!fault]' with an algorithm in "
                         f"{algorithms}")
    if fault and fault not in SEED_FAULTS:
        raise ValueError(f"fossil {seed!r} names an unknown fault {fault!r}; choose from {sorted(SEED_FAULTS)}")
    try:
        alpha = float(alpha_text) if has_alpha else 1.0
    except ValueError:
        alpha = math.nan
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"fossil {seed!r} must have an alpha in [0, 1]")
    return Fossil(blueprint_from_id(blueprint), AlphaAlgorithm[algorithm.upper()], alpha, fault or None)
