"""Running normalisers for observations and rewards.

Statistics are kept in float64 and merged exactly (Chan et al.'s parallel form of Welford's
algorithm), so a normaliser fed a stream of batches holds the same mean and population variance as
one computed over the concatenated stream. Each normaliser has a `frozen` mode for evaluation
(`update` becomes a no-op; normalising still uses the stored statistics), and a `state_dict` of
plain tensors and numbers so checkpoints load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from typing import Any

import torch


class RunningMeanStd:
    """Mean and population variance of a stream of samples of shape `shape`.

    Starts empty (count 0, mean 0, variance 1): before the first update, `normalize` only clips.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-8) -> None:
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.shape = tuple(shape)
        self.epsilon = float(epsilon)
        self.mean = torch.zeros(self.shape, dtype=torch.float64)
        self.var = torch.ones(self.shape, dtype=torch.float64)
        self.count = 0.0

    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch `[..., *shape]`; all leading dimensions are samples."""
        if tuple(batch.shape)[batch.dim() - len(self.shape):] != self.shape:
            raise ValueError(f"batch shape {tuple(batch.shape)} does not end in the statistics shape {self.shape}")
        samples = batch.detach().to("cpu", torch.float64).reshape(-1, *self.shape)
        if samples.shape[0] == 0:
            return
        if not torch.isfinite(samples).all():
            raise ValueError("cannot update running statistics with NaN or infinite values")
        self.merge(float(samples.shape[0]), samples.mean(dim=0), samples.var(dim=0, correction=0))

    def merge(self, count: float, mean: torch.Tensor, var: torch.Tensor) -> None:
        """Fold in the statistics (count, mean, population variance) of another, disjoint sample set."""
        if count == 0:
            return
        total = self.count + count
        delta = mean.to(torch.float64) - self.mean
        # Chan et al.: M2 = M2_a + M2_b + delta² · n_a · n_b / n. With count 0 this is exactly the other set.
        m2 = self.var * self.count + var.to(torch.float64) * count + delta.square() * (self.count * count / total)
        self.mean = self.mean + delta * (count / total)
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> torch.Tensor:
        return torch.sqrt(self.var + self.epsilon)

    def normalize(self, x: torch.Tensor, clip: float) -> torch.Tensor:
        """`(x − mean) / sqrt(var + epsilon)`, clamped to `[−clip, clip]`, in `x`'s dtype and device."""
        mean = self.mean.to(x.device, x.dtype)
        std = self.std.to(x.device, x.dtype)
        return ((x - mean) / std).clamp(-clip, clip)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean, var = state["mean"], state["var"]
        if tuple(mean.shape) != self.shape or tuple(var.shape) != self.shape:
            raise ValueError(
                f"running statistics of shape {tuple(mean.shape)} do not fit a normaliser of shape {self.shape}"
            )
        self.mean = mean.to("cpu", torch.float64).clone()
        self.var = var.to("cpu", torch.float64).clone()
        self.count = float(state["count"])


def _check_clip(clip: float) -> float:
    if not clip > 0:
        raise ValueError(f"clip must be > 0, got {clip}")
    return float(clip)


class ObservationNormalizer:
    """Per-feature running standardisation of observation vectors `[..., obs_dim]`, clipped to ±clip."""

    def __init__(self, obs_dim: int, clip: float = 5.0, epsilon: float = 1e-8, frozen: bool = False) -> None:
        if obs_dim < 1:
            raise ValueError(f"obs_dim must be ≥ 1, got {obs_dim}")
        self.clip = _check_clip(clip)
        self.stats = RunningMeanStd((obs_dim,), epsilon)
        self.frozen = frozen

    def update(self, obs: torch.Tensor) -> None:
        """Fold a batch of raw observations into the statistics (no-op when frozen)."""
        if not self.frozen:
            self.stats.update(obs)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.stats.normalize(obs, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, Any], new_columns: bool = False) -> None:
        """Load statistics; with `new_columns`, statistics of fewer (leading) columns are accepted and the
        columns they lack start at mean 0 and variance 1, i.e. pass through at the features' own unit scale."""
        added = self.stats.shape[0] - state["mean"].shape[-1] if new_columns else 0
        if added > 0:
            state = {
                **state,
                "mean": torch.cat((state["mean"], state["mean"].new_zeros(added))),
                "var": torch.cat((state["var"], state["var"].new_ones(added))),
            }
        self.stats.load_state_dict(state)


