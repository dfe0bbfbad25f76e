"""The morphogenetic model: a host network with one `SeedSlot` per injection point, and its validation.

Parameter ownership: the host's optimiser trains the host and every fossilized seed (a fossil is part
of the host for good); each live seed has its own optimiser over `live_seed_parameters()[slot_id]`.

Validation measures, in the same pass over the validation data, the accuracy of the model as it is
and with each blending/holding seed's alpha forced to 0 (one fused forward over the batch repeated
K times, with per-sample alphas), so a seed's counterfactual contribution is exactly
accuracy(with) − accuracy(without) on the same samples and weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from tamiyo.core.slots import SlotConfig, SlotIdError
from tamiyo.core.stages import SeedStage
from tamiyo.env.gates import GateConfig
from tamiyo.env.hosts import Host
from tamiyo.env.slot import SeedSlot
from tamiyo.env.tasks import cross_entropy

# Stages whose seed is blended in (alpha may be > 0) and still undecided: the ones whose counterfactual
# contribution the controller needs. A TRAINING seed's output equals the host's, so there is nothing to ablate.
COUNTERFACTUAL_STAGES = frozenset({SeedStage.BLENDING, SeedStage.HOLDING})


def enabled_slot_config(host: Host, enabled_slots: Sequence[str] | None) -> SlotConfig:
    """The slot configuration of `host` restricted to `enabled_slots` (None = every injection point)."""
    if enabled_slots is None:
        return host.slot_config
    config = SlotConfig.from_ids(list(enabled_slots))
    unknown = [slot_id for slot_id in config.slot_ids if slot_id not in host.slot_config.slot_ids]
    if unknown:
        raise SlotIdError(f"env.slots: unknown slot id {unknown[0]!r}; this host's slots are "
                          f"{list(host.slot_config.slot_ids)}")
    return config


class MorphogeneticModel(nn.Module):
    """`host` plus a `SeedSlot` at each of its injection points (a `ModuleDict` keyed by slot id)."""

    def __init__(
        self, host: Host, gates: GateConfig | None = None, enabled_slots: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        self.host = host
        self._slot_config = enabled_slot_config(host, enabled_slots)
        enabled = set(self._slot_config.slot_ids)
        self.seed_slots = nn.ModuleDict({
            p.slot_id: SeedSlot(p.slot_id, p.channels, host.layout, gates)
            for p in host.injection_points
            if p.slot_id in enabled
        })
        # A plain mapping for the host's per-forward lookups (ModuleDict has no `get`); same modules.
        self._slot_map: dict[str, SeedSlot] = dict(self.seed_slots.items())  # type: ignore[arg-type]

    @property
    def slot_config(self) -> SlotConfig:
        """The enabled slots (all of the host's injection points unless restricted)."""
        return self._slot_config

    @property
    def topology(self) -> str:
        return self.host.topology

    @property
    def slots(self) -> list[SeedSlot]:
        """Slots in slot-head (row-major) order."""
        return list(self._slot_map.values())

    def slot(self, slot_id: str) -> SeedSlot:
        try:
            return self._slot_map[slot_id]
        except KeyError:
            raise SlotIdError(f"unknown slot id {slot_id!r}; model slots: {list(self._slot_map)}") from None

    def forward(self, x: Tensor) -> Tensor:
        return self.host(x, self._slot_map)

    # ---- parameter groups ----
    def host_parameters(self) -> list[nn.Parameter]:
        """What the host optimiser trains: the host and every fossilized seed."""
        fossils = [p for slot in self._slot_map.values() for p in slot.fossilized_parameters()]
        return [*self.host.parameters(), *fossils]

    def live_seed_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Per slot id, the parameters of a live (germinated … holding) seed; slots without one are absent."""
        groups = {sid: slot.live_seed_parameters() for sid, slot in self._slot_map.items()}
        return {sid: params for sid, params in groups.items() if params}

    def host_param_count(self) -> int:
        return sum(p.numel() for p in self.host.parameters())

    def seed_param_count(self) -> int:
        """Parameters of live and fossilized seeds (gates included)."""
        return sum(slot.seed_param_count for slot in self._slot_map.values())

    # ---- counterfactuals ----
    def counterfactual_slots(self) -> list[str]:
        """Slot ids whose seed is ablated in the counterfactual pass (blending or holding seeds)."""
        return [sid for sid, slot in self._slot_map.items() if slot.stage in COUNTERFACTUAL_STAGES]

    def counterfactual_forward(self, x: Tensor, ablate: Sequence[str]) -> Tensor:
        """Logits `[K, B, ...]` for K = 1 + len(ablate) configurations of one batch: index 0 is the model as
        it is, index k ≥ 1 has the seed of `ablate[k-1]` at alpha 0 (all other seeds unchanged)."""
        if not ablate:
            return self(x).unsqueeze(0)
        configs, batch = 1 + len(ablate), x.shape[0]
        repeated = x.repeat(configs, *([1] * (x.dim() - 1)))
        with contextlib.ExitStack() as stack:
            for k, slot_id in enumerate(ablate, start=1):
                slot = self.slot(slot_id)
                alpha = torch.full((configs, batch), slot.alpha, device=x.device)
                alpha[k] = 0.0
                stack.enter_context(slot.alpha_override(alpha.view(-1)))
            logits = self(repeated)
        return logits.view(configs, batch, *logits.shape[1:])

    # ---- rollback ----
    def snapshot(self) -> dict[str, Any]:
        """Independent copies of the host's state (weights and buffers) and of every slot."""
        return {
            "host": {name: value.detach().clone() for name, value in self.host.state_dict().items()},
            "slots": {sid: slot.snapshot() for sid, slot in self._slot_map.items()},
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Return to `snapshot` (left intact). Seed modules are rebuilt, so seed optimisers must be too."""
        self.host.load_state_dict(snapshot["host"])
        for sid, slot in self._slot_map.items():
            slot.restore(snapshot["slots"][sid])


@dataclass(frozen=True)
class Validation:
    """Per-sample mean loss and accuracy (percent) of the model as it is, and each ablated seed's
    counterfactual contribution (accuracy points with it minus with its alpha at 0)."""

    loss: float
    accuracy: float
    counterfactuals: dict[str, float]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to `dtype` on `device`, or nothing when `dtype` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def validation_batches(x: Tensor, y: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def training_flops_per_sample(model: MorphogeneticModel, x: Tensor) -> int:
    """FLOPs of one training step's forward and backward pass per sample (matmuls and convolutions;
    the backward pass costs twice the forward), counted on the model as it is now: seeds at alpha 0 and
    seeds in isolated training included exactly as training runs them. Eval mode keeps batch-norm
    statistics untouched; gradients stay enabled because a seed in TRAINING only runs when they are."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(x[:1])
    finally:
        model.train(was_training)
    return 3 * counter.get_total_flops()


def validate(
    model: MorphogeneticModel, x: Tensor, y: Tensor, batch_size: int, autocast_dtype: torch.dtype | None = None
) -> Validation:
    """One pass over `(x, y)` measuring loss, accuracy and every counterfactual; one device sync."""
    ablate = model.counterfactual_slots()
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros(1 + len(ablate), dtype=torch.int64, device=x.device)
    with torch.inference_mode(), autocast(x.device, autocast_dtype):
        for xb, yb in validation_batches(x, y, batch_size):
            logits = model.counterfactual_forward(xb, ablate)
            loss_sum += cross_entropy(logits[0].float(), yb) * yb.numel()
            hits = logits.argmax(dim=-1) == yb.unsqueeze(0)
            correct += hits.reshape(hits.shape[0], -1).sum(dim=1)
    model.train(was_training)
    loss_total, *hit_counts = torch.cat([loss_sum.view(1), correct.double()]).tolist()
    targets = y.numel()
    accuracies = [100.0 * hits / targets for hits in hit_counts]
    return Validation(
        loss=loss_total / targets,
        accuracy=accuracies[0],
        counterfactuals={sid: accuracies[0] - accuracies[k] for k, sid in enumerate(ablate, start=1)},
    )
