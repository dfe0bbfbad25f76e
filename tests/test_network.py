"""Factored recurrent actor-critic: architecture, initialisation, shapes, masking, relevance, gradients."""

import copy
import functools

import pytest
import torch
from torch.distributions import Categorical

from tamiyo.core.actions import HEAD_NAMES, HEAD_RELEVANCE, IRRELEVANT_HEAD_VALUE, LifecycleOp, head_sizes
from tamiyo.core.slots import SlotConfig
from tamiyo.policy.distribution import MASKED_LOGIT, InvalidStateMachineError, masked_logits, set_validation
from tamiyo.policy.masks import ActionMasks
from tamiyo.policy.network import FactoredRecurrentActorCritic
from tamiyo.policy.relevance import HeadRelevance

OBS_DIM = 148
SLOTS = SlotConfig.default()
SIZES = head_sizes(SLOTS)


@pytest.fixture(autouse=True)
def _validation_on():
    set_validation(True)


@functools.cache
def _prototype(num_layers: int) -> FactoredRecurrentActorCritic:
    torch.manual_seed(0)
    return FactoredRecurrentActorCritic(OBS_DIM, SLOTS, num_layers=num_layers)


def make_net(num_layers: int = 1) -> FactoredRecurrentActorCritic:
    """A freshly initialised network (copied: orthogonal init is slow on a busy multi-threaded CPU)."""
    return copy.deepcopy(_prototype(num_layers))


