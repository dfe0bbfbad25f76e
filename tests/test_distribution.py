"""Masked categorical distribution: masking value, normalised entropy, sampling, validation."""

import math

import pytest
import torch
from torch.distributions import Categorical

from tamiyo.policy import distribution
from tamiyo.policy.distribution import (
    MASKED_LOGIT,
    InvalidStateMachineError,
    MaskedCategorical,
    log_softmax,
    masked_logits,
    normalized_entropy,
    sample_categorical,
    set_validation,
    validate_heads,
    validation_enabled,
)

HEADS = ("slot", "blueprint", "op")


@pytest.fixture(autouse=True)
def _validation_on():
    set_validation(True)
    yield
    set_validation(True)


def _random_masks(*shape: int, generator: torch.Generator) -> torch.Tensor:
    """Random bool masks with at least one True per row."""
    mask = torch.rand(*shape, generator=generator) < 0.5
    first = torch.randint(shape[-1], shape[:-1], generator=generator)
    return mask.scatter(-1, first.unsqueeze(-1), True)


def test_masked_logits_use_the_finite_fill_value():
    logits = torch.tensor([[1.5, -2.0, 3.0]])
    mask = torch.tensor([[True, False, True]])
    out = masked_logits(logits, mask)
    assert MASKED_LOGIT == -1e4
    assert out.tolist() == [[1.5, MASKED_LOGIT, 3.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_softmax_of_masked_logits_is_nan_free(dtype):
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(64, 13, generator=gen) * 5).to(dtype)
    mask = _random_masks(64, 13, generator=gen)
    mask[0] = False
    mask[0, 4] = True  # a row with a single valid action
    probs = torch.softmax(masked_logits(logits, mask), dim=-1)
    assert probs.dtype == dtype
    assert torch.isfinite(probs).all()
    assert probs[~mask].float().max() < 1e-3
    torch.testing.assert_close(probs.float().sum(-1), torch.ones(64), atol=1e-2, rtol=0)
    assert probs[0, 4].float() == pytest.approx(1.0, abs=1e-3)


def test_log_softmax_and_its_gradient_match_torch_on_masked_logits():
    gen = torch.Generator().manual_seed(7)
    logits = (torch.randn(40, 13, generator=gen) * 20).requires_grad_()
    mask = _random_masks(40, 13, generator=gen)
    weights = torch.randn(40, 13, generator=gen)
    ours = log_softmax(masked_logits(logits, mask))
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), logits)
    reference = torch.log_softmax(masked_logits(logits, mask), dim=-1)
    (grad_reference,) = torch.autograd.grad((reference * weights).sum(), logits)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(grad_ours, grad_reference)


def test_normalized_entropy_is_one_for_uniform_and_zero_for_a_single_action():
    logits = torch.tensor([[0.0, 7.0, 0.0, -3.0, 0.0], [2.0, 0.5, -1.0, 4.0, 0.0]])
    uniform_over_three = torch.tensor([True, False, True, False, True])
    single = torch.tensor([False, False, True, False, False])
    entropy = normalized_entropy(logits, torch.stack([uniform_over_three, single]))
    assert entropy[0].item() == pytest.approx(1.0, abs=1e-6)
    assert entropy[1].item() == 0.0


def test_normalized_entropy_equals_entropy_over_valid_actions_divided_by_log_count():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 6, generator=gen) * 2
    mask = _random_masks(32, 6, generator=gen)
    expected = torch.stack([
        Categorical(logits=row[m]).entropy() / math.log(int(m.sum())) if m.sum() > 1 else torch.tensor(0.0)
        for row, m in zip(logits, mask, strict=True)
    ])
    torch.testing.assert_close(normalized_entropy(logits, mask), expected, atol=1e-5, rtol=1e-5)


