"""Blend compositions: identity at alpha 0, formulas at known alphas, the learned gate."""

from __future__ import annotations

import pytest
import torch

from tamiyo.core.actions import AlphaAlgorithm
from tamiyo.env.blending import (
    GateNetwork,
    blend,
    blend_add,
    blend_gate,
    blend_multiply,
    check_layout,
    per_sample_alpha,
)


@pytest.fixture
def features() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    host = torch.randn(4, 8, 6, generator=gen)
    seed = torch.randn(4, 8, 6, generator=gen)
    seed_input = torch.randn(4, 8, 6, generator=gen)
    return host, seed, seed_input


@pytest.mark.parametrize("algorithm", list(AlphaAlgorithm))
def test_every_algorithm_is_the_host_at_alpha_zero(features, algorithm: AlphaAlgorithm) -> None:
    host, seed, seed_input = features
    gate = GateNetwork(8, "conv1d") if algorithm is AlphaAlgorithm.GATE else None
    for alpha in (0.0, torch.tensor(0.0)):
        assert torch.equal(blend(algorithm, host, seed, seed_input, alpha, gate), host)


def test_add_is_a_convex_mix(features) -> None:
    host, seed, _ = features
    torch.testing.assert_close(blend_add(host, seed, 0.25), 0.75 * host + 0.25 * seed)
    assert torch.equal(blend_add(host, seed, 1.0), seed)


def test_multiply_is_a_bounded_valve(features) -> None:
    host, seed, seed_input = features
    torch.testing.assert_close(
        blend_multiply(host, seed, seed_input, 0.5), host * (1 + 0.5 * torch.tanh(seed - seed_input))
    )
    # An identity seed leaves the host alone at any alpha, and the factor stays within (0, 2).
    assert torch.equal(blend_multiply(host, seed_input, seed_input, 1.0), host)
    ratio = blend_multiply(host, seed, seed_input, 1.0) / host
    assert bool(((ratio > 0) & (ratio < 2)).all())


def test_gate_scales_alpha_per_sample(features) -> None:
    host, seed, _ = features
    gate = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(4, 1, 1)
    out = blend_gate(host, seed, gate, 0.8)
    torch.testing.assert_close(out, torch.lerp(host, seed, 0.8 * gate))
    assert torch.equal(out[0], host[0])


@pytest.mark.parametrize(
    ("layout", "shape"), [("conv1d", (3, 8, 5)), ("conv2d", (3, 8, 4, 4)), ("sequence", (3, 5, 8))]
)
def test_gate_network_gives_one_value_per_sample(layout: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    gate = GateNetwork(8, layout)
    x = torch.randn(*shape)
    g = gate(x)
    assert g.shape == (3,) + (1,) * (len(shape) - 1)
    assert bool(((g > 0) & (g < 1)).all())
    # Each sample's gate depends only on its own pooled features.
    torch.testing.assert_close(gate(x[1:2]), g[1:2])


@pytest.mark.parametrize(("channels", "params"), [(8, 21), (16, 73), (32, 273), (64, 1057)])
def test_gate_parameter_counts(channels: int, params: int) -> None:
    assert sum(p.numel() for p in GateNetwork(channels, "conv2d").parameters()) == params


def test_gate_algorithm_routes_through_the_gate(features) -> None:
    host, seed, seed_input = features
    torch.manual_seed(1)
    gate = GateNetwork(8, "conv1d")
    expected = torch.lerp(host, seed, 0.6 * gate(seed_input))
    torch.testing.assert_close(blend(AlphaAlgorithm.GATE, host, seed, seed_input, 0.6, gate), expected)
    with pytest.raises(ValueError, match="GATE needs a gate network"):
        blend(AlphaAlgorithm.GATE, host, seed, seed_input, 0.6, None)
    with pytest.raises(ValueError, match="ADD takes no gate network"):
        blend(AlphaAlgorithm.ADD, host, seed, seed_input, 0.6, gate)


def test_per_sample_alpha_shapes_and_validation(features) -> None:
    host, seed, _ = features
    alpha = per_sample_alpha(torch.tensor([0.0, 1.0, 0.0, 1.0]), host)
    out = blend_add(host, seed, alpha)
    assert torch.equal(out[0], host[0]) and torch.equal(out[1], seed[1])
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        per_sample_alpha(torch.zeros(3), host)


def test_unknown_layout_rejected() -> None:
    with pytest.raises(ValueError, match="'nhwc'"):
        check_layout("nhwc")
