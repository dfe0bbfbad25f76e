"""The seed-lifecycle environment as a `gymnasium.Env` (`tamiyo/SeedLifecycle-v0`).

It wraps one `SeedEnv`; the trainer's `VectorEnv` steps these same objects (in-process or in worker
processes), so there is one implementation of the environment.

Observation (a `Dict` of fixed-shape arrays, S = number of enabled slots):
  signals                  float32 [F]      host-level training signals (`SignalField` columns), all
                                            finite: LOSS_DELTA reads 0 until there is a previous loss
  loss_delta_measured      int8    [1]      0 while LOSS_DELTA has no previous loss (the reset observation)
  slots                    float32 [S, K]   per-slot reports (`SlotField` columns); an unmeasured
                                            counterfactual reads 0 and is flagged below
  counterfactual_measured  int8    [S]      1 where the slot's counterfactual was measured
  legal_ops                int8    [S, 6]   1 where (slot, op) is legal (`tamiyo.core.legality`);
                                            the WAIT column is always 1
  legal_blueprints         int8    [13]     1 for the blueprints of the host's topology
Every action mask the trainer uses, including the op-conditioned slot mask, follows from
`legal_ops` and `legal_blueprints` alone.

Action: `MultiDiscrete` over the eight heads in `HEAD_NAMES` order. `action_masks()` gives one flat
boolean vector of per-head masks (the sb3-contrib `MaskablePPO` convention; it cannot express that
the legal slots depend on the op, so a masked sampler can still pick an illegal (slot, op) pair —
use `illegal_action="wait"` with such samplers). An illegal action raises `IllegalActionError`, or
with `illegal_action="wait"` is carried out as WAIT and named in `info["illegal_action"]`.

Episodes: `reset(seed=s)` starts episode 0 of base seed `s`; a reset without a seed starts the next
episode; `options={"episode": e}` picks the episode. Each episode's randomness derives from
(base seed, env index, episode), exactly as in the trainer. The last epoch ends the episode
(`terminated`: the host's training is over). `info` holds no wall-clock timings unless
`timings=True` (they would make two identical runs differ).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from tamiyo.core.actions import (
    HEAD_ENUMS,
    HEAD_NAMES,
    IRRELEVANT_HEAD_VALUE,
    BlueprintAction,
    FactoredAction,
    LifecycleOp,
    head_sizes,
)
from tamiyo.core.legality import IllegalActionError, budget_left, legal_blueprints, legal_ops
from tamiyo.core.observation import (
    NUM_SIGNAL_FIELDS,
    NUM_SLOT_FIELDS,
    ObservationBatch,
    SignalField,
    SlotField,
    SlotReport,
    TrainingSignals,
)
from tamiyo.core.slots import SlotConfig
from tamiyo.env.config import EnvConfig, EnvOptions, build_env_config
from tamiyo.env.hosts import build_host
from tamiyo.env.kinds import load_tasks
from tamiyo.env.model import enabled_slot_config
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import Task, names_tasks

ENV_ID = "tamiyo/SeedLifecycle-v0"
ILLEGAL_ACTION_MODES = ("raise", "wait")
NUM_OPS = len(LifecycleOp)
_TIMING_KEYS = ("time_train_s", "time_validate_s", "time_step_s")
# Slot fields that are NaN until measured, and the observation key of their measured flags.
_MEASURED_FIELDS = {
    SlotField.COUNTERFACTUAL: "counterfactual_measured",
    SlotField.GRADIENT_RATIO: "gradient_measured",
}
# The `EnvOptions` a keyword may set: the task is the constructor's own argument, and envs per process and workers
# belong to the trainer.
ENV_KEYWORDS = tuple(f.name for f in dataclasses.fields(EnvOptions) if f.name not in ("task", "num_envs", "workers"))


def observation_space(num_slots: int) -> spaces.Dict:
    return spaces.Dict({
        "signals": spaces.Box(-np.inf, np.inf, (NUM_SIGNAL_FIELDS,), np.float32),
        "slots": spaces.Box(-np.inf, np.inf, (num_slots, NUM_SLOT_FIELDS), np.float32),
        "loss_delta_measured": spaces.MultiBinary(1),
        "counterfactual_measured": spaces.MultiBinary(num_slots),
        "gradient_measured": spaces.MultiBinary(num_slots),
        "legal_ops": spaces.MultiBinary((num_slots, NUM_OPS)),
        "legal_blueprints": spaces.MultiBinary(len(BlueprintAction)),
    })


def action_space(slot_config: SlotConfig) -> spaces.MultiDiscrete:
    return spaces.MultiDiscrete(list(head_sizes(slot_config).values()), dtype=np.int64)


def to_gym_observation(
    signals: TrainingSignals, reports: list[SlotReport], topology: str
) -> dict[str, np.ndarray]:
    """One env's observation as the `Dict` space's arrays."""
    slots = np.array([r.to_row() for r in reports], dtype=np.float32)
    # Box spaces hold no NaN: an unmeasured value reads 0 and its flag says which zero it is.
    measured = {field: ~np.isnan(slots[:, field]) for field in _MEASURED_FIELDS}
    for field, flags in measured.items():
        slots[~flags, field] = 0.0
    row = np.array(signals.to_row(), dtype=np.float32)
    # The loss delta has no previous loss to compare with before the first epoch (+inf in the trainer's rows).
    loss_delta_measured = np.isfinite(row[SignalField.LOSS_DELTA])
    if not loss_delta_measured:
        row[SignalField.LOSS_DELTA] = 0.0
    budget = budget_left(signals.seeds_used, signals.max_seeds)
    legal = np.zeros((len(reports), NUM_OPS), dtype=np.int8)
    for index, report in enumerate(reports):
        for op in legal_ops(report.stage, report.alpha_holding, report.age, budget):
            legal[index, op] = 1
    blueprints = np.zeros(len(BlueprintAction), dtype=np.int8)
    blueprints[sorted(legal_blueprints(topology))] = 1
    return {
        "signals": row,
        "loss_delta_measured": np.array([loss_delta_measured], dtype=np.int8),
        "slots": slots,
        **{key: measured[field].astype(np.int8) for field, key in _MEASURED_FIELDS.items()},
        "legal_ops": legal,
        "legal_blueprints": blueprints,
    }


def observation_batch(obs: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> ObservationBatch:
    """Stacked gym observations `[N, ...]` back into the trainer's `ObservationBatch` (lossless)."""
    slots = torch.as_tensor(np.array(obs["slots"], dtype=np.float32))
    for field, key in _MEASURED_FIELDS.items():
        measured = torch.as_tensor(np.array(obs[key])).bool()
        slots[..., field] = torch.where(measured, slots[..., field], torch.tensor(float("nan")))
    signals = torch.as_tensor(np.array(obs["signals"], dtype=np.float32))
    no_previous_loss = ~torch.as_tensor(np.array(obs["loss_delta_measured"])).bool()
    signals[..., SignalField.LOSS_DELTA] = torch.where(no_previous_loss[..., 0], torch.tensor(float("inf")),
                                                       signals[..., SignalField.LOSS_DELTA])
    return ObservationBatch(signals=signals.to(device), slots=slots.to(device))


