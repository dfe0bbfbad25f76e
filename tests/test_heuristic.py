import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamiyo.core.actions import (
    AlphaCurveAction,
    AlphaMode,
    AlphaSpeedAction,
    AlphaTargetAction,
    BlueprintAction,
    GerminationStyle,
    LifecycleOp,
    TempoAction,
    topology_blueprints,
)
from tamiyo.core.observation import SlotReport, TrainingSignals
from tamiyo.core.stages import LIVE_STAGES, SeedStage
from tamiyo.policy.decisions import Decision
from tamiyo.policy.heuristic import DEFAULT_ROTATIONS, HeuristicConfig, HeuristicController

Op = LifecycleOp
Stage = SeedStage
EMPTY = SlotReport.empty()


def signals(epoch: int = 10, plateau: int = 3, stabilized: bool = True, seeds_used: int = 0,
            max_seeds: int = 0) -> TrainingSignals:
    return TrainingSignals(
        epoch=epoch, max_epochs=25, train_loss=1.0, val_loss=1.0, loss_delta=0.0, train_accuracy=50.0,
        val_accuracy=50.0, accuracy_delta=0.0, plateau_epochs=plateau, host_stabilized=stabilized,
        best_val_accuracy=50.0, best_val_loss=1.0, loss_scale=2.3, host_params=1000, seed_params=0,
        seeds_used=seeds_used, max_seeds=max_seeds, val_loss_history=(1.0,), val_accuracy_history=(50.0,),
    )


def seed(stage: SeedStage, *, age: int = 3, epochs: int = 1, improvement: float = 0.0, cf: float | None = None,
         total: float = 0.0, alpha: float = 0.0, target: float = 1.0, mode: AlphaMode = AlphaMode.HOLD,
         blueprint: BlueprintAction = BlueprintAction.CONV_LIGHT) -> SlotReport:
    return SlotReport(
        stage=stage, age=age, epochs_in_stage=epochs, improvement_since_stage_start=improvement,
        counterfactual=cf, total_improvement=total, alpha=alpha, alpha_target=target, alpha_mode=mode,
        blueprint=blueprint,
    )


def controller(topology: str = "cnn", **config) -> HeuristicController:
    return HeuristicController(HeuristicConfig(**config), topology)


def with_state(ctrl: HeuristicController, **changes) -> HeuristicController:
    ctrl.load_state_dict(ctrl.state_dict() | changes)
    return ctrl


# ---- configuration and rotation ----
def test_config_defaults_match_the_reference():
    cfg = HeuristicConfig()
    assert (cfg.plateau_epochs_to_germinate, cfg.min_epochs_before_germinate) == (3, 5)
    assert (cfg.prune_after_epochs_without_improvement, cfg.prune_if_accuracy_drops_by) == (5, 2.0)
    assert (cfg.min_improvement_to_fossilize, cfg.embargo_epochs_after_prune) == (0.5, 5)
    assert (cfg.blueprint_penalty_on_prune, cfg.blueprint_penalty_decay, cfg.blueprint_penalty_threshold) == (
        2.0, 0.5, 3.0)
    assert (cfg.ransomware_contribution_threshold, cfg.ransomware_improvement_threshold) == (0.1, 0.0)
    assert cfg.blueprint_rotation is None


def test_default_rotation_is_per_topology():
    cnn, transformer = controller("cnn"), controller("transformer")
    assert [b.name for b in cnn.rotation] == ["CONV_LIGHT", "CONV_HEAVY", "ATTENTION", "NORM", "DEPTHWISE"]
    assert [b.name for b in transformer.rotation] == ["LORA", "MLP_SMALL", "ATTENTION", "NORM", "LORA_LARGE"]
    for topology, rotation in DEFAULT_ROTATIONS.items():
        assert len(rotation) == 5 and len(set(rotation)) == 5, topology


def test_transformer_default_germinates_a_transformer_blueprint():
    decision = controller("transformer").decide(signals(), [EMPTY, EMPTY])
    assert decision.op == Op.GERMINATE and decision.action.blueprint == BlueprintAction.LORA


