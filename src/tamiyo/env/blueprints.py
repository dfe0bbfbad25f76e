"""Blueprints: the shape-preserving seed modules that can be germinated at an injection point.

CNN seeds work on [B, C, L] (conv1d) or [B, C, H, W] (conv2d) activations; transformer seeds on [B, T, C].
Two initialisations are chosen so that every seed learns from its first step:

* the bottleneck is the identity at birth through a zero GroupNorm scale, not a zero conv feeding the
  GroupNorm: the GroupNorm of a constant zero input back-propagates through 1/sqrt(eps) (a ×316 gradient);
* conv_small is pre-activated, x + conv(ReLU(gn(x))) with the conv zero-initialised: x + ReLU(gn(conv(x)))
  with a zero conv would never receive a gradient (the ReLU's gradient at exactly 0 is 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tamiyo.core.actions import BlueprintAction, topology_blueprints
from tamiyo.env.hosts import LAYOUT_TOPOLOGY, CausalSelfAttention
from tamiyo.env.targets import build_target

_GROUP_CHOICES = (32, 16, 8, 4, 2, 1)


def group_count(channels: int) -> int:
    """GroupNorm groups for `channels`: the largest choice with ≥ 16 channels per group, else the largest
    choice dividing `channels`."""
    for groups in _GROUP_CHOICES:
        if channels % groups == 0 and channels // groups >= 16:
            return groups
    return next(groups for groups in _GROUP_CHOICES if channels % groups == 0)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels), channels)


def _conv(dims: int, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> nn.Module:
    conv = (nn.Conv1d, nn.Conv2d)[dims - 1]
    return conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class FailedSeed(nn.Module):
    """The `dead` fault: a seed whose module broke. Its parameters stay in the network and are paid for,
    but it never learns and emits its input plus Gaussian noise of the input's scale, so blending it in
    hurts until it is pruned. It reads perfectly (a gradient ratio of exactly 0)."""

    fault = "dead"

    def __init__(self, seed: nn.Module) -> None:
        super().__init__()
        self.seed = seed

    def forward(self, x: Tensor) -> Tensor:
        return x + x.detach().std() * torch.randn_like(x)


class UnstableSeed(nn.Module):
    """The `unstable` fault: a seed whose residual change is amplified `gain` times, x + gain·(seed(x) − x),
    as a badly scaled init or learning rate would. It starts as harmless as the healthy seed (near-identity
    seeds stay near the identity) and gets real gradient, gain times larger, so its updates overshoot by
    gain² and it drifts into harm while it trains; only the gradient ratio and the contribution over the
    following epochs tell it apart from a healthy seed."""

    fault = "unstable"

    def __init__(self, seed: nn.Module, gain: float = 10.0) -> None:
        super().__init__()
        if not gain > 1.0:
            raise ValueError(f"an unstable seed's gain must be > 1, got {gain}")
        self.seed = seed
        self.gain = gain

    def forward(self, x: Tensor) -> Tensor:
        return x + self.gain * (self.seed(x) - x)


SEED_FAULTS: dict[str, type[nn.Module]] = {"dead": FailedSeed, "unstable": UnstableSeed}


def make_faulty(fault: str, seed: nn.Module) -> nn.Module:
    """`seed` broken by the named fault (one of `SEED_FAULTS`)."""
    if fault not in SEED_FAULTS:
        raise ValueError(f"unknown seed fault {fault!r}; choose from {sorted(SEED_FAULTS)}")
    return SEED_FAULTS[fault](seed)


def seed_fault(module: nn.Module | None) -> str | None:
    """The fault a planted seed module carries, or None for a healthy one."""
    return module.fault if isinstance(module, (FailedSeed, UnstableSeed)) else None


# ---------------------------------------------------------------- CNN seeds
class ScaledNormSeed(nn.Module):
    """x + tanh(scale)·(norm(x) − x), scale starting at 0: the identity at birth, learns how much to normalise."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.tanh(self.scale) * (self.norm(x) - x)


class SqueezeExcitationSeed(nn.Module):
    """Channel attention x · sigmoid(fc2(ReLU(fc1(mean over positions)))). fc2 starts with zero weights and
    bias 3, so the seed starts as a near-identity 0.953·x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // 4)
        self.squeeze = nn.Linear(channels, hidden, bias=False)
        self.excite = nn.Linear(hidden, channels)
        nn.init.zeros_(self.excite.weight)
        nn.init.constant_(self.excite.bias, 3.0)

    def forward(self, x: Tensor) -> Tensor:
        spatial = tuple(range(2, x.dim()))
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean(dim=spatial)))))
        return x * gate.view(*gate.shape, *(1,) * len(spatial))


class ResidualSeed(nn.Module):
    """x + body(x)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _seed_conv_block(dims: int, channels: int) -> nn.Sequential:
    return nn.Sequential(_conv(dims, channels, channels, 3), _group_norm(channels), nn.ReLU())


def _depthwise(dims: int, channels: int) -> nn.Module:
    # x + ReLU(gn(pointwise(depthwise(x)))); not the identity at birth.
    return ResidualSeed(nn.Sequential(
        _conv(dims, channels, channels, 3, groups=channels), _conv(dims, channels, channels, 1),
        _group_norm(channels), nn.ReLU(),
    ))


