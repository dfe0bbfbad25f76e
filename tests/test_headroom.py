"""The headroom report: the single best schedule, the context selector and the per-episode best, and the
episode pool that runs a comparison on every core."""

import csv
import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest
from test_evaluation import compose_cfg

from tamiyo.core.errors import ConfigError
from tamiyo.evaluation.commands import compare_command
from tamiyo.evaluation.comparison import equal_compute_epochs
from tamiyo.evaluation.headroom import SBS, SELECTOR, VBS, headroom, headroom_markdown
from tamiyo.evaluation.pool import EpisodeJob, EpisodePool
from tamiyo.evaluation.runner import EpisodeResult
from tamiyo.launch.train import train


def result(policy: str, seed: int, objective: float, task: str = "mnist1d", width: float = 1.0) -> EpisodeResult:
    return EpisodeResult(
        policy=policy, seed=seed, episode=0, env=0, kind=f"{task} ×{width:g}", task=task, host_width=width,
        episode_return=0.0, objective=objective, final_accuracy=objective, host_params=100, added_params=0,
        total_params=100, seeds_germinated=0, seeds_fossilized=0, seeds_pruned=0, seeds_failed=0, train_gflops=1.0,
        extra_compute=0.0, architecture="",
    )


# Objectives of schedules A, B, C on each seed; the task each seed draws.
TRAIN = {0: ("mnist1d", [50, 40, 10]), 1: ("mnist1d", [52, 44, 12]), 2: ("digits", [60, 80, 70]),
         3: ("digits", [62, 84, 90])}
TEST = {10: ("mnist1d", [51, 45, 70]), 11: ("mnist1d", [49, 47, 30]), 12: ("digits", [61, 82, 75]),
        13: ("digits", [63, 79, 81])}


def grid(table: dict) -> list[EpisodeResult]:
    return [result(name, seed, value, task) for name, index in (("A", 0), ("B", 1), ("C", 2))
            for seed, (task, values) in table.items() for value in [values[index]]]


def test_the_ladder_is_chosen_on_training_seeds_and_scored_on_held_out_ones():
    static = [result("static", seed, 40.0, task) for seed, (task, _) in TEST.items()]
    report = headroom(grid(TRAIN), grid(TEST), static)
    rows = {row.controller: row for row in report.rows}
    assert [row.controller for row in report.rows] == [SBS, SELECTOR, VBS, "static"]
    # Train means: A 56, B 62, C 45.5 → B is the single best; on held-out seeds B scores 63.25.
    assert report.single_best == "B"
    assert rows[SBS].objective_mean == pytest.approx((45 + 47 + 82 + 79) / 4)
    # By kind on training seeds: mnist1d → A (means 51, 42, 11), digits → B (61, 82, 80).
    assert report.choices == {"digits ×1": "B", "mnist1d ×1": "A"}
    assert rows[SELECTOR].objective_mean == pytest.approx((51 + 49 + 82 + 79) / 4)
    # C wins seed 10 in hindsight though no choice on the training seeds would pick it.
    assert rows[VBS].objective_mean == pytest.approx((70 + 49 + 82 + 81) / 4)
    sbs, vbs = rows[SBS].objective_mean, rows[VBS].objective_mean
    assert rows[SBS].gap_closed == 0.0 and rows[VBS].gap_closed == pytest.approx(1.0)
    assert rows[SELECTOR].gap_closed == pytest.approx((rows[SELECTOR].objective_mean - sbs) / (vbs - sbs))
    assert rows["static"].diff_sbs_mean == pytest.approx(40.0 - sbs)
    assert rows[SBS].diff_sbs_mean == 0.0 and rows[SBS].diff_sbs_ci95 == 0.0
    # Paired interval of the selector: differences (6, 2, 0, 0) to the SBS.
    assert rows[SELECTOR].diff_sbs_mean == pytest.approx(2.0)
    assert rows[SELECTOR].diff_sbs_ci95 == pytest.approx(3.182446 * math.sqrt(8.0) / 2, rel=1e-5)
    table = headroom_markdown(report, "caption")
    assert f"| {SBS} | 4 | 63.25 ± " in table and "- digits ×1: B" in table


def test_a_kind_the_training_seeds_never_drew_falls_back_to_the_single_best():
    test = {**TEST, 14: ("cifar10", [10, 20, 30])}
    report = headroom(grid(TRAIN), grid(test), [])
    selector = {row.controller: row for row in report.rows}[SELECTOR]
    assert selector.objective_mean == pytest.approx((51 + 49 + 82 + 79 + 20) / 5)