def test_invalid_rotation_lists_the_available_blueprints():
    with pytest.raises(ValueError) as error:
        controller("transformer", blueprint_rotation=["lora", "conv_light", "banana"])
    assert str(error.value) == (
        "blueprint_rotation contains blueprints not available for topology 'transformer': ['banana', 'conv_light']. "
        "Available: ['attention', 'flex_attention', 'lora', 'lora_large', 'mlp', 'mlp_small', 'norm']"
    )


def test_custom_rotation_list_is_accepted_and_stored_as_a_tuple():
    cfg = HeuristicConfig(blueprint_rotation=["norm", "bottleneck"])
    assert cfg.blueprint_rotation == ("norm", "bottleneck")
    assert HeuristicController(cfg, "cnn").rotation == (BlueprintAction.NORM, BlueprintAction.BOTTLENECK)


def test_unknown_topology_is_rejected():
    with pytest.raises(ValueError, match="unknown topology 'rnn'"):
        controller("rnn")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"blueprint_rotation": []}, "blueprint_rotation must not be empty"),
        ({"embargo_epochs_after_prune": -1}, "embargo_epochs_after_prune must be ≥ 0, got -1"),
        ({"blueprint_penalty_decay": 1.5}, r"blueprint_penalty_decay must lie in \[0, 1\], got 1.5"),
        ({"blueprint_penalty_threshold": 0.0}, "blueprint_penalty_threshold must be > 0"),
        ({"min_improvement_to_fossilize": float("nan")}, "min_improvement_to_fossilize must be finite"),
    ],
)
def test_bad_config_is_rejected(config, message):
    with pytest.raises(ValueError, match=message):
        HeuristicConfig(**config)


# ---- germination ----
def test_plateau_germinates_into_the_first_empty_slot_with_default_heads():
    slots = [seed(Stage.FOSSILIZED), EMPTY, EMPTY]
    decision = controller().decide(signals(plateau=3), slots)
    action = decision.action
    assert (action.op, action.slot, decision.slot_index) == (Op.GERMINATE, 1, 1)
    assert action.blueprint == BlueprintAction.CONV_LIGHT
    assert (action.style, action.tempo, action.alpha_target) == (
        GerminationStyle.SIGMOID_ADD, TempoAction.STANDARD, AlphaTargetAction.FULL)
    assert "Plateau detected (3 epochs)" in decision.reason
    assert decision.confidence == pytest.approx(0.6)
    assert controller().decide(signals(plateau=9), slots).confidence == 1.0


def test_short_plateau_waits():
    decision = controller().decide(signals(plateau=2), [EMPTY])
    assert decision.op == Op.WAIT and decision.slot_index is None
    assert decision.reason.startswith("Training progressing normally")


def test_embargo_is_checked_before_stabilisation():
    ctrl = with_state(controller(), last_prune_epoch=10)
    decision = ctrl.decide(signals(epoch=12, stabilized=False, plateau=0), [EMPTY])
    assert decision.reason == "Embargo (2/5 epochs since prune)"
    assert ctrl.decide(signals(epoch=14), [EMPTY]).op == Op.WAIT
    assert ctrl.decide(signals(epoch=15), [EMPTY]).op == Op.GERMINATE


def test_zero_embargo_never_blocks():
    ctrl = with_state(controller(embargo_epochs_after_prune=0), last_prune_epoch=10)
    assert ctrl.decide(signals(epoch=10), [EMPTY]).op == Op.GERMINATE


def test_stabilisation_is_checked_before_too_early():
    decision = controller().decide(signals(epoch=2, stabilized=False), [EMPTY])
    assert decision.reason == "Host not stabilized"


def test_too_early_is_checked_before_plateau():
    decision = controller().decide(signals(epoch=4, plateau=10), [EMPTY])
    assert decision.reason == "Too early (epoch 4 < 5)"
    assert controller().decide(signals(epoch=5, plateau=10), [EMPTY]).op == Op.GERMINATE


