"""Action masks: the per-slot rule table, seed budget, topology, style/alpha_target
collapse, op-conditioned slot masks and a property test against an independent reference."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tamiyo.core.actions import HEAD_NAMES, AlphaMode, BlueprintAction, GerminationStyle, LifecycleOp
from tamiyo.core.observation import NUM_SLOT_FIELDS, ObservationBatch, SlotField, SlotReport, TrainingSignals
from tamiyo.core.stages import SeedStage
from tamiyo.policy.masks import ActionMasks, compute_masks

W, G, SET, P, F, A = (
    LifecycleOp.WAIT, LifecycleOp.GERMINATE, LifecycleOp.SET_ALPHA_TARGET,
    LifecycleOp.PRUNE, LifecycleOp.FOSSILIZE, LifecycleOp.ADVANCE,
)
HOLD, UP, DOWN = AlphaMode.HOLD, AlphaMode.UP, AlphaMode.DOWN


def signals(seeds_used: int = 0, max_seeds: int = 0) -> TrainingSignals:
    return TrainingSignals(
        epoch=3, max_epochs=25, train_loss=1.0, val_loss=1.1, loss_delta=0.1, train_accuracy=60.0,
        val_accuracy=58.0, accuracy_delta=1.0, plateau_epochs=0, host_stabilized=False, best_val_accuracy=58.0,
        best_val_loss=1.1, loss_scale=2.3, host_params=1000, seed_params=0, seeds_used=seeds_used,
        max_seeds=max_seeds, val_loss_history=(1.1,), val_accuracy_history=(58.0,),
    )


def slot(stage: SeedStage, age: int = 0, mode: AlphaMode = HOLD) -> SlotReport:
    return SlotReport(stage=stage, age=age, alpha_mode=mode)


def batch(envs: list[list[SlotReport]], budgets: list[tuple[int, int]] | None = None) -> ObservationBatch:
    budgets = budgets or [(0, 0)] * len(envs)
    return ObservationBatch.pack([signals(*b) for b in budgets], envs)


def allowed_ops(masks: ActionMasks, env: int = 0) -> set[LifecycleOp]:
    return {LifecycleOp(o) for o in range(len(LifecycleOp)) if masks.op[env, o]}


# The mask table written out literally: stage → ops besides WAIT for
# (age 0 & holding, age ≥ 1 & holding, age 0 & moving, age ≥ 1 & moving).
SPEC_TABLE: dict[SeedStage, tuple[set, set, set, set]] = {
    SeedStage.DORMANT: ({G}, {G}, {G}, {G}),
    SeedStage.GERMINATED: ({A}, {A, P}, {A}, {A}),
    SeedStage.TRAINING: ({A}, {A, P}, {A}, {A}),
    SeedStage.BLENDING: ({A, SET}, {A, SET, P}, {A}, {A}),
    SeedStage.HOLDING: ({F, SET}, {F, SET, P}, {F}, {F}),
    SeedStage.FOSSILIZED: (set(), set(), set(), set()),
    SeedStage.PRUNED: (set(), set(), set(), set()),
    SeedStage.EMBARGOED: (set(), set(), set(), set()),
    SeedStage.RESETTING: (set(), set(), set(), set()),
    SeedStage.UNKNOWN: (set(), set(), set(), set()),
}
TABLE_CASES = [
    (stage, age, mode, expected)
    for stage, row in SPEC_TABLE.items()
    for (age, mode), expected in zip([(0, HOLD), (1, HOLD), (0, UP), (1, DOWN)], row, strict=True)
] + [(stage, 5, HOLD, SPEC_TABLE[stage][1]) for stage in SPEC_TABLE]


@pytest.mark.parametrize(
    ("stage", "age", "mode", "expected"), TABLE_CASES, ids=[f"{s.name}-age{a}-{m.name}" for s, a, m, _ in TABLE_CASES]
)
def test_single_slot_follows_spec_table(stage: SeedStage, age: int, mode: AlphaMode, expected: set) -> None:
    masks = compute_masks(batch([[slot(stage, age, mode)]]))
    assert allowed_ops(masks) == expected | {W}
    assert masks.slot_by_op[0, :, 0].tolist() == [op in expected | {W} for op in LifecycleOp]


def test_op_mask_is_union_and_slot_rows_pick_the_legal_slots() -> None:
    envs = [[slot(SeedStage.DORMANT), slot(SeedStage.TRAINING, 2), slot(SeedStage.HOLDING, 2, UP)]]
    masks = compute_masks(batch(envs))
    assert allowed_ops(masks) == {W, G, P, A, F}
    rows = masks.slot_by_op[0]
    assert rows[W].tolist() == [True, True, True]
    assert rows[G].tolist() == [True, False, False]
    assert rows[A].tolist() == [False, True, False]
    assert rows[P].tolist() == [False, True, False]
    assert rows[F].tolist() == [False, False, True]
    assert rows[SET].tolist() == [False, False, False]


@pytest.mark.parametrize(
    ("seeds_used", "max_seeds", "germinate"),
    [(3, 3, False), (4, 3, False), (2, 3, True), (0, 1, True), (100, 0, True)],
)
def test_seed_budget_gates_only_germinate(seeds_used: int, max_seeds: int, germinate: bool) -> None:
    masks = compute_masks(batch([[slot(SeedStage.DORMANT), slot(SeedStage.HOLDING)]], [(seeds_used, max_seeds)]))
    assert allowed_ops(masks) == ({W, SET, F, G} if germinate else {W, SET, F})
    assert masks.slot_by_op[0, G].tolist() == [germinate, False]


def test_seed_budget_is_per_env() -> None:
    envs = [[slot(SeedStage.DORMANT)]] * 3
    masks = compute_masks(batch(envs, [(2, 2), (1, 2), (5, 0)]))
    assert masks.op[:, G].tolist() == [False, True, True]


@pytest.mark.parametrize(
    ("topology", "allowed"),
    [
        ("cnn", {"CONV_LIGHT", "ATTENTION", "NORM", "DEPTHWISE", "BOTTLENECK", "CONV_SMALL", "CONV_HEAVY"}),
        ("transformer", {"ATTENTION", "NORM", "LORA", "LORA_LARGE", "MLP_SMALL", "MLP", "FLEX_ATTENTION"}),
    ],
)
def test_blueprint_mask_follows_topology(topology: str, allowed: set[str]) -> None:
    masks = compute_masks(batch([[slot(SeedStage.DORMANT)]] * 2), topology)
    assert masks.blueprint.shape == (2, len(BlueprintAction))
    for env in range(2):
        assert {BlueprintAction(i).name for i in range(len(BlueprintAction)) if masks.blueprint[env, i]} == allowed
    assert not masks.blueprint[:, BlueprintAction.NOOP].any()


def test_unknown_topology_raises() -> None:
    with pytest.raises(ValueError, match="unknown topology 'mlp'"):
        compute_masks(batch([[slot(SeedStage.DORMANT)]]), "mlp")


@pytest.mark.parametrize(
    ("env", "budget", "open_"),
    [
        ([slot(SeedStage.DORMANT)], (0, 0), True),  # germination possible
        ([slot(SeedStage.BLENDING, 0, HOLD)], (0, 0), True),  # retargeting possible
        ([slot(SeedStage.HOLDING, 3, HOLD), slot(SeedStage.FOSSILIZED)], (0, 0), True),
        ([slot(SeedStage.FOSSILIZED), slot(SeedStage.TRAINING, 3)], (0, 0), False),
        ([slot(SeedStage.DORMANT), slot(SeedStage.HOLDING, 3, DOWN)], (2, 2), False),  # budget spent, alpha moving
    ],
)
def test_style_and_alpha_target_collapse_to_defaults(env: list[SlotReport], budget: tuple, open_: bool) -> None:
    masks = compute_masks(batch([env], [budget]))
    if open_:
        assert masks.style.all() and masks.alpha_target.all()
    else:
        assert masks.style[0].tolist() == [s == GerminationStyle.SIGMOID_ADD for s in GerminationStyle]
        assert masks.alpha_target[0].tolist() == [False, False, True]


def test_tempo_alpha_speed_and_curve_are_always_open() -> None:
    masks = compute_masks(batch([[slot(SeedStage.FOSSILIZED)], [slot(SeedStage.DORMANT)]]))
    assert masks.tempo.shape == (2, 3) and masks.tempo.all()
    assert masks.alpha_speed.shape == (2, 4) and masks.alpha_speed.all()
    assert masks.alpha_curve.shape == (2, 5) and masks.alpha_curve.all()


def test_for_op_takes_the_sampled_ops_slot_row() -> None:
    env = [slot(SeedStage.DORMANT), slot(SeedStage.TRAINING, 2), slot(SeedStage.HOLDING, 2)]
    masks = compute_masks(batch([env] * 5))
    op = torch.tensor([W, G, P, F, A])
    heads = masks.for_op(op)
    assert tuple(heads) == HEAD_NAMES
    assert heads["slot"].tolist() == [
        [True, True, True], [True, False, False], [False, True, True], [False, False, True], [False, True, False],
    ]
    assert heads["op"] is masks.op and heads["blueprint"] is masks.blueprint and heads["style"] is masks.style


def test_index_and_to_keep_every_head() -> None:
    masks = compute_masks(batch([[slot(SeedStage.DORMANT)], [slot(SeedStage.HOLDING, 2)], [slot(SeedStage.PRUNED)]]))
    picked = masks.index(torch.tensor([2, 0])).to("cpu")
    assert allowed_ops(picked, 0) == {W} and allowed_ops(picked, 1) == {W, G}
    assert picked.slot_by_op.shape == (2, 6, 1) and picked.alpha_curve.shape == (2, 5)


def test_without_ops_closes_those_ops_on_every_slot_and_keeps_the_rest() -> None:
    envs = [[slot(SeedStage.DORMANT), slot(SeedStage.TRAINING, 2), slot(SeedStage.HOLDING, 2)]]
    masks = compute_masks(batch(envs))
    pruneless = masks.without_ops({P})
    assert allowed_ops(pruneless) == allowed_ops(masks) - {P} == {W, G, A, F, SET}
    assert not pruneless.slot_by_op[0, P].any()
    assert torch.equal(pruneless.slot_by_op[0, G], masks.slot_by_op[0, G])
    # Without GERMINATE (nor SET_ALPHA_TARGET) the style head has nothing to choose: it collapses to its default.
    assert pruneless.style.sum().item() > 1 and masks.without_ops({G, SET}).style.sum().item() == 1
    with pytest.raises(ValueError, match="WAIT is always legal"):
        masks.without_ops({W})


def test_for_op_rejects_a_wrongly_shaped_op() -> None:
    masks = compute_masks(batch([[slot(SeedStage.DORMANT)]] * 2))
    with pytest.raises(ValueError, match=r"op must be \[2\], got \[2, 1\]"):
        masks.for_op(torch.zeros(2, 1, dtype=torch.long))


@pytest.mark.parametrize("value", [5, 11, -1])
def test_invalid_stage_values_raise(value: int) -> None:
    obs = batch([[slot(SeedStage.DORMANT), slot(SeedStage.TRAINING)]])
    obs.slots[0, 1, SlotField.STAGE] = value
    with pytest.raises(ValueError, match=f"invalid seed stage value {value}"):
        compute_masks(obs)


def test_zero_slots_raise() -> None:
    obs = ObservationBatch(signals=batch([[slot(SeedStage.DORMANT)]]).signals, slots=torch.zeros(1, 0, NUM_SLOT_FIELDS))
    with pytest.raises(ValueError, match="0 slots"):
        compute_masks(obs)


def test_action_masks_validates_shapes() -> None:
    masks = compute_masks(batch([[slot(SeedStage.DORMANT)]]))
    parts = {name: getattr(masks, name) for name in ("op", "slot_by_op", "blueprint", "style", "tempo",
                                                      "alpha_target", "alpha_speed", "alpha_curve")}
    with pytest.raises(ValueError, match=r"tempo mask must be bool \[1, 3\]"):
        ActionMasks(**{**parts, "tempo": torch.ones(1, 4, dtype=torch.bool)})


# ---- property test against an independent per-slot reference ----

def reference_ops(stage: SeedStage, age: int, mode: AlphaMode, budget_left: bool) -> set[LifecycleOp]:
    holding = mode == HOLD
    if stage == SeedStage.DORMANT:
        return {W, G} if budget_left else {W}
    if stage in (SeedStage.GERMINATED, SeedStage.TRAINING):
        return {W, A} | ({P} if age >= 1 and holding else set())
    if stage == SeedStage.BLENDING:
        return {W, A} | ({SET} if holding else set()) | ({P} if age >= 1 and holding else set())
    if stage == SeedStage.HOLDING:
        return {W, F} | ({SET} if holding else set()) | ({P} if age >= 1 and holding else set())
    return {W}


slot_states = st.tuples(st.sampled_from(list(SeedStage)), st.integers(0, 3), st.sampled_from(list(AlphaMode)))


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[list[tuple]], list[tuple[int, int]]]:
    num_envs, num_slots = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    envs = [draw(st.lists(slot_states, min_size=num_slots, max_size=num_slots)) for _ in range(num_envs)]
    budgets = draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=num_envs, max_size=num_envs))
    return envs, budgets


@settings(max_examples=60, deadline=None)
@given(batches())
def test_masks_allow_exactly_the_legal_pairs(drawn: tuple) -> None:
    envs, budgets = drawn
    obs = batch([[slot(*state) for state in env] for env in envs], budgets)
    masks = compute_masks(obs)
    for e, (env, (used, limit)) in enumerate(zip(envs, budgets, strict=True)):
        budget_left = limit == 0 or used < limit
        legal = [reference_ops(*state, budget_left) for state in env]
        for op in LifecycleOp:
            assert masks.slot_by_op[e, op].tolist() == [op in ops for ops in legal]
        assert allowed_ops(masks, e) == set().union(*legal)
        assert masks.op[e, W]
        choosable = bool(masks.op[e, G] or masks.op[e, SET])
        assert bool(masks.style[e].all()) == choosable and bool(masks.alpha_target[e].all()) == choosable
        alone = compute_masks(ObservationBatch(obs.signals[e : e + 1], obs.slots[e : e + 1]))
        part = masks.index(slice(e, e + 1))
        for name in ("op", "slot_by_op", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve"):
            assert torch.equal(getattr(alone, name), getattr(part, name)), name