def test_log_prob_matches_torch_categorical_on_masked_logits_for_stacked_heads():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(10, 3, 7, generator=gen)
    mask = _random_masks(10, 3, 7, generator=gen)
    actions = torch.multinomial(mask.float().view(-1, 7), 1, generator=gen).view(10, 3)
    dist = MaskedCategorical(logits, mask, HEADS)
    expected = Categorical(logits=masked_logits(logits, mask)).log_prob(actions)
    torch.testing.assert_close(dist.log_prob(actions), expected)
    torch.testing.assert_close(dist.entropy(), normalized_entropy(logits, mask))


def test_mode_is_argmax_of_masked_logits_with_ties_to_lowest_index():
    logits = torch.tensor([[5.0, 1.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    mask = torch.tensor([[False, True, True, True], [True, True, True, True]])
    assert MaskedCategorical(logits, mask, "tempo").mode().tolist() == [1, 0]


def test_sampling_never_picks_a_masked_action_and_follows_the_softmax():
    torch.manual_seed(3)
    logits = torch.tensor([1.0, 3.0, 0.0, -1.0, 40.0]).expand(20000, 5)
    mask = torch.tensor([True, False, True, True, False]).expand(20000, 5)
    samples = MaskedCategorical(logits, mask, "style").sample()
    counts = torch.bincount(samples, minlength=5).float() / samples.numel()
    expected = torch.softmax(masked_logits(logits[0], mask[0]), dim=-1)
    assert counts[1] == 0 and counts[4] == 0
    torch.testing.assert_close(counts, expected, atol=0.015, rtol=0)


def test_gumbel_noise_cannot_lift_a_masked_action_over_a_very_unlikely_valid_one():
    torch.manual_seed(4)
    logits = torch.tensor([-60.0, 60.0, 60.0]).expand(50000, 3)
    mask = torch.tensor([True, False, False]).expand(50000, 3)
    assert (sample_categorical(masked_logits(logits, mask)) == 0).all()


def test_all_false_row_raises_naming_the_head():
    logits = torch.zeros(4, 3, 13)
    mask = torch.ones(4, 3, 13, dtype=torch.bool)
    mask[2, 1] = False
    with pytest.raises(InvalidStateMachineError, match=r"\['blueprint'\]"):
        MaskedCategorical(logits, mask, HEADS)
    with pytest.raises(InvalidStateMachineError, match="'tempo'"):
        MaskedCategorical(torch.zeros(2, 3), torch.tensor([[True, False, False], [False, False, False]]), "tempo")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_logits_raise_value_error_naming_the_head(bad):
    logits = torch.zeros(4, 3, 13)
    logits[1, 2, 5] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite logits in head\(s\) \['op'\]"):
        MaskedCategorical(logits, torch.ones(4, 3, 13, dtype=torch.bool), HEADS)


def test_validation_rejects_a_stack_that_does_not_match_the_head_names():
    with pytest.raises(ValueError, match="does not stack the 3 heads"):
        validate_heads(torch.zeros(4, 2, 5), torch.ones(4, 2, 5, dtype=torch.bool), HEADS)


def test_validation_switch_turns_checks_off():
    assert validation_enabled()
    set_validation(False)
    assert not validation_enabled()
    mask = torch.zeros(2, 4, dtype=torch.bool)
    dist = MaskedCategorical(torch.zeros(2, 4), mask, "style")  # no raise while off
    assert dist.entropy().tolist() == [0.0, 0.0]


def test_validation_syncs_with_the_host_once_for_all_heads(monkeypatch):
    """One reduction for every head: exactly one device→host transfer per validation."""
    transfers = []
    for method in ("tolist", "item", "__bool__", "__int__", "__float__"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _name=method):
            transfers.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, method, counted)
    logits = torch.randn(16, 8, 13)
    mask = torch.ones(16, 8, 13, dtype=torch.bool)
    validate_heads(logits, mask, [f"head{i}" for i in range(8)])
    assert transfers == ["tolist"]
    monkeypatch.setattr(distribution, "_validation_enabled", False)
    transfers.clear()
    MaskedCategorical(logits, mask, [f"head{i}" for i in range(8)])
    assert transfers == []
