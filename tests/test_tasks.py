import math
import pickle
import random
import sys
import time

import numpy as np
import pytest
import torch

from tamiyo.env.tasks import (
    CIFAR10_FOLDER,
    PYSOURCE_VOCAB,
    TASKS,
    Task,
    cross_entropy,
    encode_text,
    load_cifar10,
    load_mnist1d,
    load_ordered_pairs,
    make_task,
)


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_mnist1d_sizes_shapes_and_labels(mnist1d_cache):
    task = load_mnist1d(cache_dir=mnist1d_cache)
    assert (task.name, task.topology, task.num_classes) == ("mnist1d", "cnn", 10)
    assert task.train_x.shape == (4000, 1, 40) and task.val_x.shape == (1000, 1, 40)
    assert task.spatial_dims == 1
    assert task.train_x.dtype == torch.float32 and task.train_y.dtype == torch.int64
    assert task.input_shape == (1, 40)
    assert set(task.train_y.unique().tolist()) == set(range(10))
    assert task.loss_scale == pytest.approx(math.log(10))
    # The generator standardises the whole set, so the training split is close to zero mean, unit std.
    assert abs(task.train_x.mean().item()) < 0.1 and abs(task.train_x.std().item() - 1.0) < 0.1


def test_mnist1d_is_deterministic_cached_and_leaves_global_rng_alone(mnist1d_cache, tmp_path):
    first = load_mnist1d(cache_dir=mnist1d_cache)  # cached by the previous test or generated now
    assert len(list(mnist1d_cache.glob("mnist1d-*-seed42.npz"))) == 1
    started = time.perf_counter()
    cached = load_mnist1d(cache_dir=mnist1d_cache)
    assert time.perf_counter() - started < 0.5
    random.seed(7)
    np.random.seed(7)
    fresh = load_mnist1d(cache_dir=tmp_path)  # generated again from scratch
    assert random.random() == random.Random(7).random()
    assert np.random.rand() == np.random.RandomState(7).rand()
    for other in (cached, fresh):
        assert torch.equal(first.train_x, other.train_x) and torch.equal(first.val_y, other.val_y)


def _atoms_of(signal: np.ndarray, width: int) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """Where a noiseless signal's two atoms start apart, and their shapes."""
    (support,) = np.nonzero(signal)
    first, last = support[0], support[-1]
    second = last - width + 1
    return int(second - (first + width)), tuple(signal[first:first + width]), tuple(signal[second:last + 1])


@pytest.mark.parametrize("gap", [0, 2, 14])
def test_ordered_pairs_hold_two_atoms_a_gap_apart_labelled_by_their_ordered_pair(gap):
    task = load_ordered_pairs(gap=gap, noise=0.0, train_examples=600, val_examples=100)
    assert (task.name, task.topology, task.num_classes, task.input_shape) == ("ordered_pairs", "cnn", 12, (1, 40))
    assert (len(task.train_x), len(task.val_x)) == (600, 100)
    pairs: dict[int, tuple] = {}
    for signal, label in zip(task.train_x[:, 0].numpy(), task.train_y.tolist(), strict=True):
        apart, first, second = _atoms_of(signal, width=3)
        assert apart == gap and first != second
        assert pairs.setdefault(label, (first, second)) == (first, second)  # one ordered pair per class
    assert sorted(pairs) == list(range(12))
    by_pair = {pair: label for label, pair in pairs.items()}
    assert all(by_pair[(b, a)] != label for (a, b), label in by_pair.items())  # the order changes the class


def test_ordered_pairs_are_reproducible_and_share_their_atoms_across_gaps():
    near, again = load_ordered_pairs(gap=2), load_ordered_pairs(gap=2)
    assert torch.equal(near.train_x, again.train_x) and torch.equal(near.val_y, again.val_y)
    assert not torch.equal(near.train_x, load_ordered_pairs(gap=2, data_seed=1).train_x)
    atoms = [{_atoms_of(x, 3)[1] for x in load_ordered_pairs(gap=g, noise=0.0).train_x[:200, 0].numpy()}
             for g in (2, 14)]
    assert atoms[0] == atoms[1] and len(atoms[0]) == 4
    noisy = load_ordered_pairs(gap=2, noise=0.3)
    assert 0.25 < float((noisy.train_x - load_ordered_pairs(gap=2, noise=0.0).train_x).std()) < 0.35


@pytest.mark.parametrize(("options", "message"), [
    ({"gap": -1}, "ordered_pairs gap must be an integer ≥ 0, got -1"),
    ({"atoms": 1}, "ordered_pairs atoms must be an integer ≥ 2, got 1"),
    ({"gap": 40}, r"ordered_pairs length must be an integer ≥ 2·width \+ gap \(46\), got 40"),
    ({"noise": -0.1}, "ordered_pairs noise must be a number ≥ 0, got -0.1"),
])
def test_ordered_pairs_refuse_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        make_task("ordered_pairs", **options)