def test_overlapping_seeds_and_missing_episodes_are_refused():
    with pytest.raises(ValueError, match=r"training seeds \[0, 1, 2, 3\] and held-out seeds .* overlap"):
        headroom(grid(TRAIN), grid(TRAIN), [])
    with pytest.raises(ValueError, match="every schedule must play every held-out episode"):
        headroom(grid(TRAIN), grid(TEST)[1:], [])
    missing = r"static did not play the held-out episodes the grid played: \[\(13, 0, 0\)\]"
    with pytest.raises(ValueError, match=missing):
        headroom(grid(TRAIN), grid(TEST), [result("static", seed, 40.0) for seed in (10, 11, 12)])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


GRID = ("schedule_grid.blueprints=[conv_light,conv_small]", "schedule_grid.slots=[[r0c2]]", "train_seeds=[5,6]")


def test_compare_with_headroom_writes_the_ladder_from_the_grid_on_both_seed_sets(tmp_path):
    compare_command(compose_cfg("compare", tmp_path, "seeds=[0,1]", "baselines=[static]", *GRID, "headroom=true",
                                "static_final=[]", "reference=null", "episode_workers=2"))
    out = tmp_path / "out"
    searched = read_csv(out / "schedule_grid.csv")
    assert {r["seed"] for r in searched} == {"0", "1", "5", "6"} and len(searched) == (1 + 4) * 4
    rows = read_csv(out / "headroom.csv")
    assert [r["controller"] for r in rows] == [SBS, SELECTOR, VBS, "static"]
    assert float(rows[0]["gap_closed"]) == 0.0 or math.isnan(float(rows[0]["gap_closed"]))
    held_out = [r for r in searched if r["seed"] in ("0", "1")]
    best = {seed: max(float(r["objective"]) for r in held_out if r["seed"] == seed) for seed in ("0", "1")}
    assert float(rows[2]["objective_mean"]) == pytest.approx(sum(best.values()) / 2)
    # The comparison's schedule row is the single best schedule's held-out episodes, not a rerun.
    comparison = {r["policy"]: r for r in read_csv(out / "comparison.csv")}
    schedule = next(p for p in comparison if p.startswith("schedule:"))
    assert float(comparison[schedule]["objective_mean"]) == pytest.approx(float(rows[0]["objective_mean"]))
    assert "gap closed" in (out / "headroom.md").read_text()


def test_the_ladder_ranks_a_learned_checkpoint_among_the_rules(tmp_path):
    train(compose_cfg("train", tmp_path / "trained", "updates=1", "ppo.num_minibatches=1", "ppo.update_epochs=1"))
    ckpt = tmp_path / "trained" / "out" / "checkpoints" / "last.ckpt"
    compare_command(compose_cfg("compare", tmp_path, f"ckpt_path={ckpt}", "seeds=[0,1]", "baselines=[static]", *GRID,
                                "schedule_grid.families=[{}]", "headroom=true", "static_final=[]", "reference=null"))
    rows = {r["controller"]: r for r in read_csv(tmp_path / "out" / "headroom.csv")}
    assert list(rows) == [SBS, SELECTOR, VBS, "static", "learned (lstm)"]
    learned = [float(r["objective"]) for r in read_csv(tmp_path / "out" / "comparison_episodes.csv")
               if r["policy"] == "learned (lstm)"]
    sbs = float(rows[SBS]["objective_mean"])
    assert float(rows["learned (lstm)"]["diff_sbs_mean"]) == pytest.approx(sum(learned) / 2 - sbs)


def test_episode_workers_change_nothing_but_the_time(tmp_path):
    tables = []
    for workers in (1, 2):
        compare_command(compose_cfg("compare", tmp_path / str(workers), "seeds=[0,1]", "baselines=[static,random]",
                                    *GRID, "schedule_grid.families=[{}]", "static_final=[schedule]",
                                    "reference=static", f"episode_workers={workers}"))
        tables.append((tmp_path / str(workers) / "out" / "comparison_episodes.csv").read_text())
    assert tables[0] == tables[1]


def test_ray_episode_pool_gives_the_tables_of_one_process(tmp_path):
    pytest.importorskip("ray")
    tables = []
    for pool, workers in (("processes", 1), ("ray", 2)):
        compare_command(compose_cfg("compare", tmp_path / pool, "seeds=[0,1]", "baselines=[static,random]",
                                    "schedule_grid=null", "static_final=[]", "reference=static",
                                    f"episode_pool={pool}", f"episode_workers={workers}"))
        tables.append((tmp_path / pool / "out" / "comparison_episodes.csv").read_text())
    assert tables[0] == tables[1]
    assert len(tables[0].splitlines()) == 1 + 2 * 2  # two controllers on two seeds


def test_ray_pool_without_ray_is_refused_in_one_line(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "ray" else find_spec(name))
    with pytest.raises(ValueError, match=r"^episode_pool=ray needs Ray: pip install -e '\.\[ray\]'$"):
        EpisodePool(kind="ray")


