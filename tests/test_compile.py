"""Compiled LSTM bundles: same numbers as eager, placement refused after compile, prefix-free state dicts."""

import pytest
import torch

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.core.observation import ObservationBatch, SlotReport, TrainingSignals
from tamiyo.core.slots import SlotConfig
from tamiyo.core.stages import SeedStage
from tamiyo.policy import CompiledPlacementError, compute_masks, create_policy, extract_features

SLOTS = SlotConfig.default()
TINY = dict(feature_dim=16, hidden_dim=16)
PLACEMENT_METHODS = ("cpu", "half", "float", "double", "bfloat16", "cuda")


def _obs(n: int) -> ObservationBatch:
    signals = TrainingSignals(
        epoch=6, max_epochs=25, train_loss=1.1, val_loss=1.2, loss_delta=0.05, train_accuracy=61.0, val_accuracy=58.0,
        accuracy_delta=0.4, plateau_epochs=2, host_stabilized=True, best_val_accuracy=58.5, best_val_loss=1.15,
        loss_scale=2.3, host_params=20_000, seed_params=1_500, seeds_used=1, max_seeds=3,
        val_loss_history=(1.4, 1.3, 1.25, 1.2), val_accuracy_history=(50.0, 54.0, 57.0, 58.0),
    )
    slots = [SlotReport.empty(), SlotReport(stage=SeedStage.TRAINING, age=3, epochs_in_stage=2), SlotReport.empty()]
    return ObservationBatch.pack([signals] * n, [slots] * n)


def _inputs(n: int):
    obs = _obs(n)
    return extract_features(obs) + 0.1 * torch.randn(n, 149), compute_masks(obs, "cnn")


def _rollout(bundle, n: int, steps: int):
    """`steps` acting steps of `n` envs, stacked as `[n, steps]` training data (normal tensors)."""
    hidden, features, actions, masks = None, [], [], []
    for _ in range(steps):
        obs, step_masks = _inputs(n)
        result = bundle.get_action(obs, hidden, step_masks)
        hidden = result.hidden
        features.append(obs)
        actions.append(result.actions)
        masks.append(result.masks)
    stack = lambda per_step: {h: torch.stack([s[h] for s in per_step], 1) for h in HEAD_NAMES}  # noqa: E731
    return torch.stack(features, 1), stack(actions), stack(masks)


@pytest.mark.slow  # tracing and inductor compilation take ~25–75 s on a shared 2-core CPU
def test_compiled_evaluation_matches_eager():
    torch.manual_seed(0)
    compiled = create_policy("lstm", SLOTS, "cnn", compile_mode="default", **TINY)
    eager = create_policy("lstm", SLOTS, "cnn", **TINY)
    eager.load_state_dict(compiled.state_dict())
    assert compiled.is_compiled and compiled.compile_mode == "default" and not eager.is_compiled

    for n, steps in ((4, 3), (6, 5)):  # a second shape must reuse the dynamic graph, not break it
        obs, actions, masks = _rollout(compiled, n, steps)
        outputs = []
        for bundle in (compiled, eager):
            bundle.network.zero_grad()
            evaluation = bundle.evaluate_actions(obs, actions, masks)
            per_head = torch.stack([evaluation.log_probs[h] + evaluation.entropy[h] for h in HEAD_NAMES])
            (per_head.sum() + evaluation.value.sum()).backward()
            outputs.append((per_head.detach(), evaluation.value.detach(),
                            [p.grad.clone() for p in bundle.network.parameters()]))
        torch.testing.assert_close(outputs[0][0], outputs[1][0])
        torch.testing.assert_close(outputs[0][1], outputs[1][1])
        for compiled_grad, eager_grad in zip(outputs[0][2], outputs[1][2], strict=True):
            torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-5)


def test_placement_refused_after_compile():
    bundle = create_policy("lstm", SLOTS, "cnn", **TINY)
    assert bundle.double() is bundle and bundle.dtype == torch.float64
    assert bundle.float().to("cpu") is bundle and bundle.dtype == torch.float32
    bundle.compile("default")  # lazy: nothing is traced until the first call
    message = (r"cannot call \.to\(\) on a policy compiled with mode 'default': "
               r"create the policy on the target device and compile after placement")
    with pytest.raises(CompiledPlacementError, match=message):
        bundle.to("cpu")
    for method in PLACEMENT_METHODS:
        with pytest.raises(CompiledPlacementError, match=rf"\.{method}\(\) on a policy compiled"):
            getattr(bundle, method)()
    assert bundle.dtype == torch.float32


def test_compile_modes_and_idempotence():
    bundle = create_policy("lstm", SLOTS, "cnn", compile_mode="off", **TINY)
    assert not bundle.is_compiled
    with pytest.raises(ValueError, match="unknown compile mode 'fastest'"):
        bundle.compile("fastest")
    bundle.compile("max-autotune")
    bundle.compile("max-autotune")
    bundle.compile("off")
    assert bundle.compile_mode == "max-autotune"
    with pytest.raises(RuntimeError, match="already compiled with mode 'max-autotune'; cannot recompile as 'default'"):
        bundle.compile("default")


def test_state_dicts_are_interchangeable():
    torch.manual_seed(1)
    compiled = create_policy("lstm", SLOTS, "cnn", compile_mode="reduce-overhead", **TINY)
    plain = create_policy("lstm", SLOTS, "cnn", **TINY)
    assert list(compiled.state_dict()) == list(plain.state_dict())
    assert not any("_orig_mod" in key for key in compiled.state_dict())

    features, _ = _inputs(3)
    plain.load_state_dict(compiled.state_dict())
    torch.testing.assert_close(plain.get_value(features), compiled.get_value(features))
    other = create_policy("lstm", SLOTS, "cnn", **TINY)
    compiled.load_state_dict(other.state_dict())
    torch.testing.assert_close(compiled.get_value(features), other.get_value(features))