def test_digits_split_is_fixed_stratified_and_standardised(tmp_path):
    task = make_task("digits", cache_dir=tmp_path)
    assert task.train_x.shape == (1437, 1, 8, 8) and task.val_x.shape == (360, 1, 8, 8)
    assert task.spatial_dims == 2
    assert task.train_y.dtype == torch.int64 and int(task.train_y.min()) == 0 and int(task.train_y.max()) == 9
    # Stratified: every class holds 35–37 of the 360 validation images (its share of 1797 is ~36).
    counts = torch.bincount(task.val_y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert abs(task.train_x.mean().item()) < 1e-4 and task.train_x.std().item() == pytest.approx(1.0, abs=1e-3)
    again = make_task("digits", cache_dir=tmp_path)
    assert torch.equal(task.val_x, again.val_x)


def _write_fake_cifar10(root, per_batch=4):
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for index, name in enumerate(names):
        batch = {b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                 b"labels": [(index + k) % 10 for k in range(per_batch)]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    return folder


def test_cifar10_reads_local_pickles(tmp_path):
    folder = _write_fake_cifar10(tmp_path)
    task = make_task("cifar10", data_dir=tmp_path)
    assert task.train_x.shape == (20, 3, 32, 32) and task.val_x.shape == (4, 3, 32, 32)
    assert task.train_y.tolist()[:8] == [0, 1, 2, 3, 1, 2, 3, 4]
    with open(folder / "data_batch_1", "rb") as handle:
        raw = pickle.load(handle)[b"data"][0]
    # Channel-major rows, scaled to [0, 1] and normalised per channel: check one red and one blue pixel.
    assert task.train_x[0, 0, 0, 0].item() == pytest.approx((raw[0] / 255 - 0.4914) / 0.2470, abs=1e-5)
    assert task.train_x[0, 2, 31, 31].item() == pytest.approx((raw[3071] / 255 - 0.4465) / 0.2616, abs=1e-5)


def test_cifar10_missing_directory_names_path_and_switch(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_cifar10(data_dir=tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere" / CIFAR10_FOLDER) in message
    assert "env.task_options.download=true" in message and "\n" not in message


def test_cifar10_download_without_torchvision_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(RuntimeError, match="download=true needs torchvision"):
        load_cifar10(data_dir=tmp_path, download=True)


def test_pysource_windows_and_next_char_targets():
    task = make_task("pysource", context_length=16)
    assert task.topology == "transformer" and task.num_classes == len(PYSOURCE_VOCAB) == 97
    assert task.input_shape == (16,) and task.spatial_dims == 1  # token ids: no channel axis
    assert task.train_x.dtype == torch.int64 and task.train_y.shape == task.train_x.shape
    assert len(task.train_x) > 7_000 and len(task.val_x) > 700
    # Targets are the inputs shifted by one, also across window boundaries (windows are contiguous).
    assert torch.equal(task.train_y[:, :-1], task.train_x[:, 1:])
    assert torch.equal(task.train_y[:-1, -1], task.train_x[1:, 0])
    assert task.loss_scale == pytest.approx(math.log(97))


def test_encode_text_vocabulary():
    assert encode_text("a\n~ é").tolist() == [PYSOURCE_VOCAB.index("a"), 1, PYSOURCE_VOCAB.index("~"),
                                              PYSOURCE_VOCAB.index(" "), 0]


def test_cross_entropy_is_per_sample_mean_for_both_shapes():
    logits = torch.zeros(4, 10)
    assert cross_entropy(logits, torch.arange(4)).item() == pytest.approx(math.log(10))
    sequence_logits = torch.randn(3, 5, 7)
    targets = torch.randint(0, 7, (3, 5))
    per_sample = [torch.nn.functional.cross_entropy(sequence_logits[i], targets[i]) for i in range(3)]
    assert cross_entropy(sequence_logits, targets).item() == pytest.approx(torch.stack(per_sample).mean().item())


def test_make_task_rejects_unknown_names_and_options():
    with pytest.raises(ValueError,
                       match=r"unknown task 'imagenet'; available: cifar10, digits, mnist1d, ordered_pairs, pysource"):
        make_task("imagenet")
    with pytest.raises(TypeError, match=r"task 'digits' does not accept options \['data_dir'\]"):
        make_task("digits", data_dir="x")
    assert set(TASKS.names()) == {"mnist1d", "ordered_pairs", "digits", "cifar10", "pysource"}


def test_task_validates_labels_and_splits():
    x = torch.zeros(3, 1, 4)
    with pytest.raises(ValueError, match=r"train targets span \[0, 10\], outside \[0, 9\]"):
        Task("t", "cnn", x, torch.tensor([0, 1, 10]), x, torch.tensor([0, 1, 2]), num_classes=10)
    with pytest.raises(ValueError, match="val split has 3 inputs and 2 targets"):
        Task("t", "cnn", x, torch.tensor([0, 1, 2]), x, torch.tensor([0, 1]), num_classes=10)
    with pytest.raises(ValueError, match="unknown topology 'rnn'"):
        Task("t", "rnn", x, torch.tensor([0, 1, 2]), x, torch.tensor([0, 1, 2]), num_classes=10)