def test_seed_budget_blocks_germination_without_advancing_the_rotation():
    ctrl = controller()
    decision = ctrl.decide(signals(seeds_used=2, max_seeds=2), [EMPTY])
    assert decision.reason == "Seed budget spent (2/2)"
    assert ctrl.state_dict()["rotation_index"] == 0
    assert ctrl.decide(signals(seeds_used=1, max_seeds=2), [EMPTY]).op == Op.GERMINATE
    assert ctrl.decide(signals(seeds_used=50, max_seeds=0), [EMPTY]).op == Op.GERMINATE  # 0 = unlimited


def test_no_empty_slot_waits():
    decision = controller().decide(signals(), [seed(Stage.FOSSILIZED), seed(Stage.EMBARGOED)])
    assert decision.op == Op.WAIT and decision.reason == "No empty slot to germinate into"


def test_rotation_advances_and_wraps():
    ctrl = controller()
    picks = [ctrl.decide(signals(epoch=10 + k), [EMPTY]).blueprint_id for k in range(6)]
    assert picks == ["conv_light", "conv_heavy", "attention", "norm", "depthwise", "conv_light"]


# ---- penalties ----
def test_prune_adds_the_penalty_and_starts_the_embargo():
    ctrl = controller()
    failing = seed(Stage.TRAINING, epochs=5, improvement=-3.0, blueprint=BlueprintAction.NORM)
    decision = ctrl.decide(signals(epoch=8), [failing])
    assert decision.op == Op.PRUNE and decision.slot_index == 0
    assert (decision.action.alpha_speed, decision.action.alpha_curve) == (AlphaSpeedAction.INSTANT,
                                                                         AlphaCurveAction.LINEAR)
    assert ctrl.penalties == {"norm": 2.0}
    assert ctrl.decide(signals(epoch=9), [EMPTY]).reason.startswith("Embargo (1/5")


def test_penalties_decay_once_per_strictly_increasing_epoch_before_deciding():
    ctrl = with_state(controller(), penalties={"conv_light": 10.0}, last_decay_epoch=4)
    ctrl.decide(signals(epoch=5, plateau=0), [EMPTY])
    assert ctrl.penalties == {"conv_light": 5.0}
    for _ in range(3):
        ctrl.decide(signals(epoch=5, plateau=0), [EMPTY])
    assert ctrl.penalties == {"conv_light": 5.0}
    ctrl.decide(signals(epoch=4, plateau=0), [EMPTY])  # an older epoch does not decay
    assert ctrl.penalties == {"conv_light": 5.0}
    ctrl.decide(signals(epoch=6, plateau=0), [EMPTY])
    assert ctrl.penalties == {"conv_light": 2.5}


def test_penalties_below_the_floor_are_deleted():
    ctrl = with_state(controller(), penalties={"conv_light": 10.0, "norm": 0.25}, last_decay_epoch=0)
    history = []
    for epoch in range(1, 8):
        ctrl.decide(signals(epoch=epoch, plateau=0), [EMPTY])
        history.append(ctrl.penalties)
    assert history[0] == {"conv_light": 5.0, "norm": 0.125}
    assert history[1] == {"conv_light": 2.5}  # 0.0625 < 0.1 is forgotten
    assert history[5] == {"conv_light": 10.0 / 64}
    assert history[6] == {}


def test_penalty_decay_comes_before_the_new_prune_penalty():
    ctrl = with_state(controller(), last_decay_epoch=3)
    failing = seed(Stage.TRAINING, epochs=6, improvement=-5.0)
    ctrl.decide(signals(epoch=4), [failing])
    ctrl.decide(signals(epoch=5), [failing])
    assert ctrl.penalties == {"conv_light": 3.0}  # 2·0.5 + 2, reaching the threshold


def test_penalised_blueprint_is_skipped_and_the_rotation_moves_past_it():
    ctrl = with_state(controller(), penalties={"conv_light": 5.0}, last_decay_epoch=10)
    assert ctrl.decide(signals(epoch=10), [EMPTY]).blueprint_id == "conv_heavy"
    assert ctrl.state_dict()["rotation_index"] == 2


