"""The seed/host gradient-norm ratio strict gate G2 reads, measured while the host trains.

Per epoch and per slot whose seed is in TRAINING or BLENDING:
`ratio = (‖g_seed‖ / ‖g_host‖) · sqrt(host_params / seed_params)`, the seed's gradient intensity per
parameter relative to the host's, with each norm the root mean square over the measured batches (0 when
either is below 1e-8). Every `MEASURE_EVERY`-th batch is measured (the first always): the norms of tiny
host nets cost a noticeable share of a batch, and a sample suffices for a smoothed gate input. The
squared norms are summed as tensors on the training device, so measuring adds no host-device
synchronisation per batch; the sums are read once per epoch with the loss.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tamiyo.core.stages import SeedStage
from tamiyo.env.slot import SeedSlot

_MEASURED_STAGES = frozenset({SeedStage.TRAINING, SeedStage.BLENDING})
_EPSILON = 1e-8
MEASURE_EVERY = 8


def _squared_norm(params: list[nn.Parameter], device: torch.device) -> Tensor:
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), dtype=torch.float64, device=device)
    return torch.nn.utils.get_total_norm(grads).double() ** 2


class GradientRatioMeter:
    """Accumulates one epoch's gradient norms of the host and of the measured seeds."""

    def __init__(self, host_params: list[nn.Parameter], slots: list[SeedSlot], device: torch.device) -> None:
        self.host_params = host_params
        self.slots = [slot for slot in slots if slot.has_seed and slot.stage in _MEASURED_STAGES]
        self.device = device
        self.sums = torch.zeros(len(self.slots) + 1, dtype=torch.float64, device=device)
        self.batches = 0  # measured batches
        self._seen = 0

    def accumulate(self) -> None:
        """Add the current gradients (call after every `backward`, before the optimiser step)."""
        self._seen += 1
        if not self.slots or (self._seen - 1) % MEASURE_EVERY:
            return
        norms = [_squared_norm(self.host_params, self.device)]
        norms += [_squared_norm(slot.live_seed_parameters(), self.device) for slot in self.slots]
        self.sums += torch.stack(norms)
        self.batches += 1

    def record(self, sums: list[float]) -> None:
        """Give every measured slot its ratio from `sums` (this meter's `sums`, read on the host)."""
        if not self.slots or self.batches == 0:
            return
        host_norm = math.sqrt(sums[0] / self.batches)
        host_count = sum(p.numel() for p in self.host_params)
        for slot, seed_sum in zip(self.slots, sums[1:], strict=True):
            seed_norm = math.sqrt(seed_sum / self.batches)
            if host_norm < _EPSILON or seed_norm < _EPSILON:
                ratio = 0.0
            else:
                ratio = seed_norm / host_norm * math.sqrt(host_count / max(slot.seed_param_count, 1))
            slot.record_gradient_ratio(ratio)