class RewardNormalizer:
    """Scales rewards by the running std of each env's discounted return (no mean subtraction).

    Each env keeps `ret ← gamma · ret + r`; the statistics see every env's `ret` each step, and `ret`
    restarts at 0 after a step marked done. Dividing by this std keeps the value targets (which are
    discounted returns) near unit scale whatever the raw reward scale is. Per step: `update` with the raw
    rewards and dones, then `normalize` the same rewards.

    Warm start: the statistics begin with a prior, as if `prior_count` returns with mean 0 and standard
    deviation `prior_std` had already been seen. Without it the first step would divide by the std of
    `num_envs` nearly equal returns (rewards of −0.0200 … −0.0201 from 4 envs all became the clip, −10).
    With the prior the scale moves smoothly from `prior_std` (1: rewards pass through unscaled) to the
    data's std as real returns outweigh the pseudo-samples; at the default 100, the first 25-step rollout
    of 4 envs carries half the weight. `prior_count=0` gives the plain running std.
    """

    def __init__(
        self,
        num_envs: int,
        gamma: float = 0.995,
        clip: float = 10.0,
        epsilon: float = 1e-8,
        frozen: bool = False,
        prior_count: float = 100.0,
        prior_std: float = 1.0,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be ≥ 1, got {num_envs}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if prior_count < 0:
            raise ValueError(f"prior_count must be ≥ 0, got {prior_count}")
        if not prior_std > 0:
            raise ValueError(f"prior_std must be > 0, got {prior_std}")
        self.num_envs = num_envs
        self.gamma = float(gamma)
        self.clip = _check_clip(clip)
        self.return_stats = RunningMeanStd((), epsilon)
        zero = torch.zeros((), dtype=torch.float64)
        self.return_stats.merge(float(prior_count), zero, zero + float(prior_std) ** 2)
        self.discounted_returns = torch.zeros(num_envs, dtype=torch.float64)
        self.frozen = frozen

    def update(self, rewards: torch.Tensor, dones: torch.Tensor) -> None:
        """Advance the discounted returns by one step of `rewards [N]` and fold them into the statistics;
        envs whose `dones [N]` is True restart their return afterwards. No-op when frozen."""
        if tuple(rewards.shape) != (self.num_envs,) or tuple(dones.shape) != (self.num_envs,):
            raise ValueError(
                f"rewards {tuple(rewards.shape)} and dones {tuple(dones.shape)} must both have shape ({self.num_envs},)"
            )
        if self.frozen:
            return
        self.discounted_returns = self.discounted_returns * self.gamma + rewards.detach().to("cpu", torch.float64)
        self.return_stats.update(self.discounted_returns)
        self.discounted_returns = self.discounted_returns.masked_fill(dones.detach().to("cpu", torch.bool), 0.0)

    def normalize(self, rewards: torch.Tensor) -> torch.Tensor:
        std = self.return_stats.std.to(rewards.device, rewards.dtype)
        return (rewards / std).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return {"return_stats": self.return_stats.state_dict(), "discounted_returns": self.discounted_returns.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        returns = state["discounted_returns"]
        if tuple(returns.shape) != (self.num_envs,):
            raise ValueError(f"saved discounted returns have shape {tuple(returns.shape)}, expected ({self.num_envs},)")
        self.return_stats.load_state_dict(state["return_stats"])
        self.discounted_returns = returns.to("cpu", torch.float64).clone()