def test_just_below_threshold_is_not_skipped():
    ctrl = with_state(controller(), penalties={"conv_light": 2.99}, last_decay_epoch=10)
    assert ctrl.decide(signals(epoch=10), [EMPTY]).blueprint_id == "conv_light"


def test_all_penalised_falls_back_to_the_lowest_penalty_first_in_rotation_order():
    penalties = {"conv_light": 5.0, "conv_heavy": 3.0, "attention": 4.0, "norm": 6.0, "depthwise": 3.0}
    ctrl = with_state(controller(), penalties=penalties, rotation_index=2, last_decay_epoch=10)
    assert ctrl.decide(signals(epoch=10), [EMPTY]).blueprint_id == "conv_heavy"
    assert ctrl.state_dict()["rotation_index"] == 2


# ---- seed management ----
def test_germinated_advances():
    decision = controller().decide(signals(), [EMPTY, seed(Stage.GERMINATED, age=0)])
    assert (decision.op, decision.slot_index, decision.reason) == (Op.ADVANCE, 1, "Advance to TRAINING")


@pytest.mark.parametrize(
    ("epochs", "improvement", "op"),
    [(5, -2.01, Op.PRUNE), (5, -2.0, Op.ADVANCE), (4, -9.0, Op.ADVANCE), (9, 1.0, Op.ADVANCE)],
)
def test_training_prunes_only_after_patience_and_a_real_drop(epochs, improvement, op):
    decision = controller().decide(signals(), [seed(Stage.TRAINING, epochs=epochs, improvement=improvement)])
    assert decision.op == op and decision.slot_index == 0
    if op == Op.ADVANCE:
        assert decision.reason.startswith("Advance to BLENDING")


def test_zero_drop_threshold_prunes_any_loss():
    ctrl = controller(prune_if_accuracy_drops_by=0.0)
    assert ctrl.decide(signals(), [seed(Stage.TRAINING, epochs=5, improvement=-0.01)]).op == Op.PRUNE


def test_blending_prunes_when_failing():
    decision = controller().decide(signals(), [seed(Stage.BLENDING, epochs=6, improvement=-4.0, alpha=0.6)])
    assert decision.op == Op.PRUNE and decision.reason.startswith("Failing in BLENDING")


def test_blending_advances_only_at_full_settled_amplitude():
    ctrl = controller()
    assert ctrl.decide(signals(), [seed(Stage.BLENDING, alpha=1.0, target=1.0)]).op == Op.ADVANCE
    partial = ctrl.decide(signals(), [seed(Stage.BLENDING, alpha=0.5, target=1.0, mode=AlphaMode.UP)])
    assert (partial.op, partial.slot_index) == (Op.WAIT, 0)
    assert partial.reason == "Blending: alpha=0.50 toward 1.00"
    moving = ctrl.decide(signals(), [seed(Stage.BLENDING, alpha=1.0, target=1.0, mode=AlphaMode.UP)])
    assert moving.op == Op.WAIT
    assert ctrl.decide(signals(), [seed(Stage.BLENDING, alpha=0.7, target=0.7)]).op == Op.WAIT


def test_ransomware_is_pruned_before_fossilize_is_considered():
    decision = controller().decide(signals(), [seed(Stage.HOLDING, cf=10.0, total=-1.0)])
    assert decision.op == Op.PRUNE and decision.reason.startswith("Ransomware pattern")


def test_small_counterfactual_with_negative_total_is_judged_normally():
    decision = controller().decide(signals(), [seed(Stage.HOLDING, cf=0.05, total=-1.0)])
    assert decision.op == Op.PRUNE and decision.reason.startswith("No improvement in HOLDING")


