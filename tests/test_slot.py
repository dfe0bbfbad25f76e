"""SeedSlot: lifecycle operations and timelines, gates, per-stage forward and gradients, rollback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tamiyo.core.actions import (
    AlphaAlgorithm,
    AlphaCurve,
    AlphaCurveAction,
    AlphaMode,
    BlueprintAction,
    GerminationStyle,
)
from tamiyo.core.observation import SlotReport
from tamiyo.core.stages import IllegalTransitionError, SeedStage
from tamiyo.env.gates import GateConfig
from tamiyo.env.slot import IllegalSlotOperationError, SeedSlot

C = 4


class ResidualConv(nn.Module):
    """Stand-in seed: x + conv(x), shape-preserving for [B, C, L]."""

    def __init__(self, channels: int = C) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class TinyHost(nn.Module):
    """pre-conv → slot → linear head; the slot is the only injection point."""

    def __init__(self, slot: SeedSlot) -> None:
        super().__init__()
        self.pre = nn.Conv1d(1, C, 3, padding=1)
        self.slot = slot
        self.head = nn.Linear(C * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.slot(self.pre(x)).flatten(1))


def new_slot(gates: GateConfig | None = None) -> SeedSlot:
    return SeedSlot("r0c1", C, "conv1d", gates)


def germinated(style: GerminationStyle = GerminationStyle.LINEAR_ADD, tempo: int = 3, target: float = 1.0,
               gates: GateConfig | None = None) -> SeedSlot:
    torch.manual_seed(0)
    slot = new_slot(gates)
    slot.germinate(ResidualConv(), BlueprintAction.CONV_LIGHT, style, tempo, target, accuracy=50.0)
    return slot


def to_stage(slot: SeedSlot, stage: SeedStage) -> SeedSlot:
    """Drive a germinated slot to `stage` along the fastest path (decision, then step_epoch)."""
    while slot.stage is not stage:
        if slot.stage is SeedStage.HOLDING:
            slot.record_validation(52.0, counterfactual=1.5)
            assert slot.fossilize()
        else:
            slot.advance()  # a refused gate is a wasted decision, like WAIT
        if slot.stage is stage:
            break
        slot.step_epoch()
    return slot


def test_empty_slot_reports_empty_and_is_identity() -> None:
    slot = new_slot()
    assert slot.report() == SlotReport.empty() and slot.is_empty
    h = torch.randn(2, C, 6)
    assert slot(h) is h
    assert slot.live_seed_parameters() == [] and slot.fossilized_parameters() == []


def test_germinate_records_style_tempo_and_blueprint() -> None:
    slot = germinated(GerminationStyle.GATED_GATE, tempo=5, target=0.7)
    report = slot.report()
    assert (report.stage, report.blueprint, report.alpha_algorithm) == (
        SeedStage.GERMINATED, BlueprintAction.CONV_LIGHT, AlphaAlgorithm.GATE)
    assert (report.blend_tempo_epochs, report.alpha, report.counterfactual) == (5, 0.0, None)
    # conv 4·4·3 + 4 = 52 seed params plus a 4-channel gate: Linear(4,1) + Linear(1,1) = 7.
    assert report.seed_params == 52 + 7 == len(torch.nn.utils.parameters_to_vector(slot.live_seed_parameters()))


def test_germinated_seed_is_bypassed() -> None:
    slot = germinated()
    h = torch.randn(2, C, 6)
    assert slot(h) is h


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tempo_epochs": 0}, "tempo"), ({"alpha_target": 0.0}, "alpha target"),
     ({"blueprint": BlueprintAction.NOOP}, "noop"), ({"accuracy": float("nan")}, "accuracy")],
)
def test_bad_germination_arguments_raise_and_leave_slot_empty(kwargs, message) -> None:
    slot = new_slot()
    args = {"module": ResidualConv(), "blueprint": BlueprintAction.CONV_LIGHT, "style": GerminationStyle.SIGMOID_ADD,
            "tempo_epochs": 3, "alpha_target": 1.0, "accuracy": 10.0} | kwargs
    with pytest.raises(ValueError, match=message):
        slot.germinate(**args)
    assert slot.is_empty and slot.seed is None


def test_training_output_is_the_host_bit_for_bit_and_host_gradients_are_seedless() -> None:
    torch.manual_seed(3)
    slot = to_stage(germinated(), SeedStage.TRAINING)
    host = TinyHost(slot)
    seedless = TinyHost(new_slot())
    seedless.load_state_dict({k: v for k, v in host.state_dict().items() if not k.startswith("slot.")})
    x, y = torch.randn(5, 1, 6), torch.tensor([0, 1, 2, 0, 1])

    h = host.pre(x).detach()
    h[0, 0, 0] = -0.0  # the straight-through path must keep even the sign of zero
    out = slot(h)
    assert torch.equal(out.view(torch.int32), h.view(torch.int32))

    nn.functional.cross_entropy(host(x), y).backward()
    nn.functional.cross_entropy(seedless(x), y).backward()
    seedless_grads = {name: p.grad for name, p in seedless.named_parameters()}
    host_grads = {name: p.grad for name, p in host.named_parameters() if not name.startswith("slot.")}
    assert host_grads.keys() == seedless_grads.keys()
    for name, grad in host_grads.items():
        assert torch.equal(grad, seedless_grads[name]), name
    seed_grads = [p.grad for p in slot.live_seed_parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in seed_grads)

    # The seed's gradient is the output's gradient pushed through the seed (as if it replaced h).
    features = host.pre(x).detach().requires_grad_(True)
    grad_out, = torch.autograd.grad(nn.functional.cross_entropy(host.head(features.flatten(1)), y), features)
    expected = torch.autograd.grad(slot.seed(host.pre(x).detach()), list(slot.seed.parameters()), grad_out)
    for got, want in zip(seed_grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_training_slot_skips_the_seed_without_grad() -> None:
    slot = to_stage(germinated(), SeedStage.TRAINING)
    h = torch.randn(2, C, 6)
    with torch.no_grad():
        assert slot(h) is h


@pytest.mark.parametrize("style", list(GerminationStyle))
def test_blending_gradients_reach_the_host_input(style: GerminationStyle) -> None:
    slot = to_stage(germinated(style), SeedStage.HOLDING)  # alpha = 1: the direct ADD path carries nothing
    assert slot.alpha == 1.0
    h = torch.randn(2, C, 6, requires_grad=True)
    out = slot(h)
    out.square().sum().backward()
    # With ADD at alpha 1 the output is the seed's, so host gradient can only come through the seed.
    assert h.grad is not None and h.grad.abs().sum() > 0
    if style is GerminationStyle.LINEAR_ADD:
        torch.testing.assert_close(out, slot.seed(h))


def test_blending_forward_follows_the_algorithm_and_alpha() -> None:
    slot = to_stage(germinated(GerminationStyle.LINEAR_MULTIPLY), SeedStage.BLENDING)
    slot.step_epoch()
    assert slot.alpha == pytest.approx(1 / 3)
    h = torch.randn(2, C, 6)
    with torch.no_grad():
        expected = h * (1 + slot.alpha * torch.tanh(slot.seed(h) - h))
        torch.testing.assert_close(slot(h), expected)


def test_force_alpha_zero_and_per_sample_override() -> None:
    slot = to_stage(germinated(), SeedStage.HOLDING)
    h = torch.randn(2, C, 6)
    calls = []
    slot.seed.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        assert not torch.equal(slot(h), h)
        with slot.force_alpha_zero():
            assert slot(h) is h
        assert len(calls) == 1  # the counterfactual pass did not run the seed
        with slot.alpha_override(torch.tensor([1.0, 0.0])):
            out = slot(h)
        assert torch.equal(out[1], h[1]) and torch.equal(out[0], slot.seed(h)[0])
    with pytest.raises(ValueError, match="alpha override"):
        with slot.alpha_override(1.5):
            pass


def test_shape_changing_seed_raises_clearly() -> None:
    slot = new_slot()
    slot.germinate(nn.Conv1d(C, C, 3), BlueprintAction.CONV_LIGHT, GerminationStyle.LINEAR_ADD, 3, 1.0, accuracy=0.0)
    slot.advance()
    with pytest.raises(ValueError, match="shape-preserving"):
        slot(torch.randn(2, C, 6))


def test_illegal_operations_raise() -> None:
    slot = new_slot()
    with pytest.raises(IllegalSlotOperationError, match="ADVANCE is not legal.*DORMANT"):
        slot.advance()
    with pytest.raises(IllegalTransitionError, match="DORMANT → PRUNED"):
        slot.prune()
    slot = germinated()
    with pytest.raises(IllegalTransitionError, match="GERMINATED → GERMINATED"):
        slot.germinate(ResidualConv(), BlueprintAction.NORM, GerminationStyle.LINEAR_ADD, 3, 1.0, accuracy=0.0)
    with pytest.raises(IllegalTransitionError, match="GERMINATED → FOSSILIZED"):
        slot.fossilize()
    with pytest.raises(IllegalSlotOperationError, match="SET_ALPHA_TARGET is not legal.*GERMINATED"):
        slot.set_alpha_target(0.5, 3)
    to_stage(slot, SeedStage.BLENDING)
    with pytest.raises(IllegalSlotOperationError, match="PRUNE .*moving UP"):
        slot.prune(3)
    with pytest.raises(IllegalSlotOperationError, match="SET_ALPHA_TARGET .*moving UP"):
        slot.set_alpha_target(0.5, 0)
    to_stage(slot, SeedStage.HOLDING)
    with pytest.raises(IllegalSlotOperationError, match="HOLDING; use fossilize"):
        slot.advance()
    to_stage(slot, SeedStage.FOSSILIZED)
    with pytest.raises(IllegalTransitionError, match="FOSSILIZED → PRUNED"):
        slot.prune()


def test_gate_failures_return_reasons_without_moving() -> None:
    slot = germinated(target=0.5)
    g1 = slot.advance()
    assert g1 and g1.gate == "G1" and slot.stage is SeedStage.TRAINING
    g2 = slot.advance()  # no epoch trained in TRAINING yet
    assert not g2 and g2.gate == "G2" and "no epoch trained" in g2.reason and slot.stage is SeedStage.TRAINING
    slot.step_epoch()
    assert slot.advance() and slot.stage is SeedStage.BLENDING
    for _ in range(3):
        slot.step_epoch()
    g3 = slot.advance()  # ramp finished, but at 0.5
    assert not g3 and g3.gate == "G3" and "not 1.0" in g3.reason and slot.stage is SeedStage.BLENDING


def test_fossilize_needs_a_counterfactual() -> None:
    slot = germinated()
    for _ in range(2):
        slot.advance()
        slot.step_epoch()
    for _ in range(3):
        slot.step_epoch()
    assert slot.advance() and slot.stage is SeedStage.HOLDING
    g5 = slot.fossilize()
    assert not g5 and g5.gate == "G5" and slot.stage is SeedStage.HOLDING
    slot.record_validation(55.0, counterfactual=-2.0)
    assert slot.fossilize() and slot.stage is SeedStage.FOSSILIZED


@pytest.mark.parametrize(("tempo", "decisions"), [(3, 7), (5, 9), (8, 12)])
def test_fastest_germinate_to_fossilize_path(tempo: int, decisions: int) -> None:
    slot = new_slot()
    count = 0
    while slot.stage is not SeedStage.FOSSILIZED:
        count += 1
        if slot.is_empty:
            slot.germinate(ResidualConv(), BlueprintAction.CONV_SMALL, GerminationStyle.SIGMOID_ADD, tempo, 1.0,
                           accuracy=40.0)
        elif slot.stage is SeedStage.HOLDING:
            slot.fossilize()
        else:
            slot.advance()
        slot.step_epoch()
        if slot.alpha > 0:
            slot.record_validation(45.0, counterfactual=2.0)
        assert count < 20
    assert count == decisions


def test_sigmoid_add_ramp_follows_the_sigmoid_curve() -> None:
    slot = to_stage(germinated(GerminationStyle.SIGMOID_ADD), SeedStage.BLENDING)
    assert slot.report().alpha_curve is AlphaCurveAction.SIGMOID
    alphas = []
    for _ in range(3):
        slot.step_epoch()
        alphas.append(slot.alpha)
    assert alphas == pytest.approx([0.117, 0.883, 1.0], abs=1e-3)


def test_instant_prune_timeline_makes_slot_germinable_after_seven_epochs() -> None:
    slot = to_stage(germinated(), SeedStage.TRAINING)
    slot.step_epoch()
    slot.prune()
    assert slot.stage is SeedStage.PRUNED and slot.seed is None and slot.live_seed_parameters() == []
    slot.step_epoch()
    observed = []
    for _ in range(7):
        observed.append((slot.report().stage, slot.report().epochs_in_stage))
        if slot.is_empty:
            break
        slot.step_epoch()
    assert observed == [(SeedStage.EMBARGOED, e) for e in range(5)] + [(SeedStage.RESETTING, 0), (SeedStage.DORMANT, 0)]
    assert slot.report() == SlotReport.empty()
    slot.germinate(ResidualConv(), BlueprintAction.NORM, GerminationStyle.LINEAR_ADD, 3, 1.0, accuracy=1.0)
    assert slot.stage is SeedStage.GERMINATED and slot.age == 0


def test_scheduled_prune_from_holding_ramps_down_then_removes() -> None:
    slot = to_stage(germinated(), SeedStage.HOLDING)
    slot.prune(3, AlphaCurve.LINEAR)
    assert slot.stage is SeedStage.BLENDING and slot.report().alpha_mode is AlphaMode.DOWN
    alphas, removed = [], []
    for _ in range(3):
        removed.append(slot.step_epoch())
        alphas.append(slot.alpha)
    assert alphas == pytest.approx([2 / 3, 1 / 3, 0.0]) and removed == [False, False, True]
    assert slot.stage is SeedStage.EMBARGOED and slot.seed is None


def test_partial_target_from_holding_returns_to_blending_and_back() -> None:
    slot = to_stage(germinated(), SeedStage.HOLDING)
    slot.set_alpha_target(0.5, 0)
    assert (slot.stage, slot.alpha) == (SeedStage.BLENDING, 0.5)
    slot.set_alpha_target(1.0, 2, AlphaCurve.SIGMOID, 24.0)
    assert slot.report().alpha_curve is AlphaCurveAction.SIGMOID_SHARP
    slot.step_epoch()
    assert not slot.advance()
    slot.step_epoch()
    assert slot.alpha == 1.0 and slot.advance() and slot.stage is SeedStage.HOLDING


def test_set_alpha_target_can_switch_to_gate_and_back() -> None:
    slot = to_stage(germinated(), SeedStage.HOLDING)
    slot.set_alpha_target(1.0, 0, alpha_algorithm=AlphaAlgorithm.GATE)
    assert slot.stage is SeedStage.HOLDING and slot.gate is not None
    assert slot.report().seed_params == 52 + 7
    slot.set_alpha_target(1.0, 0, alpha_algorithm=AlphaAlgorithm.ADD)
    assert slot.gate is None and slot.report().alpha_algorithm is AlphaAlgorithm.ADD


def test_fossilized_seed_belongs_to_the_host_and_stays_at_alpha_one() -> None:
    slot = to_stage(germinated(), SeedStage.FOSSILIZED)
    assert slot.live_seed_parameters() == []
    assert [id(p) for p in slot.fossilized_parameters()] == [id(p) for p in slot.seed.parameters()]
    for _ in range(3):
        slot.step_epoch()
    h = torch.randn(2, C, 6)
    with torch.no_grad():
        assert slot.alpha == 1.0 and torch.equal(slot(h), slot.seed(h))


def test_metrics_track_improvement_and_contribution_velocity() -> None:
    slot = germinated()  # accuracy 50 at germination
    slot.record_validation(53.0, counterfactual=1.0)
    slot.advance()  # stage baseline becomes 53
    slot.record_validation(54.0, counterfactual=3.0)
    slot.record_validation(54.5, counterfactual=3.0)
    report = slot.report()
    assert report.total_improvement == pytest.approx(4.5)
    assert report.improvement_since_stage_start == pytest.approx(1.5)
    assert report.counterfactual == 3.0
    assert report.contribution_velocity == pytest.approx(0.7 * 0.3 * 2.0)
    slot.record_validation(54.5, counterfactual=None)  # not measured this epoch: last value kept
    assert slot.report().counterfactual == 3.0


def test_strict_gates_apply_thresholds() -> None:
    slot = to_stage(germinated(gates=GateConfig(strict=True)), SeedStage.TRAINING)
    slot.step_epoch()
    g2 = slot.advance()
    assert not g2 and "1 < 3 epochs" in g2.reason and "improvement" in g2.reason and "gradient ratio" in g2.reason
    slot.step_epoch()
    slot.step_epoch()
    slot.record_validation(51.0, None)
    slot.record_gradient_ratio(0.5)
    assert slot.advance() and slot.stage is SeedStage.BLENDING
    for _ in range(3):
        slot.step_epoch()
    assert slot.advance()
    slot.record_validation(51.0, counterfactual=0.4)
    g5 = slot.fossilize()
    assert not g5 and "contribution 0.40 < 1.0" in g5.reason
    slot.record_validation(52.0, counterfactual=1.2)
    assert slot.fossilize()


def test_snapshot_restore_brings_back_seed_weights_and_lifecycle() -> None:
    slot = to_stage(germinated(), SeedStage.BLENDING)
    slot.step_epoch()
    slot.record_validation(51.0, counterfactual=0.5)
    saved = slot.snapshot()
    weights = {k: v.clone() for k, v in slot.seed.state_dict().items()}
    report = slot.report()

    with torch.no_grad():
        slot.seed.conv.weight.add_(1.0)
    slot.step_epoch()
    slot.step_epoch()
    slot.advance()
    slot.prune()
    slot.step_epoch()
    assert slot.stage is SeedStage.EMBARGOED and slot.seed is None

    for _ in range(2):  # a snapshot can be restored more than once
        slot.restore(saved)
        assert slot.report() == report and slot.stage is SeedStage.BLENDING
        for key, value in slot.seed.state_dict().items():
            assert torch.equal(value, weights[key])
        with torch.no_grad():
            slot.seed.conv.weight.add_(1.0)
    slot.step_epoch()
    assert slot.alpha == pytest.approx(2 / 3)  # the restored ramp carries on


def test_compiled_host_follows_stage_and_alpha_changes() -> None:
    # backend="eager" exercises dynamo's guards (which decide when to retrace) without slow codegen.
    slot = germinated()
    host = TinyHost(slot)
    compiled = torch.compile(host, backend="eager")
    x = torch.randn(3, 1, 6)

    def check() -> None:
        torch.testing.assert_close(compiled(x), host(x), rtol=0, atol=0)

    check()  # GERMINATED
    slot.advance()
    check()  # TRAINING
    slot.step_epoch()
    slot.advance()
    slot.step_epoch()
    check()  # BLENDING at 1/3
    with slot.force_alpha_zero():
        check()
    slot.step_epoch()
    check()  # BLENDING at 2/3
    slot.step_epoch()
    slot.prune()
    check()  # PRUNED: host only
