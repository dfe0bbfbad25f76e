"""The factored recurrent actor-critic.

observation → Linear → LayerNorm → ReLU → LSTM → LayerNorm → eight policy heads and a value head,
each Linear(hidden, hidden/2) → ReLU → Linear(hidden/2, n).

Autoregressive heads (`op_conditioning=True`, the default): op is sampled first, and the seven heads
after it (slot, blueprint, style, tempo, alpha_target, alpha_speed, alpha_curve) see it: a learned
embedding of the op (`op_embedding`, one `hidden_dim` vector per op) is added to their input. Several
of these heads serve two ops (style and alpha_target: GERMINATE and SET_ALPHA_TARGET; alpha_speed and
alpha_curve: SET_ALPHA_TARGET and PRUNE), so without it one state could not choose different settings
for different ops. The op head and the value head see the state only. `evaluate_actions` conditions on
the stored op exactly as `get_action` did on the sampled one. At the defaults (obs 149, 3 slots,
feature 128, hidden 128, 1 layer) the network has 229 610 parameters (228 842 without conditioning).

Every head keeps its own modules (the checkpoint names `heads.<head>.0.weight`, ...), but the nine
heads run as one fused pass of two matmuls (see `_heads`). The policy logits then go into one padded
tensor `[..., heads, max_n]` (padding columns masked out) so that masking, log-softmax, sampling and
entropy happen once for all heads. In full precision `get_action` runs the LSTM cell equations for
its single step instead of nn.LSTM's sequence kernel. The math is the same as running the modules one
by one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tamiyo.core.actions import HEAD_INDEX, HEAD_NAMES, LifecycleOp, head_sizes
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.distribution import MaskedCategorical, masked_logits, sample_categorical
from tamiyo.policy.relevance import HeadRelevance

if TYPE_CHECKING:
    from tamiyo.policy.masks import ActionMasks

Hidden = tuple[Tensor, Tensor]

_OP = HEAD_INDEX["op"]
_NUM_OPS = len(LifecycleOp)


@dataclass(frozen=True, slots=True)
class ForwardOutput:
    logits: dict[str, Tensor]  # head -> [B, T, n], disallowed entries at MASKED_LOGIT when masks were given
    value: Tensor  # [B, T]
    hidden: Hidden  # (h, c), each [num_layers, B, hidden_dim]


@dataclass(frozen=True, slots=True)
class ActionResult:
    actions: dict[str, Tensor]  # head -> [B] long; irrelevant heads hold IRRELEVANT_HEAD_VALUE
    log_probs: dict[str, Tensor]  # head -> [B]; 0 for irrelevant heads
    value: Tensor  # [B]
    hidden: Hidden
    masks: dict[str, Tensor]  # head -> [B, n] bool: the masks the actions were drawn under


@dataclass(frozen=True, slots=True)
class EvalResult:
    log_probs: dict[str, Tensor]  # head -> [B, T]; 0 for irrelevant heads
    entropy: dict[str, Tensor]  # head -> [B, T], normalised to [0, 1]; 0 for irrelevant heads
    value: Tensor  # [B, T]
    hidden: Hidden


def _own_precision(obs: Tensor) -> torch.autocast:
    """Autocast switched off: the policy computes in its weights' precision under any autocast.

    Under bfloat16 autocast the single-step rollout path and the sequence re-evaluation round
    differently (the carried LSTM state, and matmuls of different shapes), and the re-evaluated log-probs
    drifted from the sampled ones by up to 0.03 with sharp heads: the PPO ratio would start away from 1.
    The network is small (0.23 M parameters), so reduced precision buys it nothing worth that; autocast
    still applies to everything else (the host networks, the loss outside the policy).
    """
    return torch.autocast(obs.device.type, enabled=False)


def _mlp(width: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, out))


def _init_head_output(head: nn.Sequential) -> None:
    """Near-zero output weights and zero bias: a new head's choices start near uniform."""
    nn.init.orthogonal_(head[-1].weight, gain=0.01)
    nn.init.zeros_(head[-1].bias)


