"""Tasks: datasets held in memory as tensors, plus what a host needs to know about their inputs.

Every loader works offline by default: MNIST-1D is generated locally (and cached), ordered pairs are generated in
memory, digits ship with scikit-learn, the language-modelling corpus is Python standard-library source, and CIFAR-10
is read from a local directory (downloading only when explicitly asked). No loader ever substitutes random data for a
dataset it cannot find.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import inspect
import math
import os
import pickle
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tamiyo.core.registry import Registry
from tamiyo.env.targets import build_target, is_target

TOPOLOGIES = ("cnn", "transformer")
DEFAULT_CACHE_DIR = Path("~/.cache/tamiyo")


@dataclass(frozen=True, eq=False)
class Task:
    """A dataset split into train/validation tensors.

    Classification: `x` float32 `[N, *input_shape]`, `y` int64 `[N]`.
    Language modelling: `x` int64 token ids `[N, T]`, `y` int64 next tokens `[N, T]`; `num_classes` is the
    vocabulary size.
    """

    name: str
    topology: str
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"task {self.name!r}: unknown topology {self.topology!r}; choose one of {TOPOLOGIES}")
        if self.num_classes < 2:
            raise ValueError(f"task {self.name!r}: num_classes must be ≥ 2, got {self.num_classes}")
        for split, x, y in (("train", self.train_x, self.train_y), ("val", self.val_x, self.val_y)):
            if len(x) == 0 or len(x) != len(y):
                raise ValueError(f"task {self.name!r}: {split} split has {len(x)} inputs and {len(y)} targets")
            if y.dtype != torch.int64:
                raise ValueError(f"task {self.name!r}: {split} targets must be int64, got {y.dtype}")
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= self.num_classes:
                raise ValueError(f"task {self.name!r}: {split} targets span [{low}, {high}], "
                                 f"outside [0, {self.num_classes - 1}]")
        if self.train_x.shape[1:] != self.val_x.shape[1:]:
            raise ValueError(f"task {self.name!r}: train inputs {tuple(self.train_x.shape[1:])} and "
                             f"val inputs {tuple(self.val_x.shape[1:])} differ in shape")

    def subset(self, train: int | None = None, val: int | None = None) -> Task:
        """The same task with only the first `train` / `val` examples (None keeps a split whole)."""
        for split, k in (("train_subset", train), ("val_subset", val)):
            if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
                raise ValueError(f"{split} must be a positive integer, got {k!r}")
        if train is None and val is None:
            return self
        return dataclasses.replace(
            self,
            train_x=self.train_x[:train], train_y=self.train_y[:train],
            val_x=self.val_x[:val], val_y=self.val_y[:val],
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: `(channels, length)`, `(channels, height, width)` or `(context_length,)`."""
        return tuple(self.train_x.shape[1:])

    @property
    def spatial_dims(self) -> int:
        """Spatial dimensions of one input: token ids `(T,)` and signals `(C, L)` have 1, images `(C, H, W)` 2."""
        has_channels = self.train_x.is_floating_point()
        return len(self.input_shape) - 1 if has_channels else len(self.input_shape)

    @property
    def loss_scale(self) -> float:
        """Per-sample cross-entropy of an uninformed (uniform) predictor: ln(num_classes)."""
        return math.log(self.num_classes)


