"""Masked categorical distributions for the policy heads.

Masks are boolean, True = allowed. Invalid actions get the finite logit `MASKED_LOGIT` rather than
-inf or `finfo.min`: softmax then gives them ~0 probability without NaN in float32, float16 and
bfloat16, and their log-prob stays finite.

Several heads can be stacked in one padded tensor `[..., heads, max_n]` (padding columns masked
False) and treated as one distribution: log-softmax, sampling, arg-max and entropy act on the last
dim only, so the stack gives exactly the per-head results in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

MASKED_LOGIT = -1e4

# On CPU, exp() of inputs far below float32's range (such as masked entries near MASKED_LOGIT) takes a
# slow underflow path, about 50x slower. Clamping at -80 keeps the result a normal float (e^-80 ≈ 2e-35),
# which changes no sum that also holds the row maximum's e^0 = 1, and drops only gradients of that size.
_EXP_FLOOR = -80.0


class InvalidStateMachineError(RuntimeError):
    """A mask row allows no action: the masks disagree with the seed state machine."""


_validation_enabled = True


def set_validation(enabled: bool) -> None:
    """Switch mask/logit validation on or off for the whole process (on by default)."""
    global _validation_enabled
    _validation_enabled = bool(enabled)


def validation_enabled() -> bool:
    return _validation_enabled


def masked_logits(logits: Tensor, mask: Tensor) -> Tensor:
    """`logits` with disallowed entries replaced by `MASKED_LOGIT`."""
    return torch.where(mask, logits, MASKED_LOGIT)


def log_softmax(logits: Tensor) -> Tensor:
    """log_softmax over the last dim, fast on CPU for short rows with masked entries (see `_EXP_FLOOR`).

    PyTorch's own CPU log_softmax is several times slower on short last dims such as the heads' 3–13.
    """
    shifted = logits - logits.detach().amax(-1, keepdim=True)  # the shift cancels: no gradient needed
    return shifted - shifted.clamp_min(_EXP_FLOOR).exp().sum(-1, keepdim=True).log()


def normalized_entropy(logits: Tensor, mask: Tensor) -> Tensor:
    """Entropy over the allowed actions divided by log(#allowed): 1 for uniform, exactly 0 for one action."""
    return _normalized_entropy(log_softmax(masked_logits(logits, mask)), mask)


def _normalized_entropy(log_probs: Tensor, mask: Tensor) -> Tensor:
    raw = -torch.where(mask, log_probs.clamp_min(_EXP_FLOOR).exp() * log_probs, 0.0).sum(-1)
    num_valid = mask.sum(-1)
    # clamp keeps the divisor finite where the row has 0 or 1 valid actions; `where` then returns 0 there.
    max_entropy = num_valid.clamp(min=2).to(raw.dtype).log()
    return torch.where(num_valid > 1, raw / max_entropy, 0.0)


def sample_categorical(logits: Tensor) -> Tensor:
    """One draw per row of softmax(logits) by the Gumbel-max trick (one kernel chain, no distribution objects).

    The noise is drawn in float32 whatever the logits' dtype (bfloat16 uniforms are too coarse), and the
    uniforms are clamped away from 0, which bounds the noise to about [-4.5, 16.6]: an entry at
    `MASKED_LOGIT` can never beat an allowed one.
    """
    uniform = torch.rand(logits.shape, device=logits.device).clamp_min_(torch.finfo(torch.float32).tiny)
    return (logits.float() - uniform.log_().neg_().log_()).argmax(-1)


def validate_heads(logits: Tensor, mask: Tensor, names: str | Sequence[str]) -> None:
    """Raise if a mask row allows nothing or a logit is NaN/inf, with one host sync for all heads.

    With one name, the last dim holds that head's actions. With several names, the tensors are a
    padded stack `[..., len(names), max_n]` and dim -2 indexes the heads. Does nothing while
    validation is switched off (`set_validation(False)`).
    """
    if not _validation_enabled:
        return
    if isinstance(names, str):
        names, logits, mask = (names,), logits.unsqueeze(-2), mask.unsqueeze(-2)
    heads = len(names)
    if mask.dim() < 2 or mask.shape[-2] != heads:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not stack the {heads} heads {list(names)} in dim -2")
    rows_valid = mask.any(-1).reshape(-1, heads).all(0)
    # One NaN/inf logit makes its head's float32 sum non-finite (cheaper than an elementwise isfinite);
    # finite logits could only overflow that sum beyond ~1e38, itself a sign of instability.
    logit_sums = logits.reshape(-1, heads, logits.shape[-1]).sum((0, 2), dtype=torch.float32)
    flags = torch.cat([rows_valid.float(), logit_sums]).tolist()  # the one host sync
    empty = [name for name, ok in zip(names, flags[:heads], strict=True) if not ok]
    if empty:
        raise InvalidStateMachineError(
            f"no valid action in some rows of head(s) {empty}: the action masks disagree with the seed state machine"
        )
    non_finite = [name for name, total in zip(names, flags[heads:], strict=True) if not math.isfinite(total)]
    if non_finite:
        raise ValueError(f"NaN or infinite logits in head(s) {non_finite}: the network has become numerically unstable")


class MaskedCategorical:
    """Categorical distribution restricted to the allowed actions of one head or a padded stack of heads.

    Validates (see `validate_heads`) on construction. `entropy()` is the normalised entropy.
    """

    def __init__(self, logits: Tensor, mask: Tensor, names: str | Sequence[str]) -> None:
        validate_heads(logits, mask, names)
        self.mask = mask
        self.masked_logits = masked_logits(logits, mask)
        self.log_probs = log_softmax(self.masked_logits)

    def sample(self) -> Tensor:
        return sample_categorical(self.masked_logits)

    def mode(self) -> Tensor:
        """The most likely allowed action (ties go to the lowest index)."""
        return self.masked_logits.argmax(-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return self.log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        return _normalized_entropy(self.log_probs, self.mask)
