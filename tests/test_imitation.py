"""Imitation updates: behaviour cloning of a teacher before PPO (`imitation.updates`, `imitation.teacher`)."""

import math
from pathlib import Path

import pytest
import torch
from helpers.runs import compose_config, read_csv, tiny_overrides
from omegaconf import DictConfig

from tamiyo.core.actions import HEAD_NAMES
from tamiyo.core.errors import ConfigError
from tamiyo.launch.train import train
from tamiyo.policy.network import EvalResult
from tamiyo.policy.relevance import HeadRelevance
from tamiyo.ppo.imitation import imitation_loss
from tamiyo.ppo.storage import Minibatch

TEACHER = "imitation.teacher={name:schedule,blueprint:conv_light,slots:[r0c2]}"
TINY = tiny_overrides(env__num_envs=2, ppo__update_epochs=4, ppo__num_minibatches=1)


def make_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_config("train", tmp_path / "run", *overrides, tiny=TINY)


def test_imitation_updates_clone_the_teacher_then_ppo_takes_over(tmp_path):
    train(make_cfg(tmp_path, "updates=6", "imitation.updates=5", TEACHER, "ppo.lr=0.003"))
    rows = read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    assert [float(row["ppo/imitating"]) for row in rows] == [1.0] * 5 + [0.0]
    imitated, ppo = rows[:5], rows[5]
    # The teacher's episodes are logged apart: the schedule germinates conv_light in r0c2 once per episode.
    assert all(float(row["imitation/episode/seeds_germinated"]) == 1.0 for row in imitated)
    assert all(not row.get("episode/return") for row in imitated) and ppo["episode/return"]
    # The policy learns to choose the teacher's whole factored action.
    probs = [float(row["imitation/teacher_prob"]) for row in imitated]
    assert probs[0] < 0.5 < 0.9 < probs[-1]
    # PPO's first update samples from the cloned policy: it acts like the teacher, on-policy.
    assert float(ppo["episode/seeds_germinated"]) == 1.0
    assert float(ppo["onpolicy/max_logprob_gap"]) < 1e-5
    assert all(math.isnan(float(row["onpolicy/max_logprob_gap"])) for row in imitated)


def _minibatch(op: torch.Tensor, returns: torch.Tensor) -> Minibatch:
    b, t = op.shape
    actions = {head: torch.zeros(b, t, dtype=torch.long) for head in HEAD_NAMES}
    actions["op"] = op
    return Minibatch(env_indices=torch.arange(b), obs=torch.zeros(b, t, 1), actions=actions, masks={}, log_probs={},
                     values=torch.zeros(b, t), advantages=torch.zeros(b, t), returns=returns,
                     initial_hidden=(torch.zeros(1), torch.zeros(1)), rollout_advantage_mean=torch.zeros(()),
                     rollout_advantage_std=torch.zeros(()))


def test_imitation_loss_is_the_whole_actions_nll_plus_the_value_error():
    log_probs = {head: torch.full((1, 2), -0.5 if head in ("op", "slot") else 0.0) for head in HEAD_NAMES}
    entropy = {head: torch.full((1, 2), 0.3) for head in HEAD_NAMES}
    evaluated = EvalResult(log_probs=log_probs, entropy=entropy, value=torch.tensor([[1.0, 3.0]]),
                           hidden=(torch.zeros(1), torch.zeros(1)))
    batch = _minibatch(op=torch.zeros(1, 2, dtype=torch.long), returns=torch.tensor([[2.0, 1.0]]))
    terms, metrics = imitation_loss(evaluated, batch, value_coef=0.5)
    loss = sum(terms.values())
    assert list(terms) == ["imitation", "value", "entropy"]
    value_loss = 0.5 * (1 + 4) / 2
    assert float(metrics["loss/imitation"]) == pytest.approx(1.0)
    assert float(metrics["loss/value"]) == pytest.approx(value_loss)
    assert float(loss) == pytest.approx(1.0 + 0.5 * value_loss)
    assert float(metrics["imitation/teacher_prob"]) == pytest.approx(math.exp(-1.0))
    # An entropy bonus on the heads relevant to the op, each weighted over all steps as in the PPO loss.
    bonus_terms, metrics = imitation_loss(evaluated, batch, value_coef=0.5, entropy_coef=0.5)
    with_bonus = sum(bonus_terms.values())
    relevant_heads = int(HeadRelevance(torch.zeros((), dtype=torch.long)).relevant.sum())
    assert float(metrics["loss/entropy"]) == pytest.approx(-0.5 * 0.3 * relevant_heads)
    assert float(with_bonus) == pytest.approx(float(loss) - 0.5 * 0.3 * relevant_heads)


