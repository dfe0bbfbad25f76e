"""The factored action space: eight heads, their enums and value tables, topology blueprint sets,
head relevance per lifecycle op, and the `FactoredAction` record.

All lookup tables are cross-checked at import time (`_check_tables`) so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tamiyo.core.slots import SlotConfig


class BlueprintAction(IntEnum):
    NOOP = 0
    CONV_LIGHT = 1
    ATTENTION = 2
    NORM = 3
    DEPTHWISE = 4
    BOTTLENECK = 5
    CONV_SMALL = 6
    CONV_HEAVY = 7
    LORA = 8
    LORA_LARGE = 9
    MLP_SMALL = 10
    MLP = 11
    FLEX_ATTENTION = 12


class GerminationStyle(IntEnum):
    LINEAR_ADD = 0
    LINEAR_MULTIPLY = 1
    SIGMOID_ADD = 2
    GATED_GATE = 3


class TempoAction(IntEnum):
    FAST = 0
    STANDARD = 1
    SLOW = 2


class AlphaTargetAction(IntEnum):
    HALF = 0
    SEVENTY = 1
    FULL = 2


class AlphaSpeedAction(IntEnum):
    INSTANT = 0
    FAST = 1
    MEDIUM = 2
    SLOW = 3


class AlphaCurveAction(IntEnum):
    LINEAR = 0
    COSINE = 1
    SIGMOID_GENTLE = 2
    SIGMOID = 3
    SIGMOID_SHARP = 4


class LifecycleOp(IntEnum):
    WAIT = 0
    GERMINATE = 1
    SET_ALPHA_TARGET = 2
    PRUNE = 3
    FOSSILIZE = 4
    ADVANCE = 5


class AlphaMode(IntEnum):
    """Direction the alpha controller is moving; HOLD means alpha is settled."""

    HOLD = 0
    UP = 1
    DOWN = 2


class AlphaCurve(IntEnum):
    LINEAR = 1
    COSINE = 2
    SIGMOID = 3


class AlphaAlgorithm(IntEnum):
    """How a blending seed's output is composed with the host's."""

    ADD = 1
    MULTIPLY = 2
    GATE = 3


class BlendShape(IntEnum):
    """Shape of the initial blend ramp chosen by the germination style."""

    LINEAR = 0
    SIGMOID = 1
    GATED = 2


# ---- value tables (index = enum value) ----
BLUEPRINT_IDS: tuple[str, ...] = (
    "noop", "conv_light", "attention", "norm", "depthwise", "bottleneck", "conv_small",
    "conv_heavy", "lora", "lora_large", "mlp_small", "mlp", "flex_attention",
)
STYLE_TO_BLEND: tuple[tuple[BlendShape, AlphaAlgorithm], ...] = (
    (BlendShape.LINEAR, AlphaAlgorithm.ADD),
    (BlendShape.LINEAR, AlphaAlgorithm.MULTIPLY),
    (BlendShape.SIGMOID, AlphaAlgorithm.ADD),
    (BlendShape.GATED, AlphaAlgorithm.GATE),
)
TEMPO_EPOCHS: tuple[int, ...] = (3, 5, 8)
ALPHA_TARGET_VALUES: tuple[float, ...] = (0.5, 0.7, 1.0)
ALPHA_SPEED_STEPS: tuple[int, ...] = (0, 3, 5, 8)
ALPHA_CURVE_SHAPES: tuple[AlphaCurve, ...] = (
    AlphaCurve.LINEAR, AlphaCurve.COSINE, AlphaCurve.SIGMOID, AlphaCurve.SIGMOID, AlphaCurve.SIGMOID,
)
# Steepness only matters for the sigmoid family; 12 is carried for LINEAR/COSINE for uniformity.
ALPHA_CURVE_STEEPNESS: tuple[float, ...] = (12.0, 12.0, 6.0, 12.0, 24.0)

CNN_BLUEPRINTS = frozenset({
    BlueprintAction.CONV_LIGHT, BlueprintAction.ATTENTION, BlueprintAction.NORM, BlueprintAction.DEPTHWISE,
    BlueprintAction.BOTTLENECK, BlueprintAction.CONV_SMALL, BlueprintAction.CONV_HEAVY,
})
TRANSFORMER_BLUEPRINTS = frozenset({
    BlueprintAction.ATTENTION, BlueprintAction.NORM, BlueprintAction.LORA, BlueprintAction.LORA_LARGE,
    BlueprintAction.MLP_SMALL, BlueprintAction.MLP, BlueprintAction.FLEX_ATTENTION,
})
TOPOLOGY_BLUEPRINTS: dict[str, frozenset[BlueprintAction]] = {
    "cnn": CNN_BLUEPRINTS,
    "transformer": TRANSFORMER_BLUEPRINTS,
}

# ---- heads ----
HEAD_NAMES: tuple[str, ...] = (
    "slot", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve", "op",
)
HEAD_ENUMS: dict[str, type[IntEnum] | None] = {
    "slot": None,
    "blueprint": BlueprintAction,
    "style": GerminationStyle,
    "tempo": TempoAction,
    "alpha_target": AlphaTargetAction,
    "alpha_speed": AlphaSpeedAction,
    "alpha_curve": AlphaCurveAction,
    "op": LifecycleOp,
}
NUM_HEADS = len(HEAD_NAMES)
HEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(HEAD_NAMES)}

# Which heads matter for each op. Used by sampling, the loss, entropy and logging.
_OP = LifecycleOp
HEAD_RELEVANCE: dict[LifecycleOp, frozenset[str]] = {
    _OP.WAIT: frozenset({"op"}),
    _OP.GERMINATE: frozenset({"op", "slot", "blueprint", "tempo", "style", "alpha_target"}),
    _OP.SET_ALPHA_TARGET: frozenset({"op", "slot", "style", "alpha_target", "alpha_speed", "alpha_curve"}),
    _OP.PRUNE: frozenset({"op", "slot", "alpha_speed", "alpha_curve"}),
    _OP.FOSSILIZE: frozenset({"op", "slot"}),
    _OP.ADVANCE: frozenset({"op", "slot"}),
}

# Value an irrelevant head takes (its log-prob and entropy are 0). Style uses SIGMOID_ADD;
# blueprint uses NOOP, which is never sampled, so an irrelevant choice is visible.
IRRELEVANT_HEAD_VALUE: dict[str, int] = {
    "slot": 0,
    "blueprint": int(BlueprintAction.NOOP),
    "style": int(GerminationStyle.SIGMOID_ADD),
    "tempo": int(TempoAction.STANDARD),
    "alpha_target": int(AlphaTargetAction.FULL),
    "alpha_speed": int(AlphaSpeedAction.INSTANT),
    "alpha_curve": int(AlphaCurveAction.LINEAR),
    "op": int(LifecycleOp.WAIT),
}


def head_sizes(slot_config: SlotConfig) -> dict[str, int]:
    """Number of choices of each head, in canonical head order."""
    return {name: (slot_config.num_slots if enum is None else len(enum)) for name, enum in HEAD_ENUMS.items()}


def relevance_table() -> list[list[bool]]:
    """`[op][head]` booleans, in `LifecycleOp` and `HEAD_NAMES` order (turn into a tensor where needed)."""
    return [[name in HEAD_RELEVANCE[op] for name in HEAD_NAMES] for op in LifecycleOp]


def topology_blueprints(topology: str) -> frozenset[BlueprintAction]:
    try:
        return TOPOLOGY_BLUEPRINTS[topology]
    except KeyError:
        raise ValueError(f"unknown topology {topology!r}; choose one of {sorted(TOPOLOGY_BLUEPRINTS)}") from None


def blueprint_from_id(blueprint_id: str) -> BlueprintAction:
    try:
        return BlueprintAction(BLUEPRINT_IDS.index(blueprint_id))
    except ValueError:
        raise ValueError(f"unknown blueprint {blueprint_id!r}; choose one of {list(BLUEPRINT_IDS)}") from None


@dataclass(frozen=True, slots=True)
class FactoredAction:
    """One decision: the eight head choices, in canonical head order."""

    slot: int
    blueprint: BlueprintAction
    style: GerminationStyle
    tempo: TempoAction
    alpha_target: AlphaTargetAction
    alpha_speed: AlphaSpeedAction
    alpha_curve: AlphaCurveAction
    op: LifecycleOp

    @classmethod
    def from_indices(cls, indices: tuple[int, ...] | list[int]) -> FactoredAction:
        """Build from eight integers in head order; out-of-range values raise ValueError."""
        if len(indices) != NUM_HEADS:
            raise ValueError(f"a factored action needs {NUM_HEADS} indices, got {len(indices)}")
        slot, *rest = (int(i) for i in indices)
        if slot < 0:
            raise ValueError(f"slot index must be ≥ 0, got {slot}")
        enums = [HEAD_ENUMS[name] for name in HEAD_NAMES[1:]]
        return cls(slot, *(enum(v) for enum, v in zip(enums, rest, strict=True)))  # type: ignore[misc]

    @classmethod
    def wait(cls) -> FactoredAction:
        return cls.from_indices([IRRELEVANT_HEAD_VALUE[name] for name in HEAD_NAMES])

    def to_indices(self) -> tuple[int, ...]:
        return tuple(int(getattr(self, name)) for name in HEAD_NAMES)

    @property
    def blueprint_id(self) -> str:
        return BLUEPRINT_IDS[self.blueprint]

    @property
    def blend_shape(self) -> BlendShape:
        return STYLE_TO_BLEND[self.style][0]

    @property
    def alpha_algorithm(self) -> AlphaAlgorithm:
        return STYLE_TO_BLEND[self.style][1]

    @property
    def tempo_epochs(self) -> int:
        return TEMPO_EPOCHS[self.tempo]

    @property
    def alpha_target_value(self) -> float:
        return ALPHA_TARGET_VALUES[self.alpha_target]

    @property
    def alpha_speed_steps(self) -> int:
        return ALPHA_SPEED_STEPS[self.alpha_speed]

    @property
    def alpha_curve_shape(self) -> AlphaCurve:
        return ALPHA_CURVE_SHAPES[self.alpha_curve]

    @property
    def alpha_curve_steepness(self) -> float:
        return ALPHA_CURVE_STEEPNESS[self.alpha_curve]


def _check_tables() -> None:
    """Import-time consistency checks between enums and their value tables."""
    assert len(BLUEPRINT_IDS) == len(BlueprintAction)
    for bp in BlueprintAction:
        assert BLUEPRINT_IDS[bp] == bp.name.lower(), f"blueprint id table out of sync at {bp.name}"
    assert len(STYLE_TO_BLEND) == len(GerminationStyle)
    for style, (shape, algorithm) in zip(GerminationStyle, STYLE_TO_BLEND, strict=True):
        parts = style.name.split("_")
        assert parts[0] == {"LINEAR": "LINEAR", "SIGMOID": "SIGMOID", "GATED": "GATED"}[shape.name]
        assert parts[1] == algorithm.name, f"style table out of sync at {style.name}"
    assert len(TEMPO_EPOCHS) == len(TempoAction)
    assert len(ALPHA_TARGET_VALUES) == len(AlphaTargetAction)
    assert len(ALPHA_SPEED_STEPS) == len(AlphaSpeedAction)
    assert len(ALPHA_CURVE_SHAPES) == len(ALPHA_CURVE_STEEPNESS) == len(AlphaCurveAction)
    for action, shape in zip(AlphaCurveAction, ALPHA_CURVE_SHAPES, strict=True):
        assert action.name.startswith(shape.name), f"alpha curve table out of sync at {action.name}"
    assert tuple(HEAD_ENUMS) == HEAD_NAMES
    assert set(HEAD_RELEVANCE) == set(LifecycleOp)
    assert all("op" in heads for heads in HEAD_RELEVANCE.values())
    assert set(IRRELEVANT_HEAD_VALUE) == set(HEAD_NAMES)
    for topology, blueprints in TOPOLOGY_BLUEPRINTS.items():
        assert BlueprintAction.NOOP not in blueprints, f"noop must never be sampled ({topology})"


_check_tables()
