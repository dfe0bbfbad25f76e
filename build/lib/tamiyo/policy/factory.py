"""Build a ready-to-use policy bundle: validate, construct, place on the device, then compile."""

from __future__ import annotations

from typing import Any

import torch

from tamiyo.core.slots import SlotConfig
from tamiyo.policy.protocol import PolicyBundle, validate_compile_mode
from tamiyo.policy.registry import get_policy


def create_policy(
    name: str,
    slot_config: SlotConfig,
    topology: str,
    device: torch.device | str = "cpu",
    compile_mode: str = "off",
    **cfg: Any,
) -> PolicyBundle:
    """The bundle registered as `name`, on `device`, compiled with `compile_mode`.

    The compile mode is checked before anything is built so a typo fails fast. Compilation comes
    last because a compiled bundle refuses to move: tracing must see the final device.
    """
    validate_compile_mode(compile_mode)
    bundle = get_policy(name, slot_config=slot_config, topology=topology, **cfg)
    bundle.to(device)
    bundle.compile(compile_mode)
    return bundle