@pytest.mark.parametrize(("overrides", "message"), [
    (["imitation.updates=1"], r"^imitation.updates=1 needs imitation.teacher, a policy config"),
    (["imitation.updates=2", "updates=2", TEACHER], r"^imitation.updates \(2\) must be fewer than updates \(2\)"),
    (["imitation.updates=-1"], r"^imitation.updates must be an integer ≥ 0, got -1$"),
    (["imitation.entropy_coef=-1"], r"^imitation.entropy_coef must be a number ≥ 0 or a mapping head → number ≥ 0"),
    (["imitation.updates=1", "updates=2", "policy=heuristic", TEACHER],
     r"^policy config: imitation.updates needs a policy that learns; 'heuristic' has nothing to train$"),
    (["imitation.guide_coef=0.5"], r"^imitation.guide_coef=0.5 needs imitation.teacher, a policy config"),
    (["imitation.guide_coef_end=-1", TEACHER], r"^imitation.guide_coef_end must be a number ≥ 0, got -1.0$"),
    (["imitation.guide_coef=1", "policy=heuristic", TEACHER],
     r"^policy config: imitation.guide_coef needs a policy that learns; 'heuristic' has nothing to train$"),
    (["imitation.updates=1", "updates=2", "imitation.teacher={name:schedule,blueprint:huge}"],
     r"^policy config: imitation.teacher: unknown blueprint 'huge'; choose one of"),
])
def test_bad_imitation_settings_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(make_cfg(tmp_path, *overrides))


def test_the_guide_term_anneals_and_pulls_ppo_towards_the_teacher_in_the_states_it_visits(tmp_path):
    guide = ["imitation.guide_coef=4.0", "imitation.guide_coef_end=2.0", TEACHER, "ppo.lr=0.003"]
    train(make_cfg(tmp_path, "updates=4", *guide))
    rows = read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    assert [float(row["guide/coef"]) for row in rows] == pytest.approx([4.0, 4.0 - 2 / 3, 4.0 - 4 / 3, 2.0])
    probs = [float(row["guide/teacher_prob"]) for row in rows]
    agreement = [float(row["guide/agreement"]) for row in rows]
    assert probs[0] < 0.2 and probs[-1] > 3 * probs[0]  # the NLL term, not PPO's own reward, raises it
    assert 0.0 <= agreement[0] < agreement[-1] <= 1.0
    assert all(float(row["loss/guide"]) > 0 for row in rows)
    for row in rows:  # the update sums its named terms: PPO's (value weighted by value_coef 0.5) and the guide's
        terms = [float(row["loss/policy"]), 0.5 * float(row["loss/value"]), float(row["loss/entropy"]),
                 float(row["guide/coef"]) * float(row["loss/guide"])]
        assert float(row["loss/total"]) == pytest.approx(sum(terms), rel=1e-4)
    assert float(rows[0]["onpolicy/max_logprob_gap"]) < 1e-5  # the guide only advises: the rollout stays on-policy


def test_a_guide_set_to_zero_records_no_teacher_and_logs_no_guide_metrics(tmp_path):
    train(make_cfg(tmp_path, "updates=2", "imitation.updates=1", TEACHER))
    rows = read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    assert all(not row.get("guide/coef") for row in rows)


def test_a_resume_cannot_change_the_imitation(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=2", "imitation.updates=1", TEACHER))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    overrides = ["updates=3", "imitation.updates=2", f"ckpt_path={ckpt}"]
    with pytest.raises(ConfigError, match=r"^resume: imitation.updates cannot change when a run continues \(1 → 2\)"):
        train(make_cfg(tmp_path / "b", *overrides), overrides=overrides)