class FactoredRecurrentActorCritic(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        slot_config: SlotConfig,
        feature_dim: int = 128,
        hidden_dim: int = 128,
        num_layers: int = 1,
        op_conditioning: bool = True,
        op_init_logits: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("obs_dim", obs_dim), ("feature_dim", feature_dim), ("num_layers", num_layers)):
            if value < 1:
                raise ValueError(f"{name} must be ≥ 1, got {value}")
        if hidden_dim < 2:
            raise ValueError(f"hidden_dim must be ≥ 2, got {hidden_dim}")
        self.obs_dim = obs_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.head_sizes = head_sizes(slot_config)

        self.feature = nn.Sequential(nn.Linear(obs_dim, feature_dim), nn.LayerNorm(feature_dim), nn.ReLU())
        self.lstm = nn.LSTM(feature_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.lstm_norm = nn.LayerNorm(hidden_dim)
        self.heads = nn.ModuleDict({name: _mlp(hidden_dim, hidden_dim // 2, n) for name, n in self.head_sizes.items()})
        self.value_head = _mlp(hidden_dim, hidden_dim // 2, 1)
        self.op_conditioning = op_conditioning
        if op_conditioning:
            self.op_embedding = nn.Embedding(_NUM_OPS, hidden_dim)
        self._op_init_logits = dict(op_init_logits or {})
        self._init_weights()
        self._init_op_logits(self._op_init_logits)

        # Fused head layout. `_heads` returns, for each of the nine heads' hidden layers (policy heads in
        # HEAD_NAMES order, then the value head), the outputs of all nine second layers side by side:
        # [..., 9 * outputs] with outputs = sum(policy head sizes) + 1. Head h's own outputs sit in
        # block h at its offset. The indices below read those diagonal blocks.
        self._fused = (*(self.heads[name] for name in HEAD_NAMES), self.value_head)
        sizes = list(self.head_sizes.values())
        offsets = [sum(sizes[:h]) for h in range(len(sizes))]
        outputs = sum(sizes) + 1
        width = max(sizes)
        # Padded [heads, width] layout for masking, log-softmax and sampling in one pass; padding
        # columns repeat a real column and are always masked out (`_pad_valid`).
        mask_index = torch.tensor(
            [[off + min(j, n - 1) for j in range(width)] for off, n in zip(offsets, sizes, strict=True)]
        )
        block_start = torch.arange(len(sizes)).unsqueeze(1) * outputs
        flat_logit_index = [h * outputs + offsets[h] + j for h, n in enumerate(sizes) for j in range(n)]
        self.register_buffer("_mask_index", mask_index, persistent=False)  # into the concatenated masks
        self.register_buffer("_logit_index", block_start + mask_index, persistent=False)  # into _heads' output
        self.register_buffer("_flat_logit_index", torch.tensor(flat_logit_index), persistent=False)
        pad_valid = torch.tensor([[j < n for j in range(width)] for n in sizes])
        self.register_buffer("_pad_valid", pad_valid, persistent=False)
        self._value_index = len(sizes) * outputs + outputs - 1
        # Columns of the fused first layer that take the op embedding: every policy head but op.
        head_width = hidden_dim // 2
        conditioned = [name not in ("op", "value") for name in (*HEAD_NAMES, "value")]
        self.register_buffer(
            "_conditioned_columns", torch.tensor(conditioned).repeat_interleave(head_width).float(), persistent=False
        )

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.orthogonal_(module.weight, gain=math.sqrt(2))
                nn.init.zeros_(module.bias)
        for head in self.heads.values():
            _init_head_output(head)
        nn.init.orthogonal_(self.value_head[-1].weight, gain=1.0)
        if self.op_conditioning:
            # Unit scale like the LayerNorm'd LSTM output it is added to: the op matters from the start.
            nn.init.normal_(self.op_embedding.weight, std=1.0)
        hidden = self.hidden_dim
        for name, param in self.lstm.named_parameters():
            if name.startswith("weight_"):
                nn.init.orthogonal_(param)
            else:
                # PyTorch adds bias_ih and bias_hh. Only bias_ih carries the forget-gate slice (gate order
                # input, forget, cell, output) at 1.0 and bias_hh stays 0, so the effective forget bias is 1.0.
                nn.init.zeros_(param)
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        param[hidden : 2 * hidden].fill_(1.0)

    def _init_op_logits(self, logits: Mapping[str, float]) -> None:
        """Start the op head's bias at `logits` (op name → logit; others 0). The head's weights start near
        0, so these set the initial op preferences among the legal ops; learning moves them like any bias."""
        names = {op.name.lower(): op for op in LifecycleOp}
        unknown = sorted(set(logits) - set(names))
        if unknown:
            raise ValueError(f"op_init_logits has unknown ops {unknown}; ops: {sorted(names)}")
        with torch.no_grad():
            for name, value in logits.items():
                if not math.isfinite(value):
                    raise ValueError(f"op_init_logits.{name} must be finite, got {value}")
                self.heads["op"][-1].bias[names[name]] = float(value)

    def reset_heads(self, names: Sequence[str]) -> None:
        """Return the output layers of the policy heads `names` to their initial state (near-uniform
        choices; the op head to its initial op preferences), e.g. so that a warm-started head that had become
        deterministic explores again."""
        unknown = sorted(set(names) - set(self.heads))
        if unknown:
            raise ValueError(f"unknown policy heads {unknown}; heads: {list(self.heads)}")
        with torch.no_grad():
            for name in names:
                _init_head_output(self.heads[name])
        if "op" in names:
            self._init_op_logits(self._op_init_logits)

    def initial_hidden(self, batch_size: int) -> Hidden:
        weight = self.lstm.weight_hh_l0
        shape = (self.num_layers, batch_size, self.hidden_dim)
        return (weight.new_zeros(shape), weight.new_zeros(shape))

    # ---- shared pieces ----

    def _check_width(self, obs: Tensor) -> None:
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"observation width {obs.shape[-1]} does not match the network's obs_dim {self.obs_dim}")

    def _check_sequence(self, obs: Tensor) -> None:
        if obs.dim() != 3:
            raise ValueError(f"expected obs [B, T, D], got shape {tuple(obs.shape)}")
        self._check_width(obs)

    def _heads(self, x: Tensor, op: Tensor | None = None) -> Tensor:
        """LSTM output [..., H] → [..., 9 * outputs]: every head's hidden layer through all nine output layers.

        First layers: one matmul with the nine weight matrices side by side. Second layers: one matmul
        of each head's hidden slice against all nine output matrices stacked. Only the diagonal blocks
        (head h's hidden through head h's outputs) are read afterwards (`_logit_index`,
        `_flat_logit_index`, `_value_index`), so the math is that of nine separate heads and the unused
        off-diagonal products get zero gradient.

        `op [...]` (op-conditioned networks): the heads after op get `W_h (z + e_op)`, computed as
        `W_h z + W_h e_op` with the second term looked up from a `[ops, columns]` table that is zero in the
        op and value columns, so those two heads compute exactly what they compute without `op`.
        """
        first = [head[0] for head in self._fused]
        second = [head[2] for head in self._fused]
        first_weight = torch.cat([layer.weight for layer in first])
        hidden = F.linear(self.lstm_norm(x), first_weight, torch.cat([layer.bias for layer in first]))
        if op is not None:
            table = F.linear(self.op_embedding.weight, first_weight) * self._conditioned_columns
            hidden = hidden + table.to(hidden.dtype)[op]
        hidden = F.relu(hidden).unflatten(-1, (len(first), -1))
        weight, bias = torch.cat([layer.weight for layer in second]), torch.cat([layer.bias for layer in second])
        return F.linear(hidden, weight, bias).flatten(-2)

    def _trunk(self, obs: Tensor, hidden: Hidden | None, op: Tensor | None) -> tuple[Tensor, Hidden]:
        """obs [B, T, D] (and the op [B, T] the heads after op see) → `_heads` output [B, T, 9 * outputs]
        and the new hidden state."""
        x, hidden = self.lstm(self.feature(obs), hidden)
        return self._heads(x, op), hidden


    def _op_for_heads(self, op: Tensor | None, shape: tuple[int, ...]) -> Tensor | None:
        """The op the heads after op are conditioned on: `op` for a conditioned network (required, of
        `shape`), None for an unconditioned one (which ignores it)."""
        if not self.op_conditioning:
            return None
        if op is None:
            raise ValueError("this network's heads after op are conditioned on the op: pass op (the op head's actions)")
        if tuple(op.shape) != shape:
            raise ValueError(f"op has shape {tuple(op.shape)}, expected {shape}")
        return op

    def _single_step(self, obs: Tensor, hidden: Hidden | None) -> tuple[Tensor, Hidden]:
        """obs [B, D] → LSTM output [B, H] and the new hidden state.

        Runs the LSTM cell equations directly (the same math as `self.lstm` for one step): for a single
        step this is several times faster on CPU than nn.LSTM's sequence kernel.
        """
        x = self.feature(obs)
        batch = obs.shape[0]
        h0, c0 = self.initial_hidden(batch) if hidden is None else hidden
        expected = (self.num_layers, batch, self.hidden_dim)
        if h0.shape != expected or c0.shape != expected:
            # Checked here because the cell equations below would silently broadcast a batch of 1.
            raise ValueError(
                f"hidden state must be (h, c) of shape {list(expected)}, got {list(h0.shape)} and {list(c0.shape)}"
            )
        hs, cs = [], []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.lstm.all_weights):
            gates = F.linear(x, w_ih, b_ih) + F.linear(h0[layer], w_hh, b_hh)
            # PyTorch's gate order: input, forget, cell, output; the cell gate alone uses tanh.
            input_gate, forget_gate, _, output_gate = gates.sigmoid().chunk(4, dim=-1)
            cell_gate = gates[:, 2 * self.hidden_dim : 3 * self.hidden_dim].tanh()
            c = forget_gate * c0[layer] + input_gate * cell_gate
            x = output_gate * c.tanh()
            hs.append(x)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))

    def _flat_masks(self, masks: Mapping[str, Tensor]) -> Tensor:
        """Per-head masks → one [..., sum(head sizes)] bool tensor in HEAD_NAMES order."""
        missing = [name for name in HEAD_NAMES if name not in masks]
        if missing:
            raise ValueError(f"masks are missing head(s) {missing}")
        for name, n in self.head_sizes.items():
            if masks[name].shape[-1] != n:
                raise ValueError(f"mask for head {name!r} has width {masks[name].shape[-1]}, expected {n}")
        return torch.cat([masks[name] for name in HEAD_NAMES], dim=-1)

    def _padded_masks(self, masks: Mapping[str, Tensor]) -> Tensor:
        return self._flat_masks(masks)[..., self._mask_index] & self._pad_valid

    # ---- public API ----

    def forward(
        self,
        obs: Tensor,
        hidden: Hidden | None = None,
        masks: Mapping[str, Tensor] | None = None,
        op: Tensor | None = None,
    ) -> ForwardOutput:
        """obs [B, T, D] → per-head logits [B, T, n] (masked when `masks` [B, T, n] are given), value, hidden.

        An op-conditioned network needs `op [B, T]`, the op the heads after op are conditioned on.
        """
        self._check_sequence(obs)
        with _own_precision(obs):
            fused, hidden = self._trunk(obs, hidden, self._op_for_heads(op, tuple(obs.shape[:2])))
        logits = fused[..., self._flat_logit_index]
        if masks is not None:
            logits = masked_logits(logits, self._flat_masks(masks))
        per_head = logits.split(list(self.head_sizes.values()), dim=-1)
        return ForwardOutput(dict(zip(HEAD_NAMES, per_head, strict=True)), fused[..., self._value_index], hidden)

    def value(self, obs: Tensor, hidden: Hidden | None = None) -> Tensor:
        """obs [B, T, D] → value [B, T] (the value head does not depend on the op)."""
        self._check_sequence(obs)
        with _own_precision(obs):
            x, _ = self.lstm(self.feature(obs), hidden)
            return self._heads(x)[..., self._value_index]

    def get_action(
        self, obs: Tensor, hidden: Hidden | None, masks: ActionMasks, deterministic: bool = False
    ) -> ActionResult:
        """Act for one step: sample op first, then the other heads under the masks of that op.

        obs is [B, D] or [B, 1, D]. Runs under inference mode: the outputs are rollout data, not
        differentiable. Deterministic mode takes the arg-max of the masked logits.
        """
        with torch.inference_mode(), _own_precision(obs):
            if obs.dim() == 3 and obs.shape[1] == 1:
                obs = obs[:, 0]
            if obs.dim() != 2:
                raise ValueError(f"get_action takes one step, obs [B, D] or [B, 1, D]; got shape {tuple(obs.shape)}")
            self._check_width(obs)
            x, hidden = self._single_step(obs, hidden)
            fused = self._heads(x)
            # The op row is validated below together with every other head (one sync for all).
            op_logits = masked_logits(fused[:, self._logit_index[_OP, :_NUM_OPS]], masks.op)
            op = op_logits.argmax(-1) if deterministic else sample_categorical(op_logits)
            if self.op_conditioning:
                # The heads after op see the op just drawn; op's own row and the value are unchanged.
                fused = self._heads(x, op)
            logits = fused[:, self._logit_index]
            head_masks = masks.for_op(op)
            dist = MaskedCategorical(logits, self._padded_masks(head_masks), HEAD_NAMES)
            chosen = dist.mode() if deterministic else dist.sample()
            chosen[:, _OP] = op  # the op row was drawn again above; the op drawn first is the one the masks follow
            relevance = HeadRelevance(op)
            actions = relevance.fill_actions(chosen)
            log_probs = relevance.zero_irrelevant(dist.log_prob(actions))
        return ActionResult(
            actions=dict(zip(HEAD_NAMES, actions.unbind(-1), strict=True)),
            log_probs=dict(zip(HEAD_NAMES, log_probs.unbind(-1), strict=True)),
            value=fused[:, self._value_index],
            hidden=hidden,
            masks=dict(head_masks),
        )

    def evaluate_actions(
        self,
        obs: Tensor,
        actions: Mapping[str, Tensor],
        masks: Mapping[str, Tensor],
        hidden: Hidden | None = None,
    ) -> EvalResult:
        """Re-evaluate stored actions [B, T] under their stored masks [B, T, n], with gradients.

        Actions and masks may be get_action's own (inference) tensors, stacked over time: they are only
        read. `obs` and `hidden` must be normal tensors, since gradients flow through them.
        """
        inputs = {"obs": obs} if hidden is None else {"obs": obs, "hidden h": hidden[0], "hidden c": hidden[1]}
        inference = [name for name, tensor in inputs.items() if tensor.is_inference()]
        if inference:
            raise ValueError(
                f"evaluate_actions got inference-mode tensor(s) {inference} (e.g. get_action's hidden state), "
                "which cannot carry gradients: pass hidden=None or a normal tensor (clone it outside inference mode)"
            )
        self._check_sequence(obs)
        missing = [name for name in HEAD_NAMES if name not in actions]
        if missing:
            raise ValueError(f"actions are missing head(s) {missing}")
        stored = torch.stack([actions[name] for name in HEAD_NAMES], dim=-1)
        with _own_precision(obs):
            fused, hidden = self._trunk(obs, hidden, stored[..., _OP] if self.op_conditioning else None)
        dist = MaskedCategorical(fused[..., self._logit_index], self._padded_masks(masks), HEAD_NAMES)
        relevance = HeadRelevance(stored[..., _OP])
        log_probs = relevance.zero_irrelevant(dist.log_prob(relevance.fill_actions(stored)))
        entropy = relevance.zero_irrelevant(dist.entropy())
        return EvalResult(
            log_probs=dict(zip(HEAD_NAMES, log_probs.unbind(-1), strict=True)),
            entropy=dict(zip(HEAD_NAMES, entropy.unbind(-1), strict=True)),
            value=fused[..., self._value_index],
            hidden=hidden,
        )
