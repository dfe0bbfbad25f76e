"""Which lifecycle op is legal in which slot state: the one statement of the action-legality rules.

Only physically impossible actions are illegal, never timing judgements. Per slot:

| slot state             | legal ops besides WAIT                                            |
|------------------------|-------------------------------------------------------------------|
| empty (DORMANT)        | GERMINATE, unless the seed budget is spent                        |
| GERMINATED, TRAINING   | ADVANCE; PRUNE if age ≥ 1 and alpha holds                         |
| BLENDING               | ADVANCE; SET_ALPHA_TARGET if alpha holds; PRUNE if also age ≥ 1   |
| HOLDING                | FOSSILIZE; SET_ALPHA_TARGET if alpha holds; PRUNE if also age ≥ 1 |
| any other stage        | none                                                              |

WAIT is always legal. GERMINATE additionally needs a blueprint of the host's topology. The env's
action check, the policy's action masks (a tensor form of `legal_ops`), the heuristic and the
Gymnasium observation all read these rules from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tamiyo.core.actions import BlueprintAction, LifecycleOp, topology_blueprints
from tamiyo.core.stages import ADVANCE_TARGET, FOSSILIZABLE_STAGES, MIN_PRUNE_AGE, PRUNABLE_STAGES, SeedStage


class IllegalActionError(ValueError):
    """An action that the current slot state does not allow (the action masks would have hidden it)."""


@dataclass(frozen=True)
class OpRule:
    """When an op is legal on a slot: the slot's stage is one of `stages`, and the listed conditions hold."""

    stages: frozenset[SeedStage]
    stage_reason: str  # why the op is refused in any other stage
    needs_alpha_holding: bool = False
    needs_min_age: bool = False
    needs_budget: bool = False


RETARGETABLE_STAGES = frozenset({SeedStage.BLENDING, SeedStage.HOLDING})

OP_RULES: dict[LifecycleOp, OpRule] = {
    LifecycleOp.GERMINATE: OpRule(frozenset({SeedStage.DORMANT}), "the slot is not empty", needs_budget=True),
    LifecycleOp.ADVANCE: OpRule(
        frozenset(ADVANCE_TARGET), "only GERMINATED, TRAINING and BLENDING seeds advance (HOLDING seeds FOSSILIZE)"
    ),
    LifecycleOp.FOSSILIZE: OpRule(FOSSILIZABLE_STAGES, "only a HOLDING seed can fossilize"),
    LifecycleOp.SET_ALPHA_TARGET: OpRule(
        RETARGETABLE_STAGES, "only BLENDING or HOLDING seeds can be retargeted", needs_alpha_holding=True
    ),
    LifecycleOp.PRUNE: OpRule(
        PRUNABLE_STAGES, "only a live seed can be pruned", needs_alpha_holding=True, needs_min_age=True
    ),
}


def illegal_reason(
    op: LifecycleOp, stage: SeedStage, alpha_holding: bool, age: int, budget_left: bool
) -> str | None:
    """Why `op` is illegal on a slot in this state, or None when it is legal."""
    if op == LifecycleOp.WAIT:
        return None
    rule = OP_RULES[op]
    if stage not in rule.stages:
        return rule.stage_reason
    if rule.needs_budget and not budget_left:
        return "the seed budget is spent"
    if rule.needs_min_age and age < MIN_PRUNE_AGE:
        return f"the seed is younger than {MIN_PRUNE_AGE} epoch"
    if rule.needs_alpha_holding and not alpha_holding:
        return "alpha is still moving"
    return None


def legal_ops(stage: SeedStage, alpha_holding: bool, age: int, budget_left: bool) -> frozenset[LifecycleOp]:
    """Every op legal on a slot in this state (always including WAIT)."""
    return frozenset(op for op in LifecycleOp if illegal_reason(op, stage, alpha_holding, age, budget_left) is None)


def budget_left(seeds_used: int, max_seeds: int) -> bool:
    """Whether one more germination fits the budget (`max_seeds` 0 = unlimited)."""
    return max_seeds <= 0 or seeds_used < max_seeds


def legal_blueprints(topology: str) -> frozenset[BlueprintAction]:
    """Blueprints a GERMINATE may choose on a host of this topology."""
    return topology_blueprints(topology)


def _check_rules() -> None:
    assert set(OP_RULES) == set(LifecycleOp) - {LifecycleOp.WAIT}, "every op but WAIT needs a rule"
    for stage in (SeedStage.FOSSILIZED, SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING):
        assert legal_ops(stage, True, MIN_PRUNE_AGE, True) == {LifecycleOp.WAIT}


_check_rules()
