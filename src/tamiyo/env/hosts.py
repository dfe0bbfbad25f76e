"""Host networks with ordered injection points where seeds can be plugged in.

A host is an input embedding, a sequence of blocks and a readout; injection point i sits right after block i. Hosts are
deliberately weak so that growing them with seeds visibly helps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tamiyo.core.slots import SlotConfig, SlotIdError, format_slot_id
from tamiyo.env.targets import build_target
from tamiyo.env.tasks import Task

# How a seed at an injection point sees its input: [B, C, L], [B, C, H, W] or [B, T, C].
LAYOUT_TOPOLOGY: dict[str, str] = {"conv1d": "cnn", "conv2d": "cnn", "sequence": "transformer"}

SlotFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class InjectionPoint:
    slot_id: str
    channels: int


class Host(nn.Module):
    """Base host: `forward(x, slots)` runs the blocks in order and, after block i, applies `slots[slot_id]`
    to the activation when the mapping names that injection point (absent ids pass through).

    Subclasses set `blocks` (one per injection point) and implement `embed` and `readout`."""

    blocks: nn.ModuleList

    def __init__(self, layout: str, channels: Sequence[int]) -> None:
        super().__init__()
        if layout not in LAYOUT_TOPOLOGY:
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUT_TOPOLOGY)}")
        self.layout = layout
        self.injection_points = tuple(
            InjectionPoint(format_slot_id(0, index), int(width)) for index, width in enumerate(channels)
        )
        self.slot_config = SlotConfig(tuple(point.slot_id for point in self.injection_points))
        self._slot_ids = frozenset(self.slot_config.slot_ids)

    @property
    def topology(self) -> str:
        return LAYOUT_TOPOLOGY[self.layout]

    def embed(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def readout(self, h: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, slots: Mapping[str, SlotFn] | None = None) -> Tensor:
        if slots:
            unknown = slots.keys() - self._slot_ids
            if unknown:
                raise SlotIdError(f"unknown slot ids {sorted(unknown)}; host slots: {list(self.slot_config.slot_ids)}")
        h = self.embed(x)
        for point, block in zip(self.injection_points, self.blocks, strict=True):
            h = block(h)
            if slots:
                seed = slots.get(point.slot_id)
                if seed is not None:
                    h = seed(h)
        return self.readout(h)


# ---------------------------------------------------------------- convolutional hosts
class ConvBlock(nn.Sequential):
    """conv → ReLU, optionally followed by 2× max pooling.

    No batch normalisation, on purpose: with BatchNorm the 4/8/16-channel mnist1d host already reaches
    85–89 % and seeds have little to add; without it the host stays near 40–50 % and growth matters. (It
    also keeps the host free of running statistics, so train/eval passes and snapshots stay simple.)
    """

    def __init__(self, dims: int, in_channels: int, out_channels: int, pool: bool, kernel_size: int = 3) -> None:
        conv = (nn.Conv1d, nn.Conv2d)[dims - 1]
        layers: list[nn.Module] = [conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.ReLU()]
        if pool:
            layers.append((nn.MaxPool1d, nn.MaxPool2d)[dims - 1](2))
        super().__init__(*layers)


class ConvHost(Host):
    """A stack of conv blocks with an injection point after each block (and its pooling), then global
    average pooling and a linear classifier."""

    def __init__(self, dims: int, in_channels: int, num_classes: int, widths: Sequence[int],
                 pool: Sequence[bool]) -> None:
        if dims not in (1, 2):
            raise ValueError(f"ConvHost supports 1-D or 2-D inputs, got dims={dims}")
        if len(widths) != len(pool) or not widths:
            raise ValueError(f"widths {list(widths)} and pool {list(pool)} must be non-empty and equally long")
        super().__init__("conv1d" if dims == 1 else "conv2d", widths)
        ins = (in_channels, *widths[:-1])
        self.blocks = nn.ModuleList(ConvBlock(dims, i, o, p) for i, o, p in zip(ins, widths, pool, strict=True))
        self.classifier = nn.Linear(widths[-1], num_classes)
        self._spatial_dims = tuple(range(2, 2 + dims))

    def embed(self, x: Tensor) -> Tensor:
        return x

    def readout(self, h: Tensor) -> Tensor:
        return self.classifier(h.mean(dim=self._spatial_dims))


# ---------------------------------------------------------------- transformer host
class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention on [B, T, C] with fused qkv and an output projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, steps, dim = x.shape
        q, k, v = self.qkv(x).view(batch, steps, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(attended.transpose(1, 2).reshape(batch, steps, dim))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x)) with 4× GELU expansion."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, heads)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class TransformerHost(Host):
    """Small causal character-level language model; an injection point after every block."""

    def __init__(self, vocab_size: int, context_length: int, dim: int = 64, heads: int = 2, layers: int = 3) -> None:
        super().__init__("sequence", [dim] * layers)
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Parameter(torch.zeros(context_length, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab_size)
        # Small embedding/readout weights (GPT-style) so that a fresh model predicts near-uniformly,
        # i.e. its loss starts at ln(vocab_size).
        for weight in (self.token_embedding.weight, self.position_embedding, self.lm_head.weight):
            nn.init.normal_(weight, std=0.02)
        nn.init.zeros_(self.lm_head.bias)

    def embed(self, x: Tensor) -> Tensor:
        steps = x.shape[1]
        if steps > self.context_length:
            raise ValueError(f"sequence length {steps} exceeds the host's context length {self.context_length}")
        return self.token_embedding(x) + self.position_embedding[:steps]

    def readout(self, h: Tensor) -> Tensor:
        return self.lm_head(self.final_norm(h))


# ---------------------------------------------------------------- per-task hosts
TRANSFORMER_DIM = 64  # model width of the language-modelling host at width 1
# Convolutional host per task: (block widths, pool after block). mnist1d, ordered_pairs: 40 → 20 → 10 → 5 positions;
# digits: 8×8 → 4×4 → 2×2 → 2×2 (no third pooling, a 1×1 map would leave nothing to convolve);
# cifar10: 32×32 → 16 → 8 → 4.
CONV_HOSTS: dict[str, tuple[tuple[int, ...], tuple[bool, ...]]] = {
    "mnist1d": ((4, 8, 16), (True, True, True)),
    "ordered_pairs": ((4, 8, 16), (True, True, True)),
    "digits": ((4, 8, 16), (True, True, False)),
    "cifar10": ((8, 16, 32), (True, True, True)),
}


def build_host(task: Task, width: float = 1.0, host: Mapping[str, Any] | None = None) -> Host:
    """The weak host for `task`: a transformer for language modelling, else the task's conv host; or the
    `Host` a `{_target_: …}` mapping `host` names, called with `task` and `width` (`env.host`).

    `width` scales the channels of every block (conv) or the model width (transformer, kept a multiple of
    the attention heads), at least one channel per block."""
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"host width must be a positive number, got {width!r}")
    if host is not None:
        built = build_target(host, "env.host", Host, task=task, width=width)
        if built.topology != task.topology:
            raise ValueError(f"env.host {{_target_: {host['_target_']}}} has {built.topology!r} injection points "
                             f"(layout {built.layout!r}), but task {task.name!r} needs a {task.topology!r} host")
        return built
    if task.topology == "transformer":
        (context_length,) = task.input_shape
        heads = 2
        dim = max(heads, round(TRANSFORMER_DIM * width / heads) * heads)
        return TransformerHost(vocab_size=task.num_classes, context_length=context_length, dim=dim, heads=heads)
    try:
        widths, pool = CONV_HOSTS[task.name]
    except KeyError:
        raise ValueError(f"no host defined for task {task.name!r}; hosts exist for {sorted(CONV_HOSTS)}, and a "
                         "host of your own is named by env.host={_target_: <module>.<Host subclass>}") from None
    in_channels, *spatial = task.input_shape
    scaled = tuple(max(1, round(channels * width)) for channels in widths)
    return ConvHost(len(spatial), in_channels, task.num_classes, scaled, pool)


def stem_host(task: Task, width: float = 1.0, depth: int = 3, channels: int = 16,
              normalised: bool = False) -> ConvHost:
    """A conv host of the task's three injection points, every stage `channels` wide (× `width`), whose first
    `depth` stages convolve (conv → ReLU, then the task's pooling) while the others only pool: a host that lacks
    depth rather than width, at a width where a residual seed has room to act, so growth there adds the layers it
    lacks (`env.host={_target_: tamiyo.env.hosts.stem_host, depth: 1}`). `normalised` puts a GroupNorm (one group:
    each sample over its channels and positions) between every conv and its ReLU, as practitioners build hosts, so
    a normalising seed has nothing left to add."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 3:
        raise ValueError(f"stem_host depth must be 1, 2 or 3, got {depth!r}")
    if not isinstance(normalised, bool):
        raise ValueError(f"stem_host normalised must be true or false, got {normalised!r}")
    try:
        _, pool = CONV_HOSTS[task.name]
    except KeyError:
        raise ValueError(f"stem_host has no pooling plan for task {task.name!r}; it has one for "
                         f"{sorted(CONV_HOSTS)}") from None
    in_channels, *spatial = task.input_shape
    stages = max(1, round(channels * width))
    host = ConvHost(len(spatial), in_channels, task.num_classes, [stages] * 3, pool)
    for index in range(3):
        conv, relu, *pooling = host.blocks[index]
        if index >= depth:  # a stage past the depth keeps only its pooling
            host.blocks[index] = nn.Sequential(*pooling)
        elif normalised:
            host.blocks[index] = nn.Sequential(conv, nn.GroupNorm(1, stages), relu, *pooling)
    return host


def host_slot_config(hosts: Sequence[tuple[Task, Mapping[str, Any] | None]]) -> SlotConfig:
    """The injection points of the hosts of (task, host spec as `build_host` takes it) pairs, at width 1, which must
    agree: the episodes of one env may draw any of its kinds, and the policy acts on one set of slots."""
    if not hosts:
        raise ValueError("an env needs at least one task")
    with torch.random.fork_rng(devices=[]):  # throwaway hosts must not move the caller's RNG
        built = [build_host(task, host=spec) for task, spec in hosts]
    first, (first_task, _) = built[0], hosts[0]
    for (task, _), host in zip(hosts[1:], built[1:], strict=True):
        if host.topology != first.topology or host.slot_config != first.slot_config:
            raise ValueError(
                f"tasks {first_task.name!r} and {task.name!r} cannot share an env: their hosts have "
                f"{first.topology} slots {list(first.slot_config.slot_ids)} and "
                f"{host.topology} slots {list(host.slot_config.slot_ids)}"
            )
    return first.slot_config
