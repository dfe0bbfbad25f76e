"""Action masks: which head choices are physically possible for each environment.

The legality rules are those of `tamiyo.core.legality` (one statement, shared with the env's action
check and the heuristic), tabulated once per device as `legal[stage, holding, age_ok, budget_left, op]`
so that a whole batch is masked by one gather. The slot mask is conditioned on the op (`slot_by_op`), which
means the policy can never sample an illegal (op, slot) pair.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from functools import cache
from itertools import product

import numpy as np
import torch

from tamiyo.core.actions import (
    HEAD_NAMES,
    IRRELEVANT_HEAD_VALUE,
    AlphaCurveAction,
    AlphaSpeedAction,
    AlphaTargetAction,
    BlueprintAction,
    GerminationStyle,
    LifecycleOp,
    TempoAction,
)
from tamiyo.core.legality import legal_blueprints, legal_ops
from tamiyo.core.observation import ObservationBatch
from tamiyo.core.stages import MIN_PRUNE_AGE, SeedStage

NUM_OPS = len(LifecycleOp)
_NUM_STAGE_VALUES = max(SeedStage) + 1  # table rows are indexed by the raw stage value (5 unused)


def _build_legal_table() -> torch.Tensor:
    """`[stage value · 8 + holding · 4 + age_ok · 2 + budget_left, op]` booleans."""
    table = torch.zeros(_NUM_STAGE_VALUES, 2, 2, 2, NUM_OPS, dtype=torch.bool)
    for stage, holding, age_ok, budget_left in product(SeedStage, (False, True), (False, True), (False, True)):
        for op in legal_ops(stage, holding, MIN_PRUNE_AGE if age_ok else 0, budget_left):
            table[stage, int(holding), int(age_ok), int(budget_left), op] = True
    return table.view(-1, NUM_OPS)


_LEGAL_TABLE = _build_legal_table()
_VALID_STAGE_VALUES = torch.tensor([int(s) for s in SeedStage])


@dataclass(frozen=True)
class _Constants:
    legal: torch.Tensor  # [stage states, ops]
    valid_stages: torch.Tensor
    # When neither GERMINATE nor SET_ALPHA_TARGET is possible, style and alpha_target collapse to the
    # value the network forces on an irrelevant head (SIGMOID_ADD, FULL).
    style_default: torch.Tensor  # [4] one-hot
    alpha_target_default: torch.Tensor  # [3] one-hot


@cache
def _constants(device: torch.device) -> _Constants:
    return _Constants(
        legal=_LEGAL_TABLE.to(device),
        valid_stages=_VALID_STAGE_VALUES.to(device),
        style_default=_one_hot(IRRELEVANT_HEAD_VALUE["style"], len(GerminationStyle), device),
        alpha_target_default=_one_hot(IRRELEVANT_HEAD_VALUE["alpha_target"], len(AlphaTargetAction), device),
    )


@cache
def _blueprint_row(topology: str, device: torch.device) -> torch.Tensor:
    row = torch.zeros(len(BlueprintAction), dtype=torch.bool)
    row[sorted(legal_blueprints(topology))] = True
    return row.to(device)


def _one_hot(index: int, size: int, device: torch.device) -> torch.Tensor:
    row = torch.zeros(size, dtype=torch.bool)
    row[index] = True
    return row.to(device)


def checked_stages(obs: ObservationBatch) -> torch.Tensor:
    """Stage values `[N, S]` (long); a retired or unknown value raises ValueError (one check per batch)."""
    stages = obs.stage()
    valid = torch.isin(stages, _constants(stages.device).valid_stages)
    if not bool(valid.all()):
        bad = int(stages[~valid][0])
        raise ValueError(f"invalid seed stage value {bad} in observation (5 is retired); valid: "
                         f"{[int(s) for s in SeedStage]}")
    return stages


@dataclass(frozen=True, eq=False)
class ActionMasks:
    """Boolean masks (True = allowed) of a batch of N envs with S slots."""

    op: torch.Tensor  # [N, 6]
    slot_by_op: torch.Tensor  # [N, 6, S]: row o = slots where op o is legal; the WAIT row is all True
    blueprint: torch.Tensor  # [N, 13]
    style: torch.Tensor  # [N, 4]
    tempo: torch.Tensor  # [N, 3]
    alpha_target: torch.Tensor  # [N, 3]
    alpha_speed: torch.Tensor  # [N, 4]
    alpha_curve: torch.Tensor  # [N, 5]

    def __post_init__(self) -> None:
        n = self.op.shape[0]
        widths = {
            "op": NUM_OPS, "blueprint": len(BlueprintAction), "style": len(GerminationStyle),
            "tempo": len(TempoAction), "alpha_target": len(AlphaTargetAction),
            "alpha_speed": len(AlphaSpeedAction), "alpha_curve": len(AlphaCurveAction),
        }
        for name, width in widths.items():
            mask = getattr(self, name)
            if mask.dtype != torch.bool or tuple(mask.shape) != (n, width):
                raise ValueError(f"{name} mask must be bool [{n}, {width}], got {mask.dtype} {list(mask.shape)}")
        if self.slot_by_op.dtype != torch.bool or tuple(self.slot_by_op.shape[:2]) != (n, NUM_OPS) \
                or self.slot_by_op.dim() != 3:
            raise ValueError(f"slot_by_op must be bool [{n}, {NUM_OPS}, S], got "
                             f"{self.slot_by_op.dtype} {list(self.slot_by_op.shape)}")

    @property
    def num_envs(self) -> int:
        return self.op.shape[0]

    def for_op(self, op: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-head masks used once `op [N]` is sampled, in `HEAD_NAMES` order (slot = that op's row)."""
        if op.shape != (self.num_envs,):
            raise ValueError(f"op must be [{self.num_envs}], got {list(op.shape)}")
        num_slots = self.slot_by_op.shape[2]
        slot = self.slot_by_op.gather(1, op.view(-1, 1, 1).expand(-1, 1, num_slots)).squeeze(1)
        return {name: (slot if name == "slot" else getattr(self, name)) for name in HEAD_NAMES}

    def index(self, envs: slice | torch.Tensor) -> ActionMasks:
        """The masks of a subset of envs (a slice or an index tensor along the env dimension)."""
        return ActionMasks(**{f.name: getattr(self, f.name)[envs] for f in fields(self)})

    def to(self, device: torch.device | str) -> ActionMasks:
        return ActionMasks(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def without_ops(self, ops: Collection[LifecycleOp]) -> ActionMasks:
        """These masks with `ops` (never WAIT) illegal on every slot; the heads that depend on the op follow."""
        if LifecycleOp.WAIT in ops:
            raise ValueError("WAIT is always legal")
        legal = self.slot_by_op.transpose(1, 2).clone()  # [N, S, ops]
        legal[:, :, [int(op) for op in ops]] = False
        return masks_from_legality(legal, self.blueprint)


def compute_masks(obs: ObservationBatch, topology: str = "cnn") -> ActionMasks:
    """Masks for every env of the batch, in one tensor pass (no loop over envs or slots)."""
    if obs.num_slots == 0:
        raise ValueError("cannot mask actions for an observation with 0 slots")
    const = _constants(obs.slots.device)
    stages = checked_stages(obs)
    max_seeds = obs.max_seeds()
    budget_left = ((max_seeds <= 0) | (obs.seeds_used() < max_seeds)).unsqueeze(1)
    state = stages * 8 + obs.alpha_holding() * 4 + (obs.age() >= MIN_PRUNE_AGE) * 2 + budget_left
    legal = const.legal[state]  # [N, S, ops]
    blueprint = _blueprint_row(topology, obs.slots.device).expand(obs.num_envs, -1)
    return masks_from_legality(legal, blueprint)


def masks_from_legality(legal: torch.Tensor, blueprint: torch.Tensor) -> ActionMasks:
    """Masks from the legality of every (slot, op) pair `[N, S, ops]` and of every blueprint `[N, 13]`
    (what a Gymnasium observation carries, or what `compute_masks` derives from slot states)."""
    slot_by_op = legal.transpose(1, 2).contiguous()  # [N, S, ops] → [N, ops, S]
    op = slot_by_op.any(dim=2)
    n, device = op.shape[0], op.device
    const = _constants(device)
    # Style and alpha_target only matter for GERMINATE and SET_ALPHA_TARGET; otherwise pin the default.
    choosable = (op[:, LifecycleOp.GERMINATE] | op[:, LifecycleOp.SET_ALPHA_TARGET]).unsqueeze(1)
    return ActionMasks(
        op=op,
        slot_by_op=slot_by_op,
        blueprint=blueprint.clone(),
        style=choosable | const.style_default,
        tempo=torch.ones(n, len(TempoAction), dtype=torch.bool, device=device),
        alpha_target=choosable | const.alpha_target_default,
        alpha_speed=torch.ones(n, len(AlphaSpeedAction), dtype=torch.bool, device=device),
        alpha_curve=torch.ones(n, len(AlphaCurveAction), dtype=torch.bool, device=device),
    )


def gym_observation_masks(obs: Mapping[str, np.ndarray]) -> ActionMasks:
    """Masks of a batch of Gymnasium observations (`SeedLifecycleEnv`'s `Dict` arrays, stacked `[N, ...]`),
    from their legality arrays alone."""
    legal = torch.as_tensor(np.asarray(obs["legal_ops"])).bool()
    blueprints = torch.as_tensor(np.asarray(obs["legal_blueprints"])).bool()
    if legal.dim() != 3 or blueprints.dim() != 2:
        raise ValueError(f"expected stacked observations: legal_ops [N, S, {NUM_OPS}] and legal_blueprints "
                         f"[N, {len(BlueprintAction)}], got {list(legal.shape)} and {list(blueprints.shape)}")
    return masks_from_legality(legal, blueprints)
