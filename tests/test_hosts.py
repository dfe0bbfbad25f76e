import math

import pytest
import torch
from torch import nn

from tamiyo.core.slots import SlotConfig, SlotIdError
from tamiyo.env.hosts import ConvHost, InjectionPoint, TransformerHost, build_host
from tamiyo.env.tasks import Task, cross_entropy, make_task


def _fake_task(name, topology, x, num_classes=10):
    y = torch.zeros(x.shape[:1] if topology == "cnn" else x.shape, dtype=torch.int64)
    return Task(name, topology, x, y, x, y, num_classes=num_classes)


MNIST1D_LIKE = _fake_task("mnist1d", "cnn", torch.randn(6, 1, 40))
DIGITS_LIKE = _fake_task("digits", "cnn", torch.randn(6, 1, 8, 8))
CIFAR_LIKE = _fake_task("cifar10", "cnn", torch.randn(6, 3, 32, 32))
TEXT_LIKE = _fake_task("pysource", "transformer", torch.randint(0, 97, (6, 32)), num_classes=97)


class Recorder(nn.Module):
    """Identity that records the shape it saw."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, h):
        self.shapes.append(tuple(h.shape))
        return h


@pytest.mark.parametrize(
    ("task", "layout", "points", "seen", "logits"),
    [
        (MNIST1D_LIKE, "conv1d", [4, 8, 16], [(6, 4, 20), (6, 8, 10), (6, 16, 5)], (6, 10)),
        (DIGITS_LIKE, "conv2d", [4, 8, 16], [(6, 4, 4, 4), (6, 8, 2, 2), (6, 16, 2, 2)], (6, 10)),
        (CIFAR_LIKE, "conv2d", [8, 16, 32], [(6, 8, 16, 16), (6, 16, 8, 8), (6, 32, 4, 4)], (6, 10)),
        (TEXT_LIKE, "sequence", [64, 64, 64], [(6, 32, 64)] * 3, (6, 32, 97)),
    ],
)
def test_injection_points_layout_and_shapes(task, layout, points, seen, logits):
    host = build_host(task)
    assert host.layout == layout
    ids = ("r0c0", "r0c1", "r0c2")
    assert host.injection_points == tuple(InjectionPoint(i, c) for i, c in zip(ids, points, strict=True))
    assert host.slot_config == SlotConfig(ids)
    recorders = {slot_id: Recorder() for slot_id in ids}
    assert host(task.train_x, recorders).shape == logits
    assert [recorders[i].shapes[0] for i in ids] == seen


@pytest.mark.parametrize("task", [MNIST1D_LIKE, DIGITS_LIKE, TEXT_LIKE], ids=["conv1d", "conv2d", "sequence"])
def test_identity_slots_equal_plain_host(task):
    torch.manual_seed(0)
    host = build_host(task)
    plain = host(task.train_x)
    identities = {point.slot_id: nn.Identity() for point in host.injection_points}
    assert torch.equal(host(task.train_x, identities), plain)
    assert torch.equal(host(task.train_x, {"r0c1": lambda h: h}), plain)


def test_slot_is_applied_at_its_point_only():
    torch.manual_seed(0)
    host = build_host(MNIST1D_LIKE)
    x = MNIST1D_LIKE.train_x
    # Zeroing the activation after the last block leaves only the classifier bias.
    zeroed = host(x, {"r0c2": torch.zeros_like})
    assert torch.allclose(zeroed, host.classifier.bias.expand(6, 10))
    assert not torch.allclose(host(x, {"r0c0": lambda h: 2 * h}), host(x))


def test_unknown_slot_id_is_rejected():
    host = build_host(MNIST1D_LIKE)
    with pytest.raises(SlotIdError, match=r"unknown slot ids \['r0c3'\]; host slots: \['r0c0', 'r0c1', 'r0c2'\]"):
        host(MNIST1D_LIKE.train_x, {"r0c3": nn.Identity()})


def test_transformer_host_is_causal():
    torch.manual_seed(0)
    host = TransformerHost(vocab_size=97, context_length=32)
    x = torch.randint(0, 97, (2, 32))
    changed = x.clone()
    changed[:, 20] = (changed[:, 20] + 1) % 97
    assert torch.allclose(host(x)[:, :20], host(changed)[:, :20], atol=1e-6)
    assert not torch.allclose(host(x)[:, 20:], host(changed)[:, 20:])
    with pytest.raises(ValueError, match="sequence length 40 exceeds the host's context length 32"):
        host(torch.zeros(1, 40, dtype=torch.int64))


def test_build_host_rejects_unknown_conv_task():
    task = _fake_task("svhn", "cnn", torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="no host defined for task 'svhn'"):
        build_host(task)


def test_conv_host_rejects_bad_config():
    with pytest.raises(ValueError, match="dims=3"):
        ConvHost(3, 1, 10, (4,), (True,))
    with pytest.raises(ValueError, match="equally long"):
        ConvHost(1, 1, 10, (4, 8), (True,))


def test_fresh_mnist1d_host_loss_is_near_uniform():
    task = make_task("mnist1d")
    for seed in range(3):
        torch.manual_seed(seed)
        host = build_host(task)
        with torch.no_grad():
            loss = cross_entropy(host(task.val_x), task.val_y).item()
        assert abs(loss - task.loss_scale) < 0.3, (seed, loss)


def test_fresh_transformer_host_loss_is_near_uniform():
    torch.manual_seed(0)
    host = TransformerHost(vocab_size=97, context_length=32)
    x = torch.randint(0, 97, (8, 32))
    with torch.no_grad():
        loss = cross_entropy(host(x), torch.randint(0, 97, (8, 32))).item()
    assert abs(loss - math.log(97)) < 0.05
