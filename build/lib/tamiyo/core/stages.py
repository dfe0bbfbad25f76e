"""Seed lifecycle stages and their legal transitions.

The integer values are part of checkpoints and observation features, so they never change.
Value 5 (the retired SHADOWING stage) is rejected everywhere.
"""

from __future__ import annotations

from enum import IntEnum


class SeedStage(IntEnum):
    UNKNOWN = 0
    DORMANT = 1  # empty slot
    GERMINATED = 2
    TRAINING = 3
    BLENDING = 4
    HOLDING = 6
    FOSSILIZED = 7
    PRUNED = 8
    EMBARGOED = 9
    RESETTING = 10


class IllegalTransitionError(ValueError):
    """A lifecycle transition that the stage table does not allow."""


RETIRED_STAGE_VALUES = frozenset({5})

VALID_TRANSITIONS: dict[SeedStage, tuple[SeedStage, ...]] = {
    SeedStage.UNKNOWN: (SeedStage.DORMANT,),
    SeedStage.DORMANT: (SeedStage.GERMINATED,),
    SeedStage.GERMINATED: (SeedStage.TRAINING, SeedStage.PRUNED),
    SeedStage.TRAINING: (SeedStage.BLENDING, SeedStage.PRUNED),
    SeedStage.BLENDING: (SeedStage.HOLDING, SeedStage.PRUNED),
    SeedStage.HOLDING: (SeedStage.FOSSILIZED, SeedStage.BLENDING, SeedStage.PRUNED),
    SeedStage.FOSSILIZED: (),
    SeedStage.PRUNED: (SeedStage.EMBARGOED,),
    SeedStage.EMBARGOED: (SeedStage.RESETTING,),
    SeedStage.RESETTING: (SeedStage.DORMANT,),
}

# Position of each stage in the stage one-hot used by observation features (10 entries, 5 skipped).
STAGE_ONE_HOT_INDEX: dict[SeedStage, int] = {stage: i for i, stage in enumerate(SeedStage)}
NUM_STAGES = len(STAGE_ONE_HOT_INDEX)

# Stages that hold a live, still-undecided seed (the ones a controller manages).
LIVE_STAGES = frozenset({SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING})
# A seed must have trained for at least this many epochs before it can be judged and pruned.
MIN_PRUNE_AGE = 1
# Stages that ADVANCE moves forward (HOLDING is not one: leaving HOLDING is FOSSILIZE, an explicit op).
ADVANCE_TARGET: dict[SeedStage, SeedStage] = {
    SeedStage.GERMINATED: SeedStage.TRAINING,
    SeedStage.TRAINING: SeedStage.BLENDING,
    SeedStage.BLENDING: SeedStage.HOLDING,
}
PRUNABLE_STAGES = frozenset(s for s, targets in VALID_TRANSITIONS.items() if SeedStage.PRUNED in targets)
FOSSILIZABLE_STAGES = frozenset(s for s, targets in VALID_TRANSITIONS.items() if SeedStage.FOSSILIZED in targets)


def to_stage(value: int) -> SeedStage:
    """Convert an integer to a stage, rejecting the retired value 5 and unknown values."""
    if value in RETIRED_STAGE_VALUES:
        raise ValueError(f"seed stage value {value} is retired (was SHADOWING) and is not accepted")
    try:
        return SeedStage(value)
    except ValueError:
        raise ValueError(f"unknown seed stage value {value}; valid: {[int(s) for s in SeedStage]}") from None


def check_transition(current: SeedStage, target: SeedStage) -> None:
    """Raise `IllegalTransitionError` unless `current → target` is in the transition table."""
    if target not in VALID_TRANSITIONS[current]:
        allowed = ", ".join(s.name for s in VALID_TRANSITIONS[current]) or "none (terminal)"
        raise IllegalTransitionError(f"illegal seed transition {current.name} → {target.name}; allowed: {allowed}")


def _check_tables() -> None:
    assert set(VALID_TRANSITIONS) == set(SeedStage), "every stage needs a transition row"
    assert not RETIRED_STAGE_VALUES & {int(s) for s in SeedStage}
    assert NUM_STAGES == 10
    for source, target in ADVANCE_TARGET.items():
        assert target in VALID_TRANSITIONS[source], f"ADVANCE {source.name}→{target.name} must be legal"
    assert PRUNABLE_STAGES == LIVE_STAGES
    assert FOSSILIZABLE_STAGES == {SeedStage.HOLDING}


_check_tables()
