"""Deterministic seed derivation: independent RNG streams from tuples such as (seed, env, episode)."""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part and on their order (NumPy's SeedSequence mixing),
    e.g. `derive_seed(seed, env_index, episode)` for one env's episode."""
    if any(p < 0 for p in parts):
        raise ValueError(f"seed parts must be ≥ 0, got {parts}")
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def generator(*parts: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with `derive_seed(*parts)`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(*parts))
    return gen