def flat_action_masks(legal_ops_row: np.ndarray, blueprints: np.ndarray) -> np.ndarray:
    """Per-head masks of one env, concatenated in head order (bool, length = sum of head sizes).

    The slot head allows the slots where some op other than WAIT is legal (every slot when only
    WAIT is, as the slot is then irrelevant); style and alpha_target collapse to their defaults
    when neither GERMINATE nor SET_ALPHA_TARGET is legal anywhere, as in the trainer's masks."""
    legal = legal_ops_row.astype(bool)
    op = legal.any(axis=0)
    slot = legal[:, 1:].any(axis=1)
    if not slot.any():
        slot[:] = True
    choosable = bool(op[LifecycleOp.GERMINATE] or op[LifecycleOp.SET_ALPHA_TARGET])
    heads: dict[str, np.ndarray] = {"slot": slot, "op": op, "blueprint": blueprints.astype(bool)}
    for name in HEAD_NAMES:
        if name in heads:
            continue
        width = len(HEAD_ENUMS[name])  # type: ignore[arg-type]
        row = np.ones(width, dtype=bool)
        if name in ("style", "alpha_target") and not choosable:
            row[:] = False
            row[IRRELEVANT_HEAD_VALUE[name]] = True
        heads[name] = row
    return np.concatenate([heads[name] for name in HEAD_NAMES])


