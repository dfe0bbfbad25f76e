"""Run pictures: the training callback's PNGs, `tamiyo-plot`, `tamiyo-pareto`, and the drawing helpers."""

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from helpers.runs import compose_config, tiny_overrides
from matplotlib.colors import to_rgb
from omegaconf import DictConfig

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.evaluation.lifecycle import EpisodeLifecycle, LifecycleTrace
from tamiyo.evaluation.metric_history import history_from_rows, read_metrics_csv
from tamiyo.evaluation.plots import (
    STAGE_COLOURS,
    cell_colour,
    controller_style,
    draw_run_plots,
    plot_compute,
    plot_front,
    plot_head_entropies,
    plot_lifecycle,
)
from tamiyo.launch import pareto
from tamiyo.launch.plot import main as plot_main
from tamiyo.launch.plot import plot_run
from tamiyo.launch.train import train

PNGS = ("returns_accuracy.png", "head_entropy.png", "lifecycle.png")
TINY = tiny_overrides(env__num_envs=2, env__task_options__train_subset=128, env__task_options__val_subset=64)


def make_cfg(run_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("train", run_dir, *overrides, tiny=TINY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, Path]:
    """Two tiny lstm runs of 2 updates that differ only in their seed."""
    root = tmp_path_factory.mktemp("runs")
    dirs = {seed: root / f"seed{seed}" for seed in (0, 1)}
    for seed, run_dir in dirs.items():
        train(make_cfg(run_dir, "updates=2", f"seed={seed}"))
    return dirs


def test_training_run_dir_holds_the_pictures_and_the_lifecycle_trace(runs):
    plots = runs[0] / "plots"
    for name in PNGS:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trace = LifecycleTrace.load(plots / "lifecycle.json")
    assert trace.slot_ids == ["r0c0", "r0c1", "r0c2"]
    assert [e.label for e in trace.episodes] == ["last rollout (update 1), env 0", "last rollout (update 1), env 1"]
    for episode in trace.episodes:
        assert len(episode.stages) == len(episode.alphas) == 3  # one entry per epoch
        assert all(len(row) == 3 and set(row) <= set(STAGE_COLOURS) for row in episode.stages)


def test_plot_script_redraws_from_the_csv_and_differs_between_seeds(runs, tmp_path):
    outputs = {seed: tmp_path / f"redrawn{seed}" for seed in runs}
    for seed, run_dir in runs.items():
        written = plot_run(run_dir, outputs[seed])
        assert sorted(p.name for p in written) == sorted(PNGS)
    for name in PNGS:
        first, second = (outputs[0] / name).read_bytes(), (outputs[1] / name).read_bytes()
        assert len(first) > 1000 and len(second) > 1000
        assert first != second, name


def test_csv_history_matches_what_the_callback_recorded(runs):
    history = read_metrics_csv(runs[0] / "csv" / "metrics.csv")
    recorded = torch.load(runs[0] / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]["RunPlotter"]["rows"]
    assert history["update"] == [0.0, 1.0]
    for key in ("episode/return", "episode/final_accuracy", *(f"entropy/{h}" for h in ("op", "slot"))):
        assert history[key] == pytest.approx([row[key] for row in recorded], rel=1e-6, nan_ok=True), key


def test_resumed_run_plots_its_whole_history(runs, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(runs[0], resumed)  # the resume continues this run dir (the fixture's stays as it is)
    ckpt = resumed / "checkpoints" / "last.ckpt"
    resume = ["updates=3", f"ckpt_path={ckpt}"]
    train(make_cfg(tmp_path / "elsewhere", *resume), overrides=resume)
    rows = torch.load(ckpt, weights_only=True)["callbacks"]["RunPlotter"]["rows"]
    assert [row["update"] for row in rows] == [0.0, 1.0, 2.0]
    assert read_metrics_csv(resumed / "csv" / "metrics.csv")["update"] == [0.0, 1.0, 2.0]  # one history
    assert (resumed / "plots" / "returns_accuracy.png").stat().st_size > 0


def test_plot_script_fails_in_one_line_without_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tamiyo-plot", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        plot_main()
    assert exit_info.value.code == 2
    csv_path = tmp_path / "csv" / "metrics.csv"
    expected = f"error: no metrics CSV at {csv_path}: was the run started with logger=csv?"
    assert capsys.readouterr().err.strip() == expected


def test_metrics_csv_rows_are_merged_per_update(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,episode/return,lr\n0,0,1.5,\n0,0,,0.1\n1,1,2.5,\n")
    history = read_metrics_csv(path)
    assert history["update"] == [0.0, 1.0]
    assert history["episode/return"] == [1.5, 2.5]
    assert history["lr"][0] == 0.1 and math.isnan(history["lr"][1])


def test_history_from_rows_sorts_updates_and_fills_gaps():
    history = history_from_rows([{"update": 1.0, "a": 2.0}, {"update": 0.0, "a": 1.0, "b": 5.0}])
    assert history["update"] == [0.0, 1.0] and history["a"] == [1.0, 2.0]
    assert history["b"][0] == 5.0 and math.isnan(history["b"][1])


def test_baseline_history_gets_curves_but_no_entropy_picture(tmp_path):
    history = {"update": [0.0, 1.0], "episode/return": [1.0, 2.0], "episode/final_accuracy": [50.0, 60.0]}
    written = draw_run_plots(history, None, tmp_path)
    assert [p.name for p in written] == ["returns_accuracy.png"]
    with pytest.raises(ValueError, match="no entropy/<head> metrics"):
        plot_head_entropies(history, tmp_path / "e.png")


def test_entropy_picture_has_a_panel_per_head(tmp_path):
    history = {"update": [0.0, 1.0], **{f"entropy/{h}": [1.0, 0.5] for h in HEAD_NAMES}}
    assert plot_head_entropies(history, tmp_path / "e.png").stat().st_size > 0


def test_every_drawn_cell_colour_is_a_legend_colour():
    assert {stage: cell_colour(stage) for stage in STAGE_COLOURS} == \
        {stage: to_rgb(colour) for stage, colour in STAGE_COLOURS.items()}


def test_unknown_stage_in_a_trace_is_refused(tmp_path):
    trace = LifecycleTrace(["r0c0"], [EpisodeLifecycle("x", [["SHADOWING"]], [[0.0]])])
    with pytest.raises(ValueError, match="unknown seed stage 'SHADOWING'"):
        plot_lifecycle(trace, tmp_path / "l.png")


def test_trace_round_trips_through_json(tmp_path):
    trace = LifecycleTrace(["r0c0", "r0c1"], [EpisodeLifecycle("e", [["DORMANT", "TRAINING"]], [[0.0, 0.25]])])
    path = trace.save(tmp_path / "t.json")
    assert LifecycleTrace.load(path) == trace
    assert json.loads(path.read_text())["episodes"][0]["alphas"] == [[0.0, 0.25]]


def _fake_comparison(run_dir: Path, weight: float, learned: tuple[float, float]) -> Path:
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(f"objective:\n  param_weight: {weight}\n")
    rows = [("static", 0.0, 47.0), ("schedule: conv_light in all slots", 1064.0, 62.0),
            ("static-final: learned (lstm)", 500.0, 70.0), ("learned (lstm)", *learned)]
    (run_dir / "comparison.csv").write_text("policy,added_params_mean,accuracy_mean\n"
                                            + "".join(f"{p},{a},{c}\n" for p, a, c in rows))
    (run_dir / "comparison_episodes.csv").write_text("policy,host_params\nstatic,690\n")
    return run_dir


def test_pareto_script_traces_one_learned_point_per_price(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(pareto, "plot_front", lambda fixed, learned, host, out: drawn.update(
        fixed=fixed, learned=learned, host=host) or out)
    runs = [_fake_comparison(tmp_path / str(w), w, (a, c)) for w, a, c in ((0.1, 100.0, 55.0), (0.02, 900.0, 63.0))]
    pareto.front(runs, tmp_path / "front.png")
    assert drawn["learned"] == [(0.1, 100.0, 55.0), (0.02, 900.0, 63.0)] and drawn["host"] == 690
    assert [label for label, _, _ in drawn["fixed"]] == ["static", "schedule: conv_light in all slots"]
    with pytest.raises(FileNotFoundError, match=r"comparison.csv does not exist: is .* tamiyo-compare\?"):
        pareto.front([tmp_path], tmp_path / "front.png")
    (runs[0] / "comparison_episodes.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"comparison_episodes.csv does not exist: is .* tamiyo-compare\?"):
        pareto.front(runs, tmp_path / "front.png")


def test_front_picture_is_written(tmp_path):
    path = plot_front([("static", 0.0, 47.0)], [(0.05, 300.0, 55.0), (0.02, 800.0, 60.0)], 690, tmp_path / "f.png")
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="no learned controllers to trace a front with"):
        plot_front([("static", 0.0, 47.0)], [], 690, tmp_path / "g.png")


def test_compute_picture_is_written_and_refuses_a_controller_without_episodes(tmp_path):
    episodes = {"static": [(7.9, 50.0), (8.1, 52.0)], "static-final: learned": [(8.6, 73.0)]}
    path = plot_compute(episodes, tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="every controller needs at least one episode"):
        plot_compute({**episodes, "heuristic": []}, tmp_path / "d.png")


def test_a_controller_has_one_style_in_every_figure_and_its_static_final_control_is_its_hollow_twin():
    rule = "schedule: conv_small in r0c0, prune_dead=True"
    labels = ["static", "random", "heuristic", "learned (lstm)", rule]
    styles = {label: controller_style(label) for label in labels}
    assert all(filled for _, _, filled in styles.values())
    assert len({(colour, marker) for colour, marker, _ in styles.values()}) == len(labels)  # told apart
    assert controller_style(rule) == styles[rule]  # the same label, the same style, in any figure or run
    for label in labels:
        colour, marker, _ = styles[label]
        assert controller_style(f"static-final: {label}") == (colour, marker, False)
    assert controller_style("schedule: none (static)") == styles["static"]  # never growing is the static host
