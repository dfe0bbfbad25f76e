"""A blueprint for the growth probes of adaptive_benchmark.md (section 7), named on the command line by
`env.blueprints={conv_heavy: {_target_: growth_probes.ExpandingSeed, hidden: 32}}` with
`PYTHONPATH=scripts/experiments` (the probes' host is `tamiyo.env.hosts.stem_host`).

An expanding seed, x + W2·ReLU(W1·x) with `hidden` channels in between and W2 zero at birth, gives a narrow stage a
wide layer."""

from __future__ import annotations

from torch import Tensor, nn


class ExpandingSeed(nn.Module):
    def __init__(self, layout: str, channels: int, hidden: int = 32, kernel_size: int = 3) -> None:
        super().__init__()
        conv = nn.Conv1d if layout == "conv1d" else nn.Conv2d
        self.expand = conv(channels, hidden, kernel_size, padding=kernel_size // 2)
        self.project = conv(hidden, channels, 1)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(self.expand(x).relu())