# Task loaders by name: `make_task(name, ...)` and the `env.task` config key.
TASKS: Registry[Callable[..., Task]] = Registry("task")


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy per sample; for sequences the per-sample loss is the mean over positions.

    Works for `[B, K]` logits with `[B]` targets and for `[B, T, V]` logits with `[B, T]` targets. Since every
    sequence has the same length, the mean over all positions equals the mean over samples of per-sample means.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _cached_arrays(cache_dir: str | Path | None, file_name: str,
                   build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Load arrays from `<cache_dir>/<file_name>`, building and saving them on the first call."""
    path = Path(DEFAULT_CACHE_DIR if cache_dir is None else cache_dir).expanduser() / file_name
    if path.exists():
        with np.load(path) as cached:
            return {key: cached[key] for key in cached.files}
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so concurrent loaders never read a half-written file.
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)
    return arrays


# ---------------------------------------------------------------- MNIST-1D
def _generate_mnist1d(data_seed: int) -> dict[str, np.ndarray]:
    import mnist1d

    args = mnist1d.get_dataset_args()  # 5000 samples, 80 % train, length 40
    args.seed = data_seed
    # `make_dataset` seeds the global `random` and `np.random` generators; restore them so that loading
    # a task never changes the random streams of the caller.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = mnist1d.data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {"x": data["x"], "y": data["y"], "x_test": data["x_test"], "y_test": data["y_test"]}


@TASKS.register("mnist1d")
def load_mnist1d(data_seed: int = 42, cache_dir: str | Path | None = None) -> Task:
    """MNIST-1D (4000 train / 1000 test signals of length 40, 10 classes), generated locally and cached.

    The cache file is keyed by the generator seed and the `mnist1d` package version, so a package upgrade
    that changed the generator cannot serve stale data.
    """
    version = importlib.metadata.version("mnist1d")
    arrays = _cached_arrays(cache_dir, f"mnist1d-{version}-seed{data_seed}.npz", lambda: _generate_mnist1d(data_seed))

    def signals(key: str) -> Tensor:
        return torch.from_numpy(arrays[key].astype(np.float32)).unsqueeze(1)  # [N, 1, 40]

    def labels(key: str) -> Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    return Task("mnist1d", "cnn", signals("x"), labels("y"), signals("x_test"), labels("y_test"), num_classes=10)


# ---------------------------------------------------------------- ordered pairs
def _ordered_pair_arrays(gap: int, atoms: int, width: int, length: int, noise: float, examples: int,
                         data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(data_seed)
    shapes = rng.normal(size=(atoms, width))
    shapes /= np.abs(shapes).max(axis=1, keepdims=True)  # every atom peaks at ±1
    first = rng.integers(atoms, size=examples)
    second = (first + rng.integers(1, atoms, size=examples)) % atoms  # another atom than the first
    start = rng.integers(0, length - (2 * width + gap) + 1, size=examples)
    signals = noise * rng.normal(size=(examples, length))
    rows = np.arange(examples)[:, None]
    offsets = np.arange(width)[None, :]
    signals[rows, start[:, None] + offsets] += shapes[first]
    signals[rows, start[:, None] + width + gap + offsets] += shapes[second]
    labels = first * (atoms - 1) + second - (second > first)  # the ordered pair's index among atoms·(atoms−1)
    return signals.astype(np.float32), labels.astype(np.int64)


@TASKS.register("ordered_pairs")
def load_ordered_pairs(gap: int = 2, atoms: int = 4, width: int = 3, length: int = 40, noise: float = 0.3,
                       train_examples: int = 4000, val_examples: int = 1000, data_seed: int = 0) -> Task:
    """Signals of Gaussian noise holding two different atoms (fixed shapes `width` samples long) `gap` samples
    apart at a random place; the class is the ordered pair (first atom, second atom), one of atoms·(atoms − 1).

    One conv layer detects the atoms, but the pair's order is seen only by a layer whose receptive field spans both
    atoms: in a network that pools between layers, a layer late enough for the gap. So a one-convolution host lacks
    a layer whose place depends on the gap (the atoms' alphabet depends on `data_seed` alone, so tasks of other gaps
    share it). Generated in memory in milliseconds; the same `data_seed` gives the same data.
    """
    for key, value, low in (("gap", gap, 0), ("atoms", atoms, 2), ("width", width, 1),
                            ("train_examples", train_examples, 1), ("val_examples", val_examples, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"ordered_pairs {key} must be an integer ≥ {low}, got {value!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 2 * width + gap:
        raise ValueError(f"ordered_pairs length must be an integer ≥ 2·width + gap ({2 * width + gap}), got {length!r}")
    if not (isinstance(noise, int | float) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"ordered_pairs noise must be a number ≥ 0, got {noise!r}")
    signals, labels = _ordered_pair_arrays(gap, atoms, width, length, float(noise), train_examples + val_examples,
                                           data_seed)
    x = torch.from_numpy(signals).unsqueeze(1)  # [N, 1, length]
    y = torch.from_numpy(labels)
    return Task("ordered_pairs", "cnn", x[:train_examples], y[:train_examples], x[train_examples:], y[train_examples:],
                num_classes=atoms * (atoms - 1))


# ---------------------------------------------------------------- digits
def _split_digits(val_size: int, split_seed: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # [N, 1, 8, 8]; pixel values are 0..16
    labels = bunch.target.astype(np.int64)
    train_x, val_x, train_y, val_y = train_test_split(
        images, labels, test_size=val_size, stratify=labels, random_state=split_seed
    )
    # Standardise with the training split's pixel statistics, as MNIST-1D and CIFAR-10 are: the hosts have
    # no normalisation layers, and on raw [0, 1] pixels the weak digits host barely leaves chance level.
    mean, std = train_x.mean(), train_x.std()
    return {"train_x": (train_x - mean) / std, "train_y": train_y, "val_x": (val_x - mean) / std, "val_y": val_y}


@TASKS.register("digits")
def load_digits(val_size: int = 360, split_seed: int = 0, cache_dir: str | Path | None = None) -> Task:
    """scikit-learn's bundled 8×8 digits (1797 images), standardised, fixed stratified split (1437/360).

    The split is cached because importing scikit-learn's dataset module alone takes about a second.
    """
    version = importlib.metadata.version("scikit-learn")
    arrays = _cached_arrays(cache_dir, f"digits-{version}-val{val_size}-seed{split_seed}.npz",
                            lambda: _split_digits(val_size, split_seed))
    tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
    return Task("digits", "cnn", tensors["train_x"], tensors["train_y"], tensors["val_x"], tensors["val_y"],
                num_classes=10)


# ---------------------------------------------------------------- CIFAR-10
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _read_cifar10_batches(folder: Path, names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")  # the official files are Python-2 pickles
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{folder / name}: expected data of shape [N, 3072], got {list(data.shape)}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    pixels = torch.from_numpy(np.concatenate(images)).float().div_(255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return pixels.sub_(mean).div_(std), torch.from_numpy(np.concatenate(labels))


def _download_cifar10(data_dir: Path) -> None:
    try:
        import torchvision
    except ImportError:
        raise RuntimeError(
            "env.task_options.download=true needs torchvision, which is not installed; install it or place the "
            f"python-format CIFAR-10 batches in {data_dir / CIFAR10_FOLDER}"
        ) from None
    torchvision.datasets.CIFAR10(root=str(data_dir), train=True, download=True)


@TASKS.register("cifar10")
def load_cifar10(data_dir: str | Path = "data", download: bool = False) -> Task:
    """CIFAR-10 from the python pickle batches in `<data_dir>/cifar-10-batches-py/` (torchvision's layout),
    normalised per channel. 50,000 train / 10,000 test images in float32 (about 740 MB in memory)."""
    root = Path(data_dir).expanduser().resolve()
    folder = root / CIFAR10_FOLDER
    if download:
        _download_cifar10(root)
    missing = [name for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}; put the python-format batches there "
            f"or run with env.task_options.download=true"
        )
    train_x, train_y = _read_cifar10_batches(folder, CIFAR10_TRAIN_FILES)
    val_x, val_y = _read_cifar10_batches(folder, (CIFAR10_TEST_FILE,))
    return Task("cifar10", "cnn", train_x, train_y, val_x, val_y, num_classes=10)


# ---------------------------------------------------------------- character-level Python source
# Pure-Python standard-library modules present in every supported Python (3.11+). Their source ships with
# the interpreter, so the corpus needs no download; it is read from disk without importing the modules.
PYSOURCE_MODULES = (
    "textwrap", "string", "fnmatch", "shlex", "heapq", "bisect", "colorsys", "queue", "sched",
    "graphlib", "json.decoder", "json.encoder",
)
# Fixed vocabulary, independent of the corpus: 0 = any other character, 1 = newline, then printable ASCII
# (space .. '~'), so a printable character with code c has token id c - 30.
PYSOURCE_VOCAB = "\0\n" + "".join(chr(code) for code in range(32, 127))


def _module_source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise FileNotFoundError(f"no Python source file for standard-library module {module!r}")
    return Path(spec.origin).read_text(encoding="utf-8")


def encode_text(text: str) -> Tensor:
    """Token ids of `text` under `PYSOURCE_VOCAB`; characters outside it map to the unknown token 0."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    ids = np.where((codes >= 32) & (codes <= 126), codes - 30, 0)
    ids[codes == ord("\n")] = 1
    return torch.from_numpy(ids)


def _windows(tokens: Tensor, context_length: int) -> tuple[Tensor, Tensor]:
    """Non-overlapping windows of `context_length` inputs, each with its next-token targets."""
    count = (len(tokens) - 1) // context_length
    span = count * context_length
    return (tokens[:span].view(count, context_length),
            tokens[1 : span + 1].view(count, context_length))


@TASKS.register("pysource")
def load_pysource(context_length: int = 32, val_fraction: float = 0.1) -> Task:
    """Character-level language modelling on the source of `PYSOURCE_MODULES` (about 137k characters).

    The last `val_fraction` of every module's text is held out, so both splits cover every module.
    """
    if context_length < 2:
        raise ValueError(f"context_length must be ≥ 2, got {context_length}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train_parts, val_parts = [], []
    for module in PYSOURCE_MODULES:
        text = _module_source(module)
        cut = int(len(text) * (1.0 - val_fraction))
        train_parts.append(text[:cut])
        val_parts.append(text[cut:])
    train_x, train_y = _windows(encode_text("\n".join(train_parts)), context_length)
    val_x, val_y = _windows(encode_text("\n".join(val_parts)), context_length)
    return Task("pysource", "transformer", train_x, train_y, val_x, val_y, num_classes=len(PYSOURCE_VOCAB))




def make_task(
    name: str | Mapping[str, Any],
    train_subset: int | None = None,
    val_subset: int | None = None,
    **options: object,
) -> Task:
    """Load task `name` with loader-specific `options` (e.g. `data_dir` for cifar10), or build the task a
    `{_target_: …}` mapping names (a loader of one's own, which takes its arguments from the mapping).

    `train_subset` / `val_subset` keep only the first k examples of a split (tiny runs and tests).
    """
    if is_target(name):
        if options:
            raise TypeError(f"the task {{_target_: {name['_target_']}}} takes its arguments in its own mapping, "
                            f"not as task options {sorted(options)}")
        return build_target(name, "env.task", Task).subset(train_subset, val_subset)
    loader = TASKS.get(name)
    accepted = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"task {name!r} does not accept options {unknown}; it accepts "
            f"{sorted([*accepted, 'train_subset', 'val_subset'])}"
        )
    return loader(**options).subset(train_subset, val_subset)


def names_tasks(task: object) -> bool:
    """Whether `task` names tasks (a name, a `_target_` mapping, or a list of them) rather than holding loaded ones."""
    if isinstance(task, str) or is_target(task):
        return True
    return not isinstance(task, Task) and all(isinstance(name, str) or is_target(name) for name in task)


def make_tasks(names: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]],
               **options: object) -> Task | tuple[Task, ...]:
    """`make_task(names, ...)` for one name or target; for a list of them (an env whose episodes draw their
    task), the tuple of those tasks, each loaded with the same `options`."""
    if isinstance(names, str) or is_target(names):
        return make_task(names, **options)
    if not names:
        raise ValueError("the task list is empty; name at least one task")
    return tuple(make_task(name, **options) for name in names)