def spread_logits(net: FactoredRecurrentActorCritic, seed: int) -> FactoredRecurrentActorCritic:
    """Randomise the policy heads' output layers (init gain is 0.01) so logits differ visibly between actions."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in net.heads.values():
            head[2].weight.copy_(torch.randn(head[2].weight.shape, generator=gen) * 0.3)
            head[2].bias.copy_(torch.randn(head[2].bias.shape, generator=gen))
    return net


def make_masks(n: int, num_slots: int = 3, **overrides: torch.Tensor) -> ActionMasks:
    """All-allowed masks for n envs, with some fields overridden."""
    fields = {
        "op": torch.ones(n, 6, dtype=torch.bool),
        "slot_by_op": torch.ones(n, 6, num_slots, dtype=torch.bool),
        **{name: torch.ones(n, SIZES[name], dtype=torch.bool) for name in HEAD_NAMES if name not in ("slot", "op")},
    }
    fields.update(overrides)
    return ActionMasks(**fields)


def random_masks(n: int, gen: torch.Generator) -> ActionMasks:
    """Random masks with at least one allowed entry per row; the WAIT slot row allows every slot."""

    def rand(*shape: int) -> torch.Tensor:
        mask = torch.rand(*shape, generator=gen) < 0.5
        first = torch.randint(shape[-1], shape[:-1], generator=gen)
        return mask.scatter(-1, first.unsqueeze(-1), True)

    slot_by_op = rand(n, 6, 3)
    slot_by_op[:, LifecycleOp.WAIT] = True
    return ActionMasks(
        op=rand(n, 6), slot_by_op=slot_by_op,
        **{name: rand(n, SIZES[name]) for name in HEAD_NAMES if name not in ("slot", "op")},
    )


def only_op(n: int, op: LifecycleOp) -> ActionMasks:
    mask = torch.zeros(n, 6, dtype=torch.bool)
    mask[:, op] = True
    return make_masks(n, op=mask)


# ---- architecture and initialisation ----


def test_parameter_count_at_the_defaults():
    assert sum(p.numel() for p in make_net().parameters()) == 229_482  # with the 6 × 128 op embedding
    unconditioned = FactoredRecurrentActorCritic(OBS_DIM, SLOTS, op_conditioning=False)
    assert sum(p.numel() for p in unconditioned.parameters()) == 228_714  # the reference's count + 8 inputs


def test_state_dict_names_every_head():
    keys = set(make_net().state_dict())
    for name in HEAD_NAMES:
        assert {f"heads.{name}.0.weight", f"heads.{name}.2.weight", f"heads.{name}.2.bias"} <= keys
    assert {"value_head.0.weight", "value_head.2.weight", "lstm.weight_hh_l0", "feature.0.weight"} <= keys


def _gram(weight: torch.Tensor) -> torch.Tensor:
    """W Wᵀ for wide/square matrices (orthonormal rows), Wᵀ W for tall ones (orthonormal columns)."""
    return weight @ weight.T if weight.shape[0] <= weight.shape[1] else weight.T @ weight


@pytest.mark.parametrize("num_layers", [1, 2])
def test_initialisation(num_layers):
    net = make_net(num_layers)
    last_layers = {id(head[2]) for head in net.heads.values()} | {id(net.value_head[2])}
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 + 2 * 9 - 1  # feature + (8 policy + 1 value) heads × 2
    for linear in linears:
        assert torch.count_nonzero(linear.bias) == 0
        if id(linear) not in last_layers:
            gram = _gram(linear.weight)
            torch.testing.assert_close(gram, 2.0 * torch.eye(gram.shape[0]), atol=1e-4, rtol=0)
    for name, head in net.heads.items():
        torch.testing.assert_close(head[2].weight @ head[2].weight.T, 1e-4 * torch.eye(SIZES[name]), atol=1e-8, rtol=0)
    torch.testing.assert_close(net.value_head[2].weight @ net.value_head[2].weight.T, torch.ones(1, 1))

    hidden = net.hidden_dim
    for layer in range(num_layers):
        for kind in ("ih", "hh"):
            weight = getattr(net.lstm, f"weight_{kind}_l{layer}")
            torch.testing.assert_close(_gram(weight), torch.eye(weight.shape[1]), atol=1e-4, rtol=0)
        bias_ih = getattr(net.lstm, f"bias_ih_l{layer}")
        bias_hh = getattr(net.lstm, f"bias_hh_l{layer}")
        assert torch.count_nonzero(bias_hh) == 0
        assert (bias_ih[hidden : 2 * hidden] == 1.0).all()  # effective forget bias 1.0 = bias_ih + bias_hh
        assert torch.count_nonzero(bias_ih[:hidden]) == torch.count_nonzero(bias_ih[2 * hidden :]) == 0
    for norm in (net.feature[1], net.lstm_norm):
        assert (norm.weight == 1).all() and (norm.bias == 0).all()


def test_fused_heads_compute_the_same_as_each_head_module():
    net = spread_logits(make_net(), seed=3)
    obs = torch.randn(2, 4, OBS_DIM)
    op = torch.randint(6, (2, 4), generator=torch.Generator().manual_seed(3))
    out = net(obs, op=op)
    trunk, _ = net.lstm(net.feature(obs))
    trunk = net.lstm_norm(trunk)
    for name in HEAD_NAMES:  # the heads after op take the state plus the op's embedding
        head_input = trunk if name == "op" else trunk + net.op_embedding(op)
        torch.testing.assert_close(out.logits[name], net.heads[name](head_input))
    torch.testing.assert_close(out.value, net.value_head(trunk).squeeze(-1))


def _ops(*shape: int, op: LifecycleOp = LifecycleOp.WAIT) -> torch.Tensor:
    return torch.full(shape, int(op))


def test_heads_after_op_give_per_op_distributions_for_the_same_state():
    net = spread_logits(make_net(), seed=12)
    obs = torch.randn(3, 4, OBS_DIM)
    germinate = net(obs, op=_ops(3, 4, op=LifecycleOp.GERMINATE))
    set_alpha = net(obs, op=_ops(3, 4, op=LifecycleOp.SET_ALPHA_TARGET))
    prune = net(obs, op=_ops(3, 4, op=LifecycleOp.PRUNE))
    # style and alpha_target serve GERMINATE and SET_ALPHA_TARGET; alpha_speed/curve SET_ALPHA_TARGET and PRUNE.
    for name, (a, b) in {"style": (germinate, set_alpha), "alpha_target": (germinate, set_alpha),
                         "alpha_speed": (set_alpha, prune), "alpha_curve": (set_alpha, prune)}.items():
        gap = (a.logits[name].log_softmax(-1) - b.logits[name].log_softmax(-1)).abs().amax(-1)
        assert (gap > 1e-2).all(), name  # a different distribution in every env and step
    assert torch.equal(germinate.logits["op"], set_alpha.logits["op"])  # op itself sees the state only
    assert torch.equal(germinate.value, set_alpha.value)

    # The same state through get_action: the op drawn first selects the other heads' distribution.
    state = torch.randn(1, OBS_DIM).expand(4, OBS_DIM)
    draws = {op: net.get_action(state, None, only_op(4, op), deterministic=True) for op in LifecycleOp}
    germinate, set_alpha = draws[LifecycleOp.GERMINATE], draws[LifecycleOp.SET_ALPHA_TARGET]
    assert germinate.log_probs["style"][0] != set_alpha.log_probs["style"][0]

    control = FactoredRecurrentActorCritic(OBS_DIM, SLOTS, op_conditioning=False)
    spread_logits(control, seed=12)
    first, second = control(obs, op=_ops(3, 4, op=1)), control(obs, op=_ops(3, 4, op=2))
    assert torch.equal(first.logits["style"], second.logits["style"])


def test_conditioned_forward_needs_the_op():
    with pytest.raises(ValueError, match="heads after op are conditioned on the op: pass op"):
        make_net()(torch.randn(2, 3, OBS_DIM))
    with pytest.raises(ValueError, match=r"op has shape \(2,\), expected \(2, 3\)"):
        make_net()(torch.randn(2, 3, OBS_DIM), op=torch.zeros(2, dtype=torch.long))


# ---- shapes and hidden state ----


@pytest.mark.parametrize("num_layers", [1, 2])
def test_forward_shapes_for_a_sequence(num_layers):
    net = make_net(num_layers)
    out = net(torch.randn(3, 5, OBS_DIM), op=_ops(3, 5))
    assert {name: tuple(t.shape) for name, t in out.logits.items()} == {n: (3, 5, s) for n, s in SIZES.items()}
    assert out.value.shape == (3, 5)
    assert [tuple(t.shape) for t in out.hidden] == [(num_layers, 3, 128)] * 2
    assert [tuple(t.shape) for t in net.initial_hidden(7)] == [(num_layers, 7, 128)] * 2


def test_slot_head_follows_the_slot_config():
    net = FactoredRecurrentActorCritic(23 + 39 * 4, SlotConfig.for_grid(2, 2), feature_dim=8, hidden_dim=8)
    assert net(torch.randn(1, 2, 23 + 39 * 4), op=_ops(1, 2)).logits["slot"].shape == (1, 2, 4)


def test_forward_masks_set_disallowed_logits_to_the_masked_value():
    net = make_net()
    obs = torch.randn(2, 3, OBS_DIM)
    gen = torch.Generator().manual_seed(0)
    masks = {name: torch.rand(2, 3, n, generator=gen) < 0.5 for name, n in SIZES.items()}
    plain, masked = net(obs, op=_ops(2, 3)), net(obs, masks=masks, op=_ops(2, 3))
    for name in HEAD_NAMES:
        assert (masked.logits[name][~masks[name]] == MASKED_LOGIT).all()
        assert torch.equal(masked.logits[name][masks[name]], plain.logits[name][masks[name]])


@pytest.mark.parametrize("obs_shape", [(4, OBS_DIM), (4, 1, OBS_DIM)])
def test_get_action_shapes(obs_shape):
    net = make_net()
    result = net.get_action(torch.randn(*obs_shape), None, make_masks(4))
    for name in HEAD_NAMES:
        assert result.actions[name].shape == (4,) and result.actions[name].dtype == torch.long
        assert result.log_probs[name].shape == (4,)
        assert result.masks[name].shape == (4, SIZES[name]) and result.masks[name].dtype == torch.bool
    assert result.value.shape == (4,)
    assert [tuple(t.shape) for t in result.hidden] == [(1, 4, 128)] * 2


def test_get_action_refuses_more_than_one_step():
    with pytest.raises(ValueError, match=r"one step.*\(4, 2, 148\)"):
        make_net().get_action(torch.randn(4, 2, OBS_DIM), None, make_masks(4))


@pytest.mark.parametrize("num_layers", [1, 2])
def test_stepping_get_action_matches_forward_over_the_sequence(num_layers):
    """get_action's single-step path carries the hidden state exactly as the LSTM does over a sequence."""
    net = spread_logits(make_net(num_layers), seed=1)
    obs = torch.randn(3, 6, OBS_DIM)
    masks = make_masks(3)
    hidden, steps = None, []
    for t in range(6):
        step = net.get_action(obs[:, t], hidden, masks, deterministic=True)
        if hidden is not None:
            assert not torch.equal(step.hidden[0], hidden[0])
        hidden = step.hidden
        steps.append(step)
    sequence = net(obs, op=torch.stack([step.actions["op"] for step in steps], dim=1))
    for t, step in enumerate(steps):
        torch.testing.assert_close(step.value, sequence.value[:, t], atol=1e-5, rtol=1e-5)
        assert step.actions["op"].tolist() == sequence.logits["op"][:, t].argmax(-1).tolist()
        for h, name in enumerate(HEAD_NAMES):  # the heads after op, conditioned on the op drawn at the step
            relevant = HeadRelevance(step.actions["op"]).relevant[:, h]
            expected = sequence.logits[name][:, t].argmax(-1)
            assert torch.equal(step.actions[name][relevant], expected[relevant]), name
    torch.testing.assert_close(hidden[0], sequence.hidden[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden[1], sequence.hidden[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_evaluate_actions_shapes_and_entropy_range(num_layers):
    net = make_net(num_layers)
    masks = {name: torch.ones(2, 5, n, dtype=torch.bool) for name, n in SIZES.items()}
    actions = {name: torch.zeros(2, 5, dtype=torch.long) for name in HEAD_NAMES}
    actions["op"] = torch.full((2, 5), int(LifecycleOp.GERMINATE))
    actions["blueprint"] = torch.full((2, 5), 1)
    result = net.evaluate_actions(torch.randn(2, 5, OBS_DIM), actions, masks)
    for name in HEAD_NAMES:
        assert result.log_probs[name].shape == result.entropy[name].shape == (2, 5)
    assert result.value.shape == (2, 5)
    assert [tuple(t.shape) for t in result.hidden] == [(num_layers, 2, 128)] * 2
    # Near-zero initial logits: every relevant head is almost uniform.
    for name in HEAD_RELEVANCE[LifecycleOp.GERMINATE]:
        assert ((result.entropy[name] > 0.99) & (result.entropy[name] <= 1.0 + 1e-6)).all(), name


def test_single_valid_action_has_zero_entropy():
    net = make_net()
    masks = {name: torch.ones(1, 2, n, dtype=torch.bool) for name, n in SIZES.items()}
    masks["slot"] = torch.tensor([True, False, False]).expand(1, 2, 3)
    actions = {name: torch.ones(1, 2, dtype=torch.long) for name in HEAD_NAMES}
    actions["slot"] = torch.zeros(1, 2, dtype=torch.long)
    result = net.evaluate_actions(torch.randn(1, 2, OBS_DIM), actions, masks)  # op 1 = GERMINATE: slot relevant
    assert result.entropy["slot"].tolist() == [[0.0, 0.0]]
    assert result.log_probs["slot"].abs().max() < 1e-6


# ---- gradients ----


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradient_flows_through_the_hidden_state_into_earlier_steps(num_layers):
    net = make_net(num_layers)
    obs = torch.randn(2, 6, OBS_DIM, requires_grad=True)
    h0 = tuple(t.requires_grad_() for t in net.initial_hidden(2))
    masks = {name: torch.ones(2, 6, n, dtype=torch.bool) for name, n in SIZES.items()}
    actions = {name: torch.ones(2, 6, dtype=torch.long) for name in HEAD_NAMES}
    result = net.evaluate_actions(obs, actions, masks, hidden=h0)
    loss = result.value[:, -1].sum() + sum(lp[:, -1].sum() for lp in result.log_probs.values())
    loss.backward()
    assert obs.grad[:, :-1].abs().sum(-1).min() > 0  # every earlier step of every env gets gradient
    assert h0[0].grad.abs().sum() > 0 and h0[1].grad.abs().sum() > 0
    for layer in range(num_layers):
        assert getattr(net.lstm, f"weight_hh_l{layer}").grad.abs().sum() > 0
    for name in HEAD_NAMES:  # every op is GERMINATE: only its relevant heads get gradient
        got_gradient = net.heads[name][0].weight.grad.abs().sum() > 0
        assert got_gradient == (name in HEAD_RELEVANCE[LifecycleOp.GERMINATE]), name


def test_evaluate_actions_refuses_inference_tensors():
    net = make_net()
    masks = {name: torch.ones(2, 3, n, dtype=torch.bool) for name, n in SIZES.items()}
    actions = {name: torch.zeros(2, 3, dtype=torch.long) for name in HEAD_NAMES}
    rollout = net.get_action(torch.randn(2, OBS_DIM), None, make_masks(2))
    with pytest.raises(ValueError, match=r"inference-mode tensor\(s\) \['hidden h', 'hidden c'\].*hidden=None"):
        net.evaluate_actions(torch.randn(2, 3, OBS_DIM), actions, masks, hidden=rollout.hidden)
    with torch.inference_mode():
        obs = torch.randn(2, 3, OBS_DIM)
    with pytest.raises(ValueError, match=r"\['obs'\]"):
        net.evaluate_actions(obs, actions, masks)


# ---- errors ----


def test_observation_width_mismatch_names_both_widths():
    net = make_net()
    masks = {name: torch.ones(1, 2, n, dtype=torch.bool) for name, n in SIZES.items()}
    actions = {name: torch.zeros(1, 2, dtype=torch.long) for name in HEAD_NAMES}
    message = "observation width 147 does not match the network's obs_dim 148"
    with pytest.raises(ValueError, match=message):
        net(torch.randn(1, 2, 147), op=_ops(1, 2))
    with pytest.raises(ValueError, match=message):
        net.get_action(torch.randn(1, 147), None, make_masks(1))
    with pytest.raises(ValueError, match=message):
        net.evaluate_actions(torch.randn(1, 2, 147), actions, masks)


def test_get_action_refuses_a_hidden_state_of_the_wrong_shape():
    net = make_net()
    with pytest.raises(ValueError, match=r"hidden state must be \(h, c\) of shape \[1, 4, 128\], got \[1, 1, 128\]"):
        net.get_action(torch.randn(4, OBS_DIM), net.initial_hidden(1), make_masks(4))


def test_all_false_mask_in_get_action_names_the_head():
    net = make_net()
    germinate_only = torch.zeros(3, 6, dtype=torch.bool)
    germinate_only[:, LifecycleOp.GERMINATE] = True
    slot_by_op = torch.ones(3, 6, 3, dtype=torch.bool)
    slot_by_op[1, LifecycleOp.GERMINATE] = False
    with pytest.raises(InvalidStateMachineError, match=r"\['slot'\]"):
        net.get_action(torch.randn(3, OBS_DIM), None, make_masks(3, op=germinate_only, slot_by_op=slot_by_op))
    no_op = torch.ones(3, 6, dtype=torch.bool)
    no_op[2] = False
    with pytest.raises(InvalidStateMachineError, match="'op'"):
        net.get_action(torch.randn(3, OBS_DIM), None, make_masks(3, op=no_op))


def test_nan_logits_raise_value_error_naming_the_head():
    net = make_net()
    with torch.no_grad():
        net.heads["tempo"][2].bias[1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite logits in head\(s\) \['tempo'\]"):
        net.get_action(torch.randn(2, OBS_DIM), None, make_masks(2))


# ---- sampling, determinism, relevance ----


def test_deterministic_actions_are_the_argmax_of_the_masked_logits():
    net = spread_logits(make_net(), seed=2)
    gen = torch.Generator().manual_seed(5)
    obs, masks = torch.randn(32, OBS_DIM), random_masks(32, gen)
    result = net.get_action(obs, None, masks, deterministic=True)
    with torch.no_grad():
        logits = net(obs.unsqueeze(1), op=result.actions["op"].unsqueeze(1)).logits
    op = masked_logits(logits["op"][:, 0], masks.op).argmax(-1)
    assert torch.equal(result.actions["op"], op)
    for name, used in masks.for_op(op).items():
        assert torch.equal(result.masks[name], used)
    relevant = HeadRelevance(op).relevant
    for h, name in enumerate(HEAD_NAMES):
        expected = masked_logits(logits[name][:, 0], result.masks[name]).argmax(-1)
        assert torch.equal(result.actions[name][relevant[:, h]], expected[relevant[:, h]]), name
    assert torch.equal(result.actions["op"], net.get_action(obs, None, masks, deterministic=True).actions["op"])


def test_sampled_actions_respect_the_masks_of_the_sampled_op():
    net = spread_logits(make_net(), seed=4)
    gen = torch.Generator().manual_seed(6)
    masks = random_masks(256, gen)
    result = net.get_action(torch.randn(256, OBS_DIM), None, masks)
    op = result.actions["op"]
    assert masks.op.gather(1, op.unsqueeze(1)).all()
    relevant = HeadRelevance(op).relevant
    for h, name in enumerate(HEAD_NAMES):
        allowed = result.masks[name].gather(1, result.actions[name].unsqueeze(1)).squeeze(1)
        assert allowed[relevant[:, h]].all(), name
    assert len(set(op.tolist())) > 1  # genuinely sampled


@pytest.mark.parametrize("op", list(LifecycleOp))
def test_irrelevant_heads_take_their_default_with_zero_log_prob_and_entropy_in_both_paths(op):
    net = spread_logits(make_net(), seed=7)
    obs = torch.randn(4, OBS_DIM)
    result = net.get_action(obs, None, only_op(4, op))
    assert (result.actions["op"] == op).all()
    stored_masks = {name: m.unsqueeze(1) for name, m in result.masks.items()}
    stored_actions = {name: a.unsqueeze(1) for name, a in result.actions.items()}
    evaluated = net.evaluate_actions(obs.unsqueeze(1), stored_actions, stored_masks)
    for name in HEAD_NAMES:
        if name in HEAD_RELEVANCE[op]:
            if name != "op":  # op is forced (one valid choice); the others have several allowed choices
                assert (result.log_probs[name] < 0).all(), name
                assert (evaluated.entropy[name] > 0).all(), name
        else:
            assert (result.actions[name] == IRRELEVANT_HEAD_VALUE[name]).all(), name
            assert (result.log_probs[name] == 0).all() and (evaluated.log_probs[name] == 0).all(), name
            assert (evaluated.entropy[name] == 0).all(), name


def test_evaluated_log_probs_equal_torch_categorical_for_relevant_heads():
    net = spread_logits(make_net(), seed=8)
    gen = torch.Generator().manual_seed(9)
    obs = torch.randn(4, 5, OBS_DIM)
    flat = random_masks(20, gen)
    op = torch.randint(6, (20,), generator=gen)
    op = torch.where(flat.op.gather(1, op.unsqueeze(1)).squeeze(1), op, LifecycleOp.WAIT)
    per_head = flat.for_op(op)
    actions = {name: torch.multinomial(m.float(), 1, generator=gen).squeeze(1) for name, m in per_head.items()}
    actions["op"] = op
    masks = {name: m.view(4, 5, -1) for name, m in per_head.items()}
    actions = {name: a.view(4, 5) for name, a in actions.items()}
    evaluated = net.evaluate_actions(obs, actions, masks)
    logits = net(obs, masks=masks, op=actions["op"]).logits
    relevant = HeadRelevance(actions["op"]).relevant
    for h, name in enumerate(HEAD_NAMES):
        expected = Categorical(logits=logits[name]).log_prob(actions[name])
        torch.testing.assert_close(evaluated.log_probs[name][relevant[..., h]], expected[relevant[..., h]])
        assert (evaluated.log_probs[name][~relevant[..., h]] == 0).all()


@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16-autocast"])
def test_evaluate_actions_reproduces_the_rollout_log_probs(autocast):
    """On-policy invariant: re-evaluating stored actions and masks gives get_action's log-probs and values,
    also under bfloat16 autocast (where the single-step and sequence paths once differed by 0.03)."""
    net = spread_logits(make_net(num_layers=2), seed=10)
    with torch.no_grad():  # sharp heads (logits of tens) make any rounding difference visible
        for head in net.heads.values():
            head[2].weight.mul_(3.0)
    gen = torch.Generator().manual_seed(11)
    obs = torch.randn(8, 12, OBS_DIM)
    context = torch.autocast("cpu", dtype=autocast, enabled=autocast is not None)
    hidden, steps = None, []
    with context:
        for t in range(12):
            result = net.get_action(obs[:, t], hidden, random_masks(8, gen))
            hidden = result.hidden
            steps.append(result)

    def stack(field: str) -> dict[str, torch.Tensor]:
        return {name: torch.stack([getattr(s, field)[name] for s in steps], dim=1) for name in HEAD_NAMES}

    with context:
        evaluated = net.evaluate_actions(obs, stack("actions"), stack("masks"))
    rollout_log_probs = stack("log_probs")
    for name in HEAD_NAMES:
        torch.testing.assert_close(evaluated.log_probs[name], rollout_log_probs[name], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(evaluated.value, torch.stack([s.value for s in steps], dim=1), atol=2e-5, rtol=1e-5)
    assert (sum(evaluated.log_probs.values()) > MASKED_LOGIT / 2).all()  # no disallowed action was taken


def test_op_init_logits_set_the_initial_op_preferences():
    torch.manual_seed(0)
    net = FactoredRecurrentActorCritic(OBS_DIM, SLOTS, op_init_logits={"prune": -2.0, "set_alpha_target": -2.0})
    actions = net.get_action(torch.randn(4000, OBS_DIM), None, make_masks(4000)).actions["op"]
    share = torch.bincount(actions, minlength=6).float() / len(actions)
    # Four ops at logit ~0 and two at −2: p = 1 / (4 + 2e⁻²) ≈ 0.234 and e⁻² / (4 + 2e⁻²) ≈ 0.032.
    assert share[LifecycleOp.PRUNE].item() == pytest.approx(0.032, abs=0.012)
    assert share[LifecycleOp.WAIT].item() == pytest.approx(0.234, abs=0.03)
    with pytest.raises(ValueError, match=r"op_init_logits has unknown ops \['graft'\]"):
        FactoredRecurrentActorCritic(OBS_DIM, SLOTS, op_init_logits={"graft": 1.0})


def test_reset_heads_returns_chosen_heads_to_near_uniform_choices_and_keeps_the_rest():
    torch.manual_seed(0)
    net = spread_logits(FactoredRecurrentActorCritic(OBS_DIM, SLOTS, op_init_logits={"prune": -2.0}), seed=1)
    before = {name: head[2].weight.clone() for name, head in net.heads.items()}
    net.reset_heads(["blueprint", "op"])
    obs = torch.randn(64, OBS_DIM)
    with torch.no_grad():
        blueprint = net(obs.unsqueeze(1), op=torch.zeros(64, 1, dtype=torch.long)).logits["blueprint"].squeeze(1)
    # Output weights of gain 0.01 on a LayerNorm'd hidden state: logits within a few hundredths of each other.
    assert float((blueprint - blueprint.mean(-1, keepdim=True)).abs().max()) < 0.1
    assert net.heads["op"][2].bias[LifecycleOp.PRUNE].item() == -2.0  # the initial op preferences again
    assert torch.equal(net.heads["slot"][2].weight, before["slot"])
    assert not torch.equal(net.heads["blueprint"][2].weight, before["blueprint"])
    with pytest.raises(ValueError, match=r"unknown policy heads \['graft'\]; heads: \['slot', 'blueprint', "):
        net.reset_heads(["graft"])
