"""Checkpoint selection on validation episodes (`validation.*`, `tamiyo.training.validation`)."""

from pathlib import Path

import pytest
from helpers.runs import compose_config, read_csv, tiny_overrides

from tamiyo.core.errors import ConfigError
from tamiyo.env.objective import Objective
from tamiyo.env.vector import VectorEnv
from tamiyo.evaluation.runner import evaluate, load_checkpoint_policy
from tamiyo.launch.train import build_datamodule, train
from tamiyo.training.validation import BEST_VALIDATION_CHECKPOINT

TINY = tiny_overrides(env__num_envs=2, ppo__update_epochs=2)


def test_validation_logs_val_objective_and_keeps_the_update_that_scored_best(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path / "run", "updates=3", "validation.every=2", "validation.episodes=2",
                         "ppo.lr=0.01", tiny=TINY)
    train(cfg)
    rows = read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    # Validated after update 2 (every 2) and after the last one; not after the first.
    assert [bool(row.get("val/objective")) for row in rows] == [False, True, True]
    scores = [float(row["val/objective"]) for row in rows[1:]]
    assert float(rows[-1]["val/best_objective"]) == max(scores)
    # The kept checkpoint is the one that scored: replaying the validation episodes with it gives that score.
    policy = load_checkpoint_policy(tmp_path / "run" / "checkpoints" / BEST_VALIDATION_CHECKPOINT)
    datamodule = build_datamodule(cfg, autocast_dtype=None)
    env = VectorEnv(datamodule.task, num_envs=2, config=datamodule.vec_env.config, seed=3000)
    results = evaluate(policy, env, seeds=[3000], episodes=1, objective=Objective(cfg.objective.param_weight)).results
    env.close()
    datamodule.vec_env.close()
    # The logged score went through float32 (Lightning logs tensors): equal to its precision.
    assert sum(r.objective for r in results) / len(results) == pytest.approx(max(scores), rel=1e-6)


def test_validation_is_off_by_default(tmp_path: Path) -> None:
    train(compose_config("train", tmp_path / "run", "updates=1"))
    assert not (tmp_path / "run" / "checkpoints" / BEST_VALIDATION_CHECKPOINT).exists()
    assert "val/objective" not in read_csv(tmp_path / "run" / "csv" / "metrics.csv")[0]


@pytest.mark.parametrize(("override", "message"), [
    ("validation.every=-1", r"^validation.every must be an integer ≥ 0 \(0 = off\), got -1$"),
    ("validation.episodes=0", r"^validation.episodes must be an integer > 0, got 0$"),
])
def test_bad_validation_settings_are_one_line_errors(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train(compose_config("train", tmp_path / "run", override))