@pytest.mark.parametrize(
    ("cf", "total", "op"),
    [
        (0.5, 9.0, Op.PRUNE),  # strictly greater than 0.5 is needed; the counterfactual is preferred
        (0.51, -9.0, Op.PRUNE),  # ransomware: 0.51 > 0.1 with negative total
        (0.51, 0.0, Op.FOSSILIZE),
        (-1.0, 10.0, Op.PRUNE),
        (None, 2.0, Op.FOSSILIZE),  # total improvement used without a counterfactual
        (None, 0.5, Op.PRUNE),
    ],
)
def test_holding_fossilizes_only_on_strict_improvement(cf, total, op):
    decision = controller().decide(signals(), [seed(Stage.HOLDING, cf=cf, total=total)])
    assert decision.op == op and decision.slot_index == 0


def test_fossilize_confidence_scales_with_improvement():
    ctrl = controller()
    assert ctrl.decide(signals(), [seed(Stage.HOLDING, cf=2.0)]).confidence == pytest.approx(0.4)
    assert ctrl.decide(signals(), [seed(Stage.HOLDING, cf=12.0)]).confidence == 1.0
    assert ctrl.penalties == {}


def test_only_the_first_live_seed_is_managed():
    ctrl = controller()
    slots = [seed(Stage.FOSSILIZED), seed(Stage.TRAINING, epochs=1), seed(Stage.HOLDING, cf=-5.0)]
    assert (ctrl.decide(signals(), slots).op, ctrl.decide(signals(), slots).slot_index) == (Op.ADVANCE, 1)
    slots = [seed(Stage.PRUNED), seed(Stage.FOSSILIZED), seed(Stage.HOLDING, cf=3.0)]
    assert ctrl.decide(signals(), slots).slot_index == 2


def test_a_live_seed_blocks_germination_even_with_empty_slots():
    decision = controller().decide(signals(plateau=10), [EMPTY, seed(Stage.BLENDING, alpha=0.3, mode=AlphaMode.UP)])
    assert decision.op == Op.WAIT and decision.slot_index == 1


# ---- legality of prunes ----
def test_prune_of_a_seed_younger_than_one_epoch_becomes_a_wait():
    ctrl = controller(prune_after_epochs_without_improvement=0)
    decision = ctrl.decide(signals(), [seed(Stage.TRAINING, age=0, epochs=0, improvement=-5.0)])
    assert (decision.op, decision.slot_index) == (Op.WAIT, 0)
    assert decision.reason.endswith("cannot prune yet (the seed is younger than 1 epoch)")
    assert ctrl.penalties == {} and ctrl.state_dict()["last_prune_epoch"] is None


def test_prune_while_alpha_moves_becomes_a_wait():
    moving = seed(Stage.HOLDING, cf=-1.0, alpha=0.8, target=0.5, mode=AlphaMode.DOWN)
    decision = controller().decide(signals(), [moving])
    assert decision.op == Op.WAIT and decision.reason.endswith("cannot prune yet (alpha is still moving)")


# ---- state ----
def test_state_dict_is_plain_and_round_trips():
    ctrl = controller()
    ctrl.decide(signals(epoch=6), [EMPTY])
    ctrl.decide(signals(epoch=8), [seed(Stage.TRAINING, epochs=5, improvement=-3.0)])
    state = json.loads(json.dumps(ctrl.state_dict()))
    assert state == {"penalties": {"conv_light": 2.0}, "rotation_index": 1, "last_prune_epoch": 8,
                     "last_decay_epoch": 8}
    restored = controller()
    restored.load_state_dict(state)
    for epoch in (12, 13, 14):
        assert restored.decide(signals(epoch=epoch), [EMPTY]) == ctrl.decide(signals(epoch=epoch), [EMPTY])


def test_load_state_dict_rejects_bad_state():
    ctrl = controller()
    with pytest.raises(ValueError, match="needs exactly the keys"):
        ctrl.load_state_dict({"penalties": {}})
    with pytest.raises(ValueError, match=r"unknown blueprints \['banana'\]"):
        ctrl.load_state_dict(ctrl.state_dict() | {"penalties": {"banana": 1.0}})
    with pytest.raises(ValueError, match="rotation_index 5 out of range for a rotation of 5"):
        ctrl.load_state_dict(ctrl.state_dict() | {"rotation_index": 5})
    with pytest.raises(ValueError, match="last_prune_epoch must be an int or None, got '3'"):
        ctrl.load_state_dict(ctrl.state_dict() | {"last_prune_epoch": "3"})


