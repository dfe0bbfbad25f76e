"""A host and a blueprint for the growth probes of adaptive_benchmark.md (section 7), named on the command line by
`env.host={_target_: growth_probes.stem_host, depth: 1}` or
`env.blueprints={conv_heavy: {_target_: growth_probes.ExpandingSeed, hidden: 32}}` with
`PYTHONPATH=scripts/experiments`.

A stem host has the three injection points of the task's built-in conv host, every stage `channels` wide, but only
its first `depth` stages convolve (conv → ReLU, then the task's pooling); the others only pool. Growth there adds
the layers the host lacks, at a width where a residual seed has room to act. An expanding seed,
x + W2·ReLU(W1·x) with `hidden` channels in between and W2 zero at birth, gives a narrow stage a wide layer."""

from __future__ import annotations

from torch import Tensor, nn

from tamiyo.env.hosts import CONV_HOSTS, ConvHost
from tamiyo.env.tasks import Task


def stem_host(task: Task, width: float, depth: int = 3, channels: int = 16) -> ConvHost:
    if not 1 <= depth <= 3:
        raise ValueError(f"depth must be 1, 2 or 3, got {depth}")
    in_channels, *spatial = task.input_shape
    stages = max(1, round(channels * width))
    _, pool = CONV_HOSTS[task.name]
    host = ConvHost(len(spatial), in_channels, task.num_classes, [stages] * 3, pool)
    for index in range(depth, 3):  # a stage past the depth keeps only its pooling (conv and ReLU dropped)
        host.blocks[index] = nn.Sequential(*list(host.blocks[index])[2:])
    return host


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
