"""PNG pictures: return and accuracy curves, per-head entropy curves, seed-lifecycle timelines, and
the accuracy-vs-added-parameters picture and learning curve (with baseline lines) of a comparison.

Curves are drawn from a metric *history*: `{"update": [...], "<metric>": [...]}`, one value per PPO
update (NaN where a metric was not logged), as `tamiyo.evaluation.metric_history` builds it.
Matplotlib runs headless (Agg backend).
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen before pyplot loads)
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tamiyo.core.actions import HEAD_NAMES  # noqa: E402
from tamiyo.core.atomic_io import atomic_write_bytes  # noqa: E402
from tamiyo.evaluation.lifecycle import LifecycleTrace  # noqa: E402

History = Mapping[str, Sequence[float]]

CURVES_PNG = "returns_accuracy.png"
ENTROPY_PNG = "head_entropy.png"
LIFECYCLE_PNG = "lifecycle.png"

STAGE_COLOURS: dict[str, str] = {
    "UNKNOWN": "#000000",
    "DORMANT": "#d9d9d9",
    "GERMINATED": "#e6ab02",
    "TRAINING": "#d95f02",
    "BLENDING": "#1f78b4",
    "HOLDING": "#7570b3",
    "FOSSILIZED": "#1b9e77",
    "PRUNED": "#e41a1c",
    "EMBARGOED": "#8c0000",
    "RESETTING": "#a6761d",
}


# Controllers look the same in every figure: a kind of controller has its colour and marker, and a static-final
# control (its final architecture trained from scratch) those of its controller, hollow.
_KIND_STYLES = (  # (label prefix, colour, marker); the first prefix a label starts with decides
    ("learned", "tab:blue", "*"),
    ("static", "tab:gray", "o"),
    ("schedule: none", "tab:gray", "o"),  # the grid's never growing is the static host
    ("random", "tab:orange", "v"),
    ("heuristic", "tab:green", "s"),
)
# Any other controller (schedules, rules of one's own) takes a colour and a marker from its label's checksum.
_OTHER_COLOURS = ("tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_OTHER_MARKERS = ("D", "P", "X", "^", "h", "<", ">")
_STATIC_FINAL_PREFIXES = ("static-final, equal compute: ", "static-final: ")


def controller_style(label: str) -> tuple[str, str, bool]:
    """(colour, marker, filled) of a controller, the same in every figure that draws it."""
    base = label
    for prefix in _STATIC_FINAL_PREFIXES:
        base = base.removeprefix(prefix)
    for prefix, colour, marker in _KIND_STYLES:
        if base.startswith(prefix):
            return colour, marker, base == label
    checksum = zlib.crc32(base.encode())
    return _OTHER_COLOURS[checksum % len(_OTHER_COLOURS)], _OTHER_MARKERS[checksum % len(_OTHER_MARKERS)], base == label


def _scatter_controllers(ax: plt.Axes, points: Sequence[tuple[str, float, float]]) -> None:
    """One marker per `(label, x, y)` in its controller's style; earlier ones larger, so points that coincide
    (e.g. static and a heuristic that never grows) stay visible around each other."""
    for index, (label, x, y) in enumerate(points):
        colour, marker, filled = controller_style(label)
        ax.scatter([x], [y], s=70 + 30 * (len(points) - index), marker=marker, label=label, zorder=3 + index,
                   facecolors=colour if filled else "none", edgecolors=colour if not filled else "black",
                   linewidths=1.5 if not filled else 0.6)


def _updates(history: History) -> list[float]:
    if "update" not in history or not history["update"]:
        raise ValueError("the metric history has no updates to plot")
    return list(history["update"])


def _finish(fig: plt.Figure, ax: plt.Axes, xlabel: str, ylabel: str, title: str, path: Path) -> Path:
    """Label one-panel figures the same way (legend beside the axes, off the data; light grid) and save them."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    for handle in legend.legend_handles:
        if isinstance(handle, PathCollection):
            handle.set_sizes([40])  # one marker size in the legend, whatever the size drawn
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # updates and epochs are whole numbers
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")  # legends included
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: History, path: Path) -> Path:
    """Episode return (± std over envs) and final validation accuracy against the PPO update."""
    updates = _updates(history)
    for key in ("episode/return", "episode/final_accuracy"):
        if key not in history:
            raise ValueError(f"the metric history has no {key!r}")
    fig, (ax_return, ax_acc) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    returns = list(history["episode/return"])
    ax_return.plot(updates, returns, marker=".", color="tab:blue", label="mean over envs")
    if "episode/return_std" in history:
        spread = list(history["episode/return_std"])
        ax_return.fill_between(updates, [r - s for r, s in zip(returns, spread, strict=True)],
                               [r + s for r, s in zip(returns, spread, strict=True)],
                               color="tab:blue", alpha=0.2, label="± std over envs")
    ax_return.set_ylabel("episode return")
    ax_return.legend(loc="best")
    ax_acc.plot(updates, list(history["episode/final_accuracy"]), marker=".", color="tab:green")
    ax_acc.set_ylabel("final validation accuracy (%)")
    ax_acc.set_xlabel("PPO update")
    for ax in (ax_return, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle("Return and accuracy per update")
    fig.tight_layout()
    return _save(fig, path)


def entropy_keys(history: History) -> list[str]:
    """The `entropy/<head>` metrics present in the history, in the canonical head order."""
    return [f"entropy/{head}" for head in HEAD_NAMES if f"entropy/{head}" in history]


def plot_head_entropies(history: History, path: Path) -> Path:
    """Normalised entropy of each of the eight action heads against the PPO update (one panel per head)."""
    updates = _updates(history)
    keys = entropy_keys(history)
    if not keys:
        raise ValueError("the metric history has no entropy/<head> metrics (a non-trainable policy logs none)")
    fig, axes = plt.subplots(2, 4, figsize=(12, 5), sharex=True, sharey=True)
    for ax, head in zip(axes.flat, HEAD_NAMES, strict=True):
        values = list(history.get(f"entropy/{head}", []))
        if any(not math.isnan(v) for v in values):
            ax.plot(updates, values, marker=".", color="tab:purple")
        else:
            why = "not logged" if not values else "never relevant:\nno sampled op used this head"
            ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_title(head)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("PPO update")
    for ax in axes[:, 0]:
        ax.set_ylabel("normalised entropy")
    fig.suptitle("Per-head entropy (averaged over the steps where the head was relevant)")
    fig.tight_layout()
    return _save(fig, path)


def cell_colour(stage: str) -> tuple[float, float, float]:
    """The RGB of one timeline cell: exactly the stage's legend colour."""
    if stage not in STAGE_COLOURS:
        raise ValueError(f"unknown seed stage {stage!r} in the lifecycle trace")
    return to_rgb(STAGE_COLOURS[stage])


def plot_lifecycle(trace: LifecycleTrace, path: Path) -> Path:
    """One timeline per episode: slots × epochs coloured by stage, with each slot's alpha drawn as a line
    across its row (bottom of the row = 0, top = 1), so colours always match the legend."""
    if not trace.episodes:
        raise ValueError("the lifecycle trace holds no episodes")
    count = len(trace.episodes)
    fig, axes = plt.subplots(count, 1, figsize=(9, 0.6 + (0.45 * len(trace.slot_ids) + 0.7) * count), squeeze=False)
    seen: set[str] = set()
    for ax, episode in zip(axes[:, 0], trace.episodes, strict=True):
        epochs = len(episode.stages)
        image = [[cell_colour(episode.stages[t][s]) for t in range(epochs)] for s in range(len(trace.slot_ids))]
        seen.update(stage for row in episode.stages for stage in row)
        extent = (0.5, epochs + 0.5, len(trace.slot_ids) - 0.5, -0.5)  # cell centres at epoch t, slot s
        ax.imshow(image, aspect="auto", interpolation="nearest", extent=extent)
        edges = [t + 0.5 for t in range(epochs + 1)]  # the cells' edges, so each alpha level spans its cell
        for s in range(len(trace.slot_ids)):
            alphas = [min(max(episode.alphas[t][s], 0.0), 1.0) for t in range(epochs)]
            # Row s spans s − 0.5 (top) … s + 0.5 (bottom) on the inverted axis; keep a small margin.
            ax.stairs([s + 0.4 - 0.8 * a for a in alphas], edges, baseline=None, color="black", linewidth=1.0)
        ax.set_yticks(range(len(trace.slot_ids)), trace.slot_ids)
        ax.set_title(episode.label, fontsize=9, loc="left")
        ax.set_xlim(0.5, epochs + 0.5)
    axes[-1, 0].set_xlabel("epoch")
    legend = [Patch(color=STAGE_COLOURS[s], label=s.lower()) for s in STAGE_COLOURS if s in seen]
    legend.append(Line2D([], [], color="black", linewidth=1.0, label="alpha (row bottom 0, top 1)"))
    fig.suptitle("Seed lifecycle (colour: stage; line: alpha)", x=0.01, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97 - 0.03 / count))
    # Below the panels, so it covers neither a timeline nor an episode's title.
    fig.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(legend), 5), fontsize=8,
               frameon=False)
    return _save(fig, path)