def test_headroom_without_a_grid_and_bad_episode_workers_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="headroom=true needs schedule_grid"):
        compare_command(compose_cfg("compare", tmp_path, "headroom=true", "schedule_grid=null", "static_final=[]",
                                    "reference=null"))
    with pytest.raises(ConfigError, match="episode_pool must be one of processes, ray, got 'dask'"):
        compare_command(compose_cfg("compare", tmp_path, "episode_pool=dask", "schedule_grid=null",
                                    "static_final=[]", "reference=null"))
    with pytest.raises(ConfigError, match="episode_workers must be 'auto' or an integer ≥ 1, got 0"):
        compare_command(compose_cfg("compare", tmp_path, "episode_workers=0", "schedule_grid=null",
                                    "static_final=[]", "reference=null", "baselines=[static]", "seeds=1"))
    with pytest.raises(ConfigError, match=r"schedule_grid.families must be a non-empty list of schedule option sets"):
        compare_command(compose_cfg("compare", tmp_path, *GRID, "schedule_grid.families=[]", "static_final=[]",
                                    "reference=null", "baselines=[static]", "seeds=1"))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^episode_cache .*a_file/cache cannot be created: "):
        compare_command(compose_cfg("compare", tmp_path, f"episode_cache={blocker / 'cache'}", "schedule_grid=null",
                                    "static_final=[]", "reference=null", "baselines=[static]", "seeds=1"))
    with pytest.raises(ConfigError, match=r"schedule_grid options \['prune_deadd'\] are not schedule options"):
        compare_command(compose_cfg("compare", tmp_path, *GRID, "schedule_grid.families=[{prune_deadd:true}]",
                                    "static_final=[]", "reference=null", "baselines=[static]", "seeds=1"))


def test_a_comparison_continues_from_its_episode_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    args = ("seeds=[0,1]", "baselines=[static]", *GRID, "schedule_grid.families=[{}]", "static_final=[schedule]",
            "reference=static", "episode_workers=1", f"episode_cache={cache}")
    compare_command(compose_cfg("compare", tmp_path / "first", *args))
    kept = sorted(cache.glob("*.json"))
    # The grid (never growing + 2 schedules) on 2 training seeds, static and the chosen schedule on 2 seeds, 2 controls.
    assert len(kept) == 3 * 2 + 2 + 2 + 2

    def must_not_run(self: object, job: EpisodeJob) -> None:
        raise AssertionError(f"{job.label} on seed {job.seed} ran again")

    monkeypatch.setattr("tamiyo.evaluation.pool.EpisodeRunner.run", must_not_run)
    compare_command(compose_cfg("compare", tmp_path / "second", *args))
    first, second = (tmp_path / run / "out" / "comparison_episodes.csv" for run in ("first", "second"))
    assert first.read_text() == second.read_text()


def test_equal_compute_epochs_fit_the_grown_episodes_flops():
    grown, control = result("g", 0, 50.0), result("c", 0, 50.0)

    def at(gflops: float, episode: EpisodeResult) -> EpisodeResult:
        return dataclasses.replace(episode, train_gflops=gflops)

    assert equal_compute_epochs(at(7.5, grown), at(10.0, control), 10) == 7  # 1.0 GFLOPs an epoch
    assert equal_compute_epochs(at(7.0, grown), at(10.0, control), 10) == 7  # exactly 7 epochs' worth
    assert equal_compute_epochs(at(0.2, grown), at(10.0, control), 10) == 1
    assert equal_compute_epochs(at(12.0, grown), at(10.0, control), 10) == 10


def test_static_final_at_equal_compute_trains_the_final_network_for_the_grown_episodes_flops(tmp_path):
    compare_command(compose_cfg("compare", tmp_path, "env.max_epochs=6", "seeds=[0,1]", "baselines=[static]",
                                "schedule_grid.blueprints=[conv_heavy]", "schedule_grid.slots=[[r0c2]]",
                                "schedule_grid.families=[{}]", "schedule_grid.include_static=false", "train_seeds=[5]",
                                "static_final=[schedule]", "static_final_equal_compute=true", "reference=static"))
    episodes = read_csv(tmp_path / "out" / "comparison_episodes.csv")
    label = "schedule: conv_heavy in r0c2"
    grown, full, equal = ([r for r in episodes if r["policy"] == name] for name in
                          (label, f"static-final: {label}", f"static-final, equal compute: {label}"))
    assert len(grown) == len(full) == len(equal) == 2
    for g, f, e in zip(grown, full, equal, strict=True):
        per_epoch = float(f["train_gflops"]) / 6
        assert float(g["train_gflops"]) - per_epoch < float(e["train_gflops"]) <= float(g["train_gflops"]) * (1 + 1e-9)
        assert float(e["train_gflops"]) < float(f["train_gflops"])  # the grown episode ran its seed for fewer epochs
        assert e["extra_compute"] == g["extra_compute"] and e["architecture"] == g["architecture"]
        price = 0.05 * 100 * int(e["added_params"]) / int(e["host_params"])
        assert float(e["objective"]) == pytest.approx(float(e["final_accuracy"]) - price)
