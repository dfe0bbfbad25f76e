"""The evaluation and comparison commands on tiny configs (in process, CPU)."""

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from helpers.runs import compose_config, read_csv, tiny_overrides
from omegaconf import DictConfig

from tamiyo.core.errors import ConfigError
from tamiyo.env.objective import Objective
from tamiyo.evaluation.checkpoint_env import with_checkpoint_env
from tamiyo.evaluation.commands import (
    build_eval_env,
    compare_command,
    evaluate_command,
    parse_seeds,
    resolve_checkpoint,
)
from tamiyo.evaluation.report import markdown_table, write_csv
from tamiyo.evaluation.report import read_csv as read_episodes
from tamiyo.evaluation.runner import (
    EVAL_EPISODE_BASE,
    CheckpointContentError,
    EpisodeResult,
    baseline_policy,
    evaluate,
    load_checkpoint_policy,
)
from tamiyo.launch.train import train
from tamiyo.policy import obs_dim
from tamiyo.training.checkpoints import RUN_CONFIG_KEY, CheckpointError

TINY_ENV = tiny_overrides(env__max_epochs=2, env__task_options__train_subset=128, env__task_options__val_subset=64)


def compose_cfg(config: str, tmp_path: Path, *overrides: str) -> DictConfig:
    # evaluate/compare show a progress bar of their own (`progress`), training its callback
    tiny = [o for o in TINY_ENV if config == "train" or not o.startswith("callbacks.")]
    return compose_config(config, tmp_path / "out", *(["progress=false"] if config != "train" else []), *overrides,
                          tiny=tiny)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny trained lstm checkpoint (2 updates, 1 env, 2 epochs per episode)."""
    tmp = tmp_path_factory.mktemp("trained")
    train(compose_cfg("train", tmp, "updates=2", "ppo.num_minibatches=1", "ppo.update_epochs=1"))
    return tmp / "out" / "checkpoints" / "last.ckpt"


def test_baseline_evaluation_writes_one_csv_row_per_env_episode_and_a_table(tmp_path):
    table = evaluate_command(compose_cfg("evaluate", tmp_path, "policy=static", "seeds=[0,3]", "episodes=2",
                                         "env.num_envs=2"))
    rows = read_csv(tmp_path / "out" / "evaluation.csv")
    assert [(r["seed"], r["episode"], r["env"]) for r in rows] == [
        (s, e, v) for s in ("0", "3") for e in ("0", "1") for v in ("0", "1")
    ]
    for row in rows:
        assert row["policy"] == "static"
        assert 0.0 < float(row["final_accuracy"]) <= 100.0
        assert int(row["seeds_germinated"]) == 0 and int(row["added_params"]) == 0
        assert int(row["total_params"]) == int(row["host_params"]) > 0
        assert float(row["objective"]) == float(row["final_accuracy"])  # nothing added, nothing charged
    text = table.read_text()
    assert table == tmp_path / "out" / "evaluation.md"
    mean_acc = sum(float(r["final_accuracy"]) for r in rows) / len(rows)
    assert f"| static | 8 | {mean_acc:.2f} ± " in text  # objective column: nothing added
    assert (tmp_path / "out" / "lifecycle.png").stat().st_size > 0


def test_evaluation_uses_episode_indices_that_training_never_reaches(tmp_path):
    cfg = compose_cfg("evaluate", tmp_path, "policy=static")
    env = build_eval_env(cfg)
    policy = baseline_policy("static", {}, env, obs_dim=obs_dim(3), obs_clip=5.0)
    evaluation = evaluate(policy, env, seeds=[0], episodes=3, objective=Objective())
    assert env.next_episode == EVAL_EPISODE_BASE + 3
    assert [r.episode for r in evaluation.results] == [0, 1, 2]
    # Different episode indices really are different episodes (different host init and batches).
    assert len({r.final_accuracy for r in evaluation.results} | {r.episode_return for r in evaluation.results}) > 1


def test_a_trained_checkpoint_evaluates_with_frozen_restored_normaliser(tmp_path, checkpoint):
    saved = torch.load(checkpoint, weights_only=True)
    policy = load_checkpoint_policy(checkpoint)
    assert policy.label == "learned (lstm)" and policy.obs_normalizer.frozen
    stats = policy.obs_normalizer.state_dict()
    assert torch.equal(stats["mean"], saved["RolloutDataModule"]["obs_normalizer"]["mean"])
    assert stats["count"] == saved["RolloutDataModule"]["obs_normalizer"]["count"] > 0
    weights = policy.bundle.state_dict()
    assert all(torch.equal(weights[k], saved["state_dict"][f"policy_net.{k}"]) for k in weights)

    evaluate_command(compose_cfg("evaluate", tmp_path, f"ckpt_path={checkpoint}", "seeds=2"))
    rows = read_csv(tmp_path / "out" / "evaluation.csv")
    assert [(r["policy"], r["seed"]) for r in rows] == [("learned (lstm)", "0"), ("learned (lstm)", "1")]
    # Arg-max actions and a frozen normaliser: a second evaluation repeats the first exactly.
    evaluate_command(compose_cfg("evaluate", tmp_path / "again", f"ckpt_path={checkpoint}", "seeds=2"))
    assert read_csv(tmp_path / "again" / "out" / "evaluation.csv") == rows


def test_comparison_table_has_every_policy_on_the_same_seeds(tmp_path, checkpoint):
    table = compare_command(compose_cfg("compare", tmp_path, f"ckpt_path={checkpoint}", "seeds=2",
                                        "schedule_grid=null", "static_final=[learned]"))
    rows = read_csv(tmp_path / "out" / "comparison_episodes.csv")
    rule = ("schedule: conv_small in r0c0, prune_below=0.0, prune_dead=True, prune_unstable=3.0, "
            "germinate_on_plateau=2")  # grow_on_plateau
    policies = ["static", "random", "heuristic", rule, "learned (lstm)", "static-final: learned (lstm)"]
    assert [(r["policy"], r["seed"]) for r in rows] == [(p, s) for p in policies for s in ("0", "1")]
    summary = read_csv(tmp_path / "out" / "comparison.csv")
    assert [(r["policy"], r["n"]) for r in summary] == [(p, "2") for p in policies]
    learned = [float(r["objective"]) for r in rows if r["policy"] == "learned (lstm)"]
    static = [float(r["objective"]) for r in rows if r["policy"] == "static"]
    paired = (static[0] - learned[0] + static[1] - learned[1]) / 2
    assert float(summary[0]["diff_objective_mean"]) == pytest.approx(paired)
    assert "(the checkpoint's env: 2 epochs per episode" in _caption(table)
    lines = [line for line in table.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    assert [line.split(" | ")[0][2:] for line in lines[1:]] == policies
    for name in ("static", "random", "heuristic", "grow_on_plateau", "learned"):
        assert (tmp_path / "out" / f"lifecycle_{name}.png").stat().st_size > 0
    assert (tmp_path / "out" / "learning_curve.png").stat().st_size > 0  # from the run's metrics.csv


def _caption(table: Path) -> str:
    return table.read_text().splitlines()[0]


def test_a_checkpoint_is_evaluated_on_the_env_it_was_trained_on_unless_the_command_says_otherwise(
        tmp_path, checkpoint, caplog):
    caplog.set_level("INFO", logger="tamiyo")
    command = ("evaluate", f"ckpt_path={checkpoint}", "seeds=1", "env.max_epochs=3")  # the run had 2-epoch episodes
    table = evaluate_command(compose_cfg(command[0], tmp_path / "own", *command[1:]), ["ckpt_path", "seeds"])
    assert "on mnist1d (the checkpoint's env: 2 epochs per episode, 1 env(s))" in _caption(table)
    assert f"env: the one {checkpoint} was trained on (task mnist1d)\n" in caplog.text
    trace = json.loads((tmp_path / "own" / "out" / "lifecycle.json").read_text())
    assert len(trace["episodes"][0]["stages"]) == 2  # one entry per epoch the episode ran
    table = evaluate_command(compose_cfg(command[0], tmp_path / "key", *command[1:]), ["ckpt_path", "env.max_epochs"])
    assert "(the checkpoint's env with the command's env.max_epochs: 3 epochs per episode" in _caption(table)
    table = evaluate_command(compose_cfg(command[0], tmp_path / "group", *command[1:]), ["ckpt_path", "env"])
    assert "(the command's env: 3 epochs per episode" in _caption(table)
    assert f"env: the command's (env), not the one {checkpoint} was trained on" in caplog.text


def test_a_checkpoint_saved_before_auto_advance_existed_is_evaluated_without_it(tmp_path, checkpoint):
    saved = torch.load(checkpoint, weights_only=True)
    assert saved[RUN_CONFIG_KEY]["env"]["auto_advance"] is True  # today's default
    del saved[RUN_CONFIG_KEY]["env"]["auto_advance"]
    older = tmp_path / "older.ckpt"
    torch.save(saved, older)
    chosen, _ = with_checkpoint_env(compose_cfg("evaluate", tmp_path, f"ckpt_path={older}"), ["ckpt_path"])
    assert chosen.env.auto_advance is False and chosen.env.max_epochs == 2


def test_a_checkpoint_without_its_run_config_needs_the_env_named(tmp_path, checkpoint):
    saved = torch.load(checkpoint, weights_only=True)
    del saved[RUN_CONFIG_KEY]
    older = tmp_path / "older.ckpt"
    torch.save(saved, older)
    expected = rf"^{re.escape(str(older))} holds no run config \(written by an older tamiyo\): pass the env it was "
    with pytest.raises(ConfigError, match=expected):
        evaluate_command(compose_cfg("evaluate", tmp_path, f"ckpt_path={older}"), ["ckpt_path"])


def test_comparison_needs_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="^ckpt_path is required"):
        compare_command(compose_cfg("compare", tmp_path))


def test_checkpoint_for_other_slots_is_refused(tmp_path, checkpoint):
    expected = r"trained with slots \['r0c0', 'r0c1', 'r0c2'\], the env has \['r0c0'\]"
    with pytest.raises(CheckpointContentError, match=expected):
        evaluate_command(compose_cfg("evaluate", tmp_path, f"ckpt_path={checkpoint}", "env.slots=[r0c0]"),
                         ["env.slots"])


def test_checkpoint_with_an_older_narrower_observation_is_refused_in_one_line(tmp_path, checkpoint):
    saved = torch.load(checkpoint, weights_only=True)
    width = saved["hyper_parameters"]["obs_dim"]
    saved["hyper_parameters"]["obs_dim"] = width - 2
    saved["state_dict"]["policy_net.feature.0.weight"] = saved["state_dict"]["policy_net.feature.0.weight"][:, :-2]
    stats = saved["RolloutDataModule"]["obs_normalizer"]
    stats["mean"], stats["var"] = stats["mean"][:-2], stats["var"][:-2]
    older = tmp_path / "older.ckpt"
    torch.save(saved, older)
    expected = rf"^learned \(lstm\) observes {width - 2} feature columns, this tamiyo's observation has {width}: "
    with pytest.raises(CheckpointContentError, match=expected):
        evaluate_command(compose_cfg("evaluate", tmp_path, f"ckpt_path={older}"))


def test_checkpoint_of_another_policy_than_asked_is_refused(tmp_path, checkpoint):
    expected = (rf"^{re.escape(str(checkpoint))} holds a learned \(lstm\) policy, but policy=heuristic was asked: "
                r"pass policy=lstm, or a checkpoint of a policy=heuristic run$")
    with pytest.raises(ConfigError, match=expected):
        evaluate_command(compose_cfg("evaluate", tmp_path, f"ckpt_path={checkpoint}", "policy=heuristic"))


def test_latest_picks_the_newest_run_of_the_asked_policy_and_says_which(tmp_path, checkpoint, caplog):
    runs = tmp_path / "outputs" / "train" / "runs"
    learned = runs / "2026-01-01_00-00-00" / "checkpoints" / "last.ckpt"
    learned.parent.mkdir(parents=True)
    shutil.copy(checkpoint, learned)
    newer = runs / "2026-01-02_00-00-00" / "checkpoints" / "last.ckpt"  # a newer run of a fixed policy
    newer.parent.mkdir(parents=True)
    saved = torch.load(checkpoint, weights_only=True)
    saved["hyper_parameters"]["policy"] = {"name": "heuristic"}
    torch.save(saved, newer)
    os.utime(learned, (1, 1))
    caplog.set_level("INFO", logger="tamiyo")
    root = f"paths.output_root={tmp_path / 'outputs'}"
    assert resolve_checkpoint(compose_cfg("evaluate", tmp_path, "ckpt_path=latest", root)) == learned
    assert f"ckpt_path=latest: {learned}" in caplog.text
    assert resolve_checkpoint(compose_cfg("evaluate", tmp_path, "ckpt_path=latest", "policy=heuristic", root)) == newer
    with pytest.raises(ConfigError, match=r"^ckpt_path=latest: no last.ckpt of a policy=random run under .*runs$"):
        resolve_checkpoint(compose_cfg("evaluate", tmp_path, "ckpt_path=latest", "policy=random", root))


def test_learned_policy_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"policy 'lstm' is learned: evaluate it from a training checkpoint"):
        evaluate_command(compose_cfg("evaluate", tmp_path, "policy=lstm"))


def test_file_that_is_not_a_training_checkpoint_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="is not a tamiyo training checkpoint: hyper_parameters lack"):
        load_checkpoint_policy(path)


def test_seeds_are_a_count_or_a_list():
    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds([7, 2]) == [7, 2]
    for bad in (0, [], [1, 1], [-1], "3", True):
        with pytest.raises(ConfigError, match="^seeds must be a count"):
            parse_seeds(bad)


def test_episodes_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="^episodes must be an integer ≥ 1, got 0$"):
        evaluate_command(compose_cfg("evaluate", tmp_path, "policy=static", "episodes=0"))


def _result(policy: str, accuracy: float) -> EpisodeResult:
    return EpisodeResult(policy, 0, 0, 0, "mnist1d ×1", "mnist1d", 1.0, 1.0, accuracy - 0.5, accuracy, 100, 10, 110,
                         1, 1, 0, 0, 2.5, 0.3, "r0c0=norm/add")


def test_an_episode_table_reads_back_as_the_results_it_was_written_from(tmp_path):
    results = [_result("static", 80.0), _result("heuristic", 91.25)]
    assert read_episodes(write_csv(results, tmp_path / "episodes.csv")) == results
    (tmp_path / "old.csv").write_text("policy,seed\nstatic,0\n")
    with pytest.raises(ValueError, match="old.csv is not an episode table of this version: it lacks columns"):
        read_episodes(tmp_path / "old.csv")


def test_table_shows_mean_and_sample_std_per_policy():
    table = markdown_table([_result("a", 10.0), _result("a", 20.0), _result("b", 50.0)], "caption")
    lines = table.splitlines()
    assert lines[0] == "caption"
    assert lines[4].startswith("| a | 2 | 14.50 ± 7.07 | 15.00 ± 7.07 | 1.000 ± 0.000 | 110 ± 0 |")
    assert lines[5].startswith("| b | 1 | 49.50 | 50.00 | 1.000 | 110 |")  # one value: no spread shown


def test_a_failing_evaluation_stops_its_env_workers_cleanly(tmp_path, monkeypatch, capfd):
    def fail_after_reset(policy, env, seeds, *args, **kwargs):
        env.reset(seed=seeds[0], episode_index=0)  # the workers are running now
        raise RuntimeError("injected failure")

    monkeypatch.setattr("tamiyo.evaluation.pool.evaluate", fail_after_reset)
    cfg = compose_cfg("evaluate", tmp_path, "policy=heuristic", "env.workers=2", "env.num_envs=2", "episode_workers=1")
    with pytest.raises(RuntimeError, match="injected failure"):
        evaluate_command(cfg)
    # Closed in order: without it the workers die on broken pipes at exit, each printing a traceback.
    time.sleep(1.0)
    assert "BrokenPipeError" not in capfd.readouterr().err