def plot_pareto(
    controllers: Sequence[tuple[str, float, float]], param_weight: float, host_params: int | None, path: Path
) -> Path:
    """Mean final accuracy against mean added parameters, one point per `(label, added, accuracy)`,
    with dashed lines of equal objective through each point (their slope is the parameter price).
    `host_params` None: the episodes' hosts differ in size, so there is no single price slope to draw."""
    if not controllers:
        raise ValueError("no controllers to plot")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    span = max(added for _, added, _ in controllers) * 1.1 or 1.0
    if host_params is not None:
        slope = param_weight * 100.0 / host_params
        for label, added, accuracy in controllers:
            ax.plot([0.0, span], [accuracy - slope * added, accuracy + slope * (span - added)], "--",
                    color=controller_style(label)[0], alpha=0.35, linewidth=1)
    _scatter_controllers(ax, controllers)
    xlabel = ("added parameters (hosts vary by episode)" if host_params is None
              else f"added parameters (host: {host_params:,})")
    lines = "" if host_params is None else "dashed: equal objective, "
    return _finish(fig, ax, xlabel, "final validation accuracy (%)",
                   f"controllers by accuracy and size ({lines}param_weight {param_weight})", path)


def plot_compute(episodes: Mapping[str, Sequence[tuple[float, float]]], path: Path) -> Path:
    """Final accuracy against training compute: each controller's episodes `(train GFLOPs, accuracy)` as
    faint points and their mean as a labelled marker. Growing pays where a grown controller's marker sits
    above its static-final control's at no more compute."""
    if not episodes or not all(episodes.values()):
        raise ValueError("every controller needs at least one episode to plot")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    means = []
    for label, points in episodes.items():
        flops, accuracy = [f for f, _ in points], [a for _, a in points]
        colour, marker, _ = controller_style(label)
        ax.scatter(flops, accuracy, color=colour, marker=marker, alpha=0.25, s=12)
        means.append((label, math.fsum(flops) / len(flops), math.fsum(accuracy) / len(accuracy)))
    _scatter_controllers(ax, means)
    return _finish(fig, ax, "training compute of the episode (GFLOPs, forward + backward)",
                   "final validation accuracy (%)",
                   "controllers by accuracy and training compute (large: mean; small: episodes)", path)