def test_reset_clears_penalties_rotation_and_embargo():
    ctrl = controller()
    ctrl.decide(signals(epoch=6), [EMPTY])
    ctrl.decide(signals(epoch=8), [seed(Stage.TRAINING, epochs=5, improvement=-3.0)])
    ctrl.reset()
    assert ctrl.state_dict() == controller().state_dict()
    assert ctrl.decide(signals(epoch=9), [EMPTY]).blueprint_id == "conv_light"


def test_empty_slot_list_is_rejected():
    with pytest.raises(ValueError, match="one SlotReport per slot"):
        controller().decide(signals(), [])


# ---- properties over random situations ----
def slot_reports(topology: str) -> st.SearchStrategy[SlotReport]:
    blueprints = sorted(topology_blueprints(topology))
    live_or_dead = st.builds(
        seed,
        st.sampled_from(sorted(set(SeedStage) - {Stage.UNKNOWN, Stage.DORMANT})),
        age=st.integers(0, 6),
        epochs=st.integers(0, 8),
        improvement=st.floats(-10, 10),
        cf=st.none() | st.floats(-10, 10),
        total=st.floats(-10, 10),
        alpha=st.sampled_from([0.0, 0.5, 1.0]),
        target=st.sampled_from([0.5, 0.7, 1.0]),
        mode=st.sampled_from(list(AlphaMode)),
        blueprint=st.sampled_from(blueprints),
    )
    return st.just(EMPTY) | live_or_dead


def situations(topology: str):
    step = st.tuples(
        st.builds(signals, plateau=st.integers(0, 6), stabilized=st.booleans(), seeds_used=st.integers(0, 3),
                  max_seeds=st.integers(0, 3)),
        st.lists(slot_reports(topology), min_size=1, max_size=3),
        st.integers(0, 2),  # epochs elapsed since the previous decision
    )
    return st.lists(step, min_size=1, max_size=15)


def is_legal(decision: Decision, slots: list[SlotReport], sig: TrainingSignals, topology: str) -> bool:
    """The action-mask table, written out independently."""
    op = decision.op
    if op == Op.WAIT:
        return True
    report = slots[decision.action.slot]
    if op == Op.GERMINATE:
        budget_left = sig.max_seeds == 0 or sig.seeds_used < sig.max_seeds
        return report.is_empty and budget_left and decision.action.blueprint in topology_blueprints(topology)
    if op == Op.ADVANCE:
        return report.stage in (Stage.GERMINATED, Stage.TRAINING, Stage.BLENDING)
    if op == Op.PRUNE:
        return report.stage in LIVE_STAGES and report.age >= 1 and report.alpha_holding
    if op == Op.FOSSILIZE:
        return report.stage == Stage.HOLDING
    return False  # the heuristic never retargets alpha


@settings(max_examples=60, deadline=None)
@given(topology=st.sampled_from(["cnn", "transformer"]), data=st.data())
def test_decisions_are_legal_deterministic_and_respect_the_embargo(topology, data):
    steps = data.draw(situations(topology))
    first, second = controller(topology), controller(topology)
    epoch, last_prune = 0, None
    for sig, slots, elapsed in steps:
        epoch += elapsed
        sig = dataclasses.replace(sig, epoch=epoch, seeds_used=min(sig.seeds_used, sig.max_seeds or 3))
        decision = first.decide(sig, slots)
        assert second.decide(sig, slots) == decision
        assert decision.reason.strip() and 0.0 <= decision.confidence <= 1.0
        assert is_legal(decision, slots, sig, topology), (decision, slots)
        if decision.op == Op.GERMINATE:
            assert last_prune is None or epoch - last_prune >= 5
        if decision.op == Op.PRUNE:
            last_prune = epoch
    assert first.state_dict() == second.state_dict()