def _bottleneck(dims: int, channels: int) -> nn.Module:
    # x + gn(up(ReLU(conv3(ReLU(down(x)))))); width max(8, C/4) but never wider than C.
    width = min(channels, max(8, channels // 4))
    out_norm = _group_norm(channels)
    nn.init.zeros_(out_norm.weight)  # identity at birth without the zero-input GroupNorm gradient blow-up
    return ResidualSeed(nn.Sequential(
        _conv(dims, channels, width, 1), nn.ReLU(), _conv(dims, width, width, 3), nn.ReLU(),
        _conv(dims, width, channels, 1), out_norm,
    ))


def _conv_small(dims: int, channels: int) -> nn.Module:
    # Pre-activated x + conv1(ReLU(gn(x))), conv zero-initialised (see the module docstring).
    conv = _conv(dims, channels, channels, 1)
    nn.init.zeros_(conv.weight)
    return ResidualSeed(nn.Sequential(_group_norm(channels), nn.ReLU(), conv))


def _cnn_seed(blueprint: BlueprintAction, dims: int, channels: int) -> nn.Module:
    match blueprint:
        case BlueprintAction.NORM:
            return ScaledNormSeed(_group_norm(channels))
        case BlueprintAction.ATTENTION:
            return SqueezeExcitationSeed(channels)
        case BlueprintAction.DEPTHWISE:
            return _depthwise(dims, channels)
        case BlueprintAction.BOTTLENECK:
            return _bottleneck(dims, channels)
        case BlueprintAction.CONV_SMALL:
            return _conv_small(dims, channels)
        case BlueprintAction.CONV_LIGHT:
            return ResidualSeed(_seed_conv_block(dims, channels))
        case BlueprintAction.CONV_HEAVY:
            return ResidualSeed(nn.Sequential(_seed_conv_block(dims, channels), _seed_conv_block(dims, channels)))
    raise AssertionError(f"unhandled CNN blueprint {blueprint.name}")


# ---------------------------------------------------------------- transformer seeds
class LowRankSeed(nn.Module):
    """LoRA-style x + up(down(x)) without biases, `up` zero-initialised (identity at birth)."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(self.down(x))


class AttentionSeed(nn.Module):
    """x + proj(causal multi-head attention(x)), projection zero-initialised (identity at birth).

    Both the `attention` and the `flex_attention` blueprints use this module with scaled-dot-product
    attention: torch's FlexAttention has no backward pass on CPU (torch 2.13, eager or compiled), and a
    device-dependent kernel would make CPU and GPU runs differ silently.
    """

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.attention = CausalSelfAttention(dim, heads)
        nn.init.zeros_(self.attention.proj.weight)
        nn.init.zeros_(self.attention.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.attention(x)


def _mlp(dim: int, expansion: int) -> nn.Module:
    # x + fc2(GELU(fc1(x))), fc2 zero-initialised (identity at birth).
    fc2 = nn.Linear(expansion * dim, dim)
    nn.init.zeros_(fc2.weight)
    nn.init.zeros_(fc2.bias)
    return ResidualSeed(nn.Sequential(nn.Linear(dim, expansion * dim), nn.GELU(), fc2))


def _transformer_seed(blueprint: BlueprintAction, dim: int) -> nn.Module:
    match blueprint:
        case BlueprintAction.NORM:
            return ScaledNormSeed(nn.LayerNorm(dim))
        case BlueprintAction.LORA:
            return LowRankSeed(dim, min(8, dim))
        case BlueprintAction.LORA_LARGE:
            return LowRankSeed(dim, min(32, dim))
        case BlueprintAction.ATTENTION | BlueprintAction.FLEX_ATTENTION:
            return AttentionSeed(dim)
        case BlueprintAction.MLP_SMALL:
            return _mlp(dim, 2)
        case BlueprintAction.MLP:
            return _mlp(dim, 4)
    raise AssertionError(f"unhandled transformer blueprint {blueprint.name}")


def build_seed(blueprint: BlueprintAction, layout: str, channels: int,
               custom: Mapping[str, Mapping[str, Any]] | None = None) -> nn.Module:
    """A fresh seed module for an injection point of the given layout and channel width: the built-in one, or
    the module `custom[<blueprint name>]` names by `_target_`, called with `layout` and `channels` (a blueprint
    of one's own takes the place, and the action, of the built-in one of that name: `env.blueprints`)."""
    try:
        topology = LAYOUT_TOPOLOGY[layout]
    except KeyError:
        raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUT_TOPOLOGY)}") from None
    blueprint = BlueprintAction(blueprint)
    allowed = topology_blueprints(topology)
    if blueprint not in allowed:
        names = sorted(b.name.lower() for b in allowed)
        raise ValueError(f"blueprint {blueprint.name.lower()!r} is not available for topology {topology!r} "
                         f"(layout {layout!r}); choose one of {names}")
    if channels < 1:
        raise ValueError(f"a seed needs channels ≥ 1, got {channels}")
    name = blueprint.name.lower()
    if custom and name in custom:
        return build_target(custom[name], f"env.blueprints.{name}", nn.Module, layout=layout, channels=channels)
    if topology == "transformer":
        return _transformer_seed(blueprint, channels)
    return _cnn_seed(blueprint, 1 if layout == "conv1d" else 2, channels)