def plot_front(
    controllers: Sequence[tuple[str, float, float]], learned: Sequence[tuple[float, float, float]],
    host_params: int, path: Path,
) -> Path:
    """Accuracy against added parameters: fixed controllers as labelled points `(label, added, accuracy)`
    and learned controllers, one per `(param_weight, added, accuracy)`, joined in order of price."""
    if not learned:
        raise ValueError("no learned controllers to trace a front with")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    _scatter_controllers(ax, controllers)
    ordered = sorted(learned)
    ax.plot([a for _, a, _ in ordered], [acc for _, _, acc in ordered], "-*", color=controller_style("learned")[0],
            markersize=10, zorder=3 + len(controllers), label="learned, one per param_weight")
    for weight, added, accuracy in ordered:
        ax.annotate(f"{weight:g}", (added, accuracy), textcoords="offset points", xytext=(5, 5), fontsize=8,
                    color="tab:blue")
    return _finish(fig, ax, f"added parameters (host: {host_params:,})", "final validation accuracy (%)",
                   "learned controllers at several parameter prices (labels: param_weight) and the fixed ones", path)


def plot_learning_curve(
    history: History, baselines: Sequence[tuple[str, float]], path: Path, window: int = 10
) -> Path:
    """The training episodes' mean objective per update (and its running mean over `window` updates),
    with each `(label, objective)` baseline drawn as a horizontal line."""
    updates = _updates(history)
    if "episode/objective" not in history:
        raise ValueError("the metric history has no 'episode/objective' (a run from before the objective?)")
    values = list(history["episode/objective"])
    fig, ax = plt.subplots(figsize=(8, 5))
    colour = controller_style("learned")[0]
    ax.plot(updates, values, color=colour, alpha=0.3, linewidth=1, label="learned: mean over the update's envs")
    window = min(window, len(values) // 2)  # a running mean only where it averages several updates
    if window >= 2:
        smooth = [math.fsum(values[max(0, i - window + 1): i + 1]) / (i + 1 - max(0, i - window + 1))
                  for i in range(len(values))]
        ax.plot(updates, smooth, color=colour, linewidth=2, label=f"learned: running mean of {window} updates")
    for label, objective in baselines:
        style = "--" if controller_style(label)[2] else ":"
        ax.axhline(objective, color=controller_style(label)[0], linestyle=style, linewidth=1.2, label=label)
    return _finish(fig, ax, "PPO update (training seeds)", "objective (points)",
                   "Learning curve; horizontal lines: each other controller's held-out mean", path)


def draw_run_plots(history: History, trace: LifecycleTrace | None, out_dir: Path) -> list[Path]:
    """Every picture the inputs allow: curves always, entropies when logged, lifecycle when traced."""
    written = [plot_curves(history, out_dir / CURVES_PNG)]
    if entropy_keys(history):
        written.append(plot_head_entropies(history, out_dir / ENTROPY_PNG))
    if trace is not None and trace.episodes:
        written.append(plot_lifecycle(trace, out_dir / LIFECYCLE_PNG))
    return written