class SeedLifecycleEnv(gymnasium.Env):
    """One seed-lifecycle environment (see the module docstring).

    Built either from the keywords of the `env` group (`EnvOptions`, with its defaults: `task="mnist1d"` or a
    list of task names, `max_epochs=..., slots=[...], task_options={...}`, `train_subset`/`val_subset` as short
    for those task options) and the `reward` group (`reward="shaped"` or `{"name": ..., field: value}`; the
    training default `objective` when not given), or, as the trainer does, from a ready `config: EnvConfig` and a
    `Task` (or several).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        task: str | Sequence[str] | Task | Sequence[Task] = "mnist1d",
        *,
        config: EnvConfig | None = None,
        env_index: int = 0,
        device: str | torch.device = "cpu",
        illegal_action: str = "raise",
        timings: bool = False,
        train_subset: int | None = None,
        val_subset: int | None = None,
        reward: str | Mapping[str, Any] = "objective",
        gamma: float = 0.995,
        **env_options: Any,
    ) -> None:
        if illegal_action not in ILLEGAL_ACTION_MODES:
            raise ValueError(f"illegal_action must be one of {ILLEGAL_ACTION_MODES}, got {illegal_action!r}")
        unknown = sorted(set(env_options) - set(ENV_KEYWORDS))
        if unknown:
            raise ValueError(f"unknown env options {unknown}; choose from {sorted(ENV_KEYWORDS)}")
        if config is not None and env_options:
            raise ValueError(f"give either config or env options, not both (got {sorted(env_options)})")
        subsets = {name: value for name, value in (("train_subset", train_subset), ("val_subset", val_subset))
                   if value is not None}
        if not names_tasks(task):
            if subsets or env_options.get("task_options"):
                raise ValueError("task options only apply when the task is given by name")
            options = EnvOptions(**env_options)
        else:
            options = EnvOptions(task=task, **env_options)
            options = dataclasses.replace(options, task_options={**options.task_options, **subsets})
            task = load_tasks(options.task, options.task_options, options.kinds)
        if config is None:
            reward_group = {"name": reward} if isinstance(reward, str) else dict(reward)
            config = build_env_config(options, reward_group, gamma, None)
        self.core = SeedEnv(task, config, env_index=env_index, device=device)
        self.illegal_action = illegal_action
        self.timings = timings
        with torch.random.fork_rng(devices=[]):  # a throwaway host must not move the caller's RNG
            self.slot_config = enabled_slot_config(build_host(self.core.task, host=self.core.kind.host), config.slots)
        self.observation_space = observation_space(self.slot_config.num_slots)
        self.action_space = action_space(self.slot_config)
        self._base_seed: int | None = None
        self._episode = 0
        self._obs: dict[str, np.ndarray] | None = None

    @property
    def env_index(self) -> int:
        return self.core.env_index

    @property
    def topology(self) -> str:
        return self.core.task.topology

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        episode = options.pop("episode", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; the only one is 'episode'")
        if seed is not None or self._base_seed is None:
            # Without any seed, draw the base seed from Gymnasium's generator (seeded by the caller or not).
            self._base_seed = seed if seed is not None else int(self.np_random.integers(2**31))
            self._episode = 0
        else:
            self._episode += 1
        if episode is not None:
            if int(episode) < 0:
                raise ValueError(f"episode must be ≥ 0, got {episode}")
            self._episode = int(episode)
        signals, reports = self.core.reset(self._base_seed, self._episode)
        self._obs = to_gym_observation(signals, reports, self.topology)
        return self._obs, {"episode": self._episode, "action_mask": self._info_mask()}

    def action_masks(self) -> np.ndarray:
        """Flat per-head masks of the current observation (bool, sb3-contrib convention)."""
        if self._obs is None:
            raise RuntimeError("the environment has not been reset; call reset() first")
        return flat_action_masks(self._obs["legal_ops"], self._obs["legal_blueprints"])

    def _info_mask(self) -> np.ndarray:
        return self.action_masks().astype(np.int8)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        indices = np.asarray(action).reshape(-1).tolist()
        factored = FactoredAction.from_indices(indices)
        illegal: str | None = None
        if self.illegal_action == "wait":
            try:
                self.core.check(factored)
            except IllegalActionError as error:
                illegal, factored = str(error), FactoredAction.wait()
        result = self.core.step(factored)
        self._obs = to_gym_observation(result.signals, result.reports, self.topology)
        info = dict(result.info)
        if not self.timings:
            for key in _TIMING_KEYS:
                del info[key]
        info["illegal_action"] = illegal
        info["action_mask"] = self._info_mask()
        return self._obs, float(result.reward), result.done, False, info
