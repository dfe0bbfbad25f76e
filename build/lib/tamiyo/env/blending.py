"""How a blending seed's output is composed with the host's features.

`alpha` is a Python float, a 0-d tensor, or a per-sample tensor already shaped to broadcast over the
features (`per_sample_alpha`). Every composition returns the host features at alpha = 0.

Layouts name the feature shape at an injection point: "conv1d" [B, C, L], "conv2d" [B, C, H, W],
"sequence" [B, T, C].
"""

from __future__ import annotations

import torch
from torch import nn

from tamiyo.core.actions import AlphaAlgorithm

Alpha = float | torch.Tensor

# Dimensions averaged away to get one C-vector per sample.
_POOL_DIMS: dict[str, tuple[int, ...]] = {"conv1d": (2,), "conv2d": (2, 3), "sequence": (1,)}
LAYOUTS: tuple[str, ...] = tuple(_POOL_DIMS)


def check_layout(layout: str) -> str:
    if layout not in _POOL_DIMS:
        raise ValueError(f"unknown feature layout {layout!r}; choose one of {list(LAYOUTS)}")
    return layout


def per_sample_alpha(alpha: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Reshape a `[B]` alpha vector so it broadcasts over `features` `[B, ...]`."""
    if alpha.dim() != 1 or alpha.shape[0] != features.shape[0]:
        raise ValueError(f"per-sample alpha must have shape [{features.shape[0]}], got {list(alpha.shape)}")
    return alpha.view(-1, *([1] * (features.dim() - 1)))


def _weight(alpha: Alpha, like: torch.Tensor) -> Alpha:
    # torch.lerp needs a tensor weight in the features' dtype (matters under autocast).
    return alpha.to(like.dtype) if isinstance(alpha, torch.Tensor) else alpha


def blend_add(host: torch.Tensor, seed: torch.Tensor, alpha: Alpha) -> torch.Tensor:
    """(1 − α)·host + α·seed."""
    return torch.lerp(host, seed, _weight(alpha, host))


def blend_multiply(host: torch.Tensor, seed: torch.Tensor, seed_input: torch.Tensor, alpha: Alpha) -> torch.Tensor:
    """host·(1 + α·tanh(seed − seed_input)): a bounded valve around the host, identity when the seed is."""
    return host * (1.0 + _weight(alpha, host) * torch.tanh(seed - seed_input))


def blend_gate(host: torch.Tensor, seed: torch.Tensor, gate: torch.Tensor, alpha: Alpha) -> torch.Tensor:
    """ADD with effective alpha α·g, where `gate` is the per-sample gate value g ∈ (0, 1)."""
    return torch.lerp(host, seed, _weight(alpha, host) * gate.to(host.dtype))


class GateNetwork(nn.Module):
    """Learned per-sample gate g(x) ∈ (0, 1): pooled features → Linear → ReLU → Linear → sigmoid."""

    def __init__(self, channels: int, layout: str) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"gate channels must be ≥ 1, got {channels}")
        self.layout = check_layout(layout)
        hidden = max(1, channels // 4)
        self.net = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate of shape `[B, 1, ...]` broadcasting over `x`."""
        pooled = x.mean(dim=_POOL_DIMS[self.layout])
        return torch.sigmoid(self.net(pooled)).view(-1, *([1] * (x.dim() - 1)))


def blend(
    algorithm: AlphaAlgorithm,
    host: torch.Tensor,
    seed: torch.Tensor,
    seed_input: torch.Tensor,
    alpha: Alpha,
    gate: GateNetwork | None,
) -> torch.Tensor:
    """Compose by `algorithm`; GATE needs the gate network, the others must not be given one."""
    if (gate is not None) != (algorithm == AlphaAlgorithm.GATE):
        need = "needs a" if gate is None else "takes no"
        raise ValueError(f"alpha algorithm {AlphaAlgorithm(algorithm).name} {need} gate network")
    if algorithm == AlphaAlgorithm.ADD:
        return blend_add(host, seed, alpha)
    if algorithm == AlphaAlgorithm.MULTIPLY:
        return blend_multiply(host, seed, seed_input, alpha)
    return blend_gate(host, seed, gate(seed_input), alpha)
