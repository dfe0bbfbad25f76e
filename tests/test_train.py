"""End-to-end runs of the training entry point on tiny configs (in process, CPU)."""

import json
import math
import re
import warnings
from pathlib import Path

import pytest
import torch
from helpers.runs import compose_config, read_csv, read_metrics, tiny_overrides
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tamiyo.conf import CONF_DIR
from tamiyo.core.actions import HEAD_NAMES
from tamiyo.core.errors import ConfigError
from tamiyo.core.slots import SlotConfig
from tamiyo.launch.train import train
from tamiyo.policy import create_policy
from tamiyo.training.checkpoints import CheckpointError, CheckpointMismatchError, check_op_conditioning

TINY = tiny_overrides(updates=2, env__num_envs=2, ppo__update_epochs=2, ppo__num_minibatches=2)


def make_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_config("train", tmp_path / "run", *overrides, tiny=TINY)


@pytest.mark.parametrize("policy", ["lstm", "heuristic", "random", "static", "schedule"])
def test_every_policy_trains_logs_and_checkpoints(tmp_path, policy):
    value = train(make_cfg(tmp_path, f"policy={policy}"))
    assert math.isfinite(value)
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 2  # one row per update
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    for row in rows:
        assert 0.0 <= float(row["episode/final_accuracy"]) <= 100.0
        assert float(row["env_steps"]) > 0
        charge = 0.05 * 100 * float(row["episode/seed_params"]) / float(row["episode/host_params"])
        assert float(row["episode/objective"]) == pytest.approx(float(row["episode/final_accuracy"]) - charge)
    if policy == "static":
        assert all(float(row["ops/wait"]) == 3.0 for row in rows)  # 3 epochs, always WAIT
        assert all(float(row["episode/seeds_germinated"]) == 0.0 for row in rows)
    if policy == "schedule":  # the default schedule germinates in all 3 slots, one per epoch
        assert all(float(row["episode/seeds_germinated"]) == 3.0 for row in rows)


# `python train.py debug=fast seed=3 <overrides>` measured at commit 08dcdd4, before the policy and reward groups
# became dataclasses: episode return, objective and final accuracy of its two updates. The same seed must give the
# same episodes whatever route the config takes to the objects (thread counts do not change them either).
BEFORE_THE_CONFIG_ROUTE = {
    "reward=objective": ([-0.239130437374115, 0.9248188138008118], [7.57336950302124, 7.956068992614746],
                         [7.8125, 8.59375]),
    "reward=shaped": ([1.017047643661499, 0.7957912683486938], [7.57336950302124, 7.956068992614746],
                      [7.8125, 8.59375]),
    "policy=grow_on_plateau reward=sparse env.max_epochs=8": (
        [0.07030770182609558, 0.10155770182609558], [6.85733699798584, 9.98233699798584], [7.03125, 10.15625]),
}


@pytest.mark.parametrize("overrides", BEFORE_THE_CONFIG_ROUTE)
def test_a_tiny_run_gives_the_episodes_it_gave_before_the_config_route_changed(tmp_path, overrides):
    train(compose_config("train", tmp_path / "run", "debug=fast", "seed=3", "callbacks.progress_bar=null",
                         *overrides.split(), tiny=[]))
    rows = read_metrics(tmp_path / "run")
    measured = tuple([float(row[key]) for row in rows]
                     for key in ("episode/return", "episode/objective", "episode/final_accuracy"))
    for got, expected in zip(measured, BEFORE_THE_CONFIG_ROUTE[overrides], strict=True):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_ppo_logs_every_head_and_stays_on_policy(tmp_path, capsys):
    train(make_cfg(tmp_path, "updates=3"))
    rows = read_metrics(tmp_path / "run")
    # The closing summary: plain labels, and the objective of the first and last updates (one each of 3).
    summary = capsys.readouterr().out.splitlines()
    objective = [float(row["episode/objective"]) for row in rows]
    assert f"metrics: {tmp_path / 'run' / 'csv' / 'metrics.csv'}" in summary
    assert f"episode/return (last update): {float(rows[-1]['episode/return']):.2f}" in summary
    assert summary[-1] == (f"episode/objective: {objective[0]:.2f} over the first 1 update(s), "
                           f"{objective[-1]:.2f} over the last 1")
    # One complete row per update: rollout statistics, PPO diagnostics and the learning rate together.
    assert len(read_csv(tmp_path / "run" / "csv" / "metrics.csv")) == len(rows) == 3
    assert all(row["episode/return"] and row["loss/total"] and float(row["lr"]) > 0 for row in rows)
    for head in HEAD_NAMES:
        assert f"entropy/{head}" in rows[0] and f"clip_fraction/{head}" in rows[0]
    for row in rows:
        # On-policy invariant: at the first minibatch of every update, recomputed log-probs == stored ones.
        assert float(row["onpolicy/max_logprob_gap"]) < 1e-5
        assert math.isfinite(float(row["loss/total"]))
        assert 0.0 <= float(row["entropy/op"]) <= 1.0 + 1e-6
        assert float(row["grad_norm"]) > 0.0
        # The critic against the truth at the first step, both on the normalised reward scale.
        assert math.isfinite(float(row["value/first_step"])) and math.isfinite(float(row["return/first_step"]))


def test_bf16_runs_end_to_end(tmp_path):
    value = train(make_cfg(tmp_path, "precision=bf16"))
    assert math.isfinite(value)
    rows = read_metrics(tmp_path / "run")
    assert all(math.isfinite(float(r["loss/total"])) for r in rows)
    # On-policy invariant under bf16 too: the policy network computes in its own precision.
    assert all(float(r["onpolicy/max_logprob_gap"]) < 1e-5 for r in rows)


def test_fp16_on_cpu_is_refused_with_a_one_line_hint(tmp_path):
    with pytest.raises(ConfigError, match=r"^precision=fp16 needs a CUDA GPU; on CPU use precision=bf16$"):
        train(make_cfg(tmp_path, "precision=fp16"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_compile_default_runs(tmp_path):
    value = train(make_cfg(tmp_path, "compile=default", "updates=1", "ppo.update_epochs=1", "ppo.num_minibatches=1"))
    assert math.isfinite(value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("ppo.lr=-0.001", "ppo.lr"),
        ("env.num_envs=0", "env.num_envs"),
        ("ppo.gamma=1.5", "ppo.gamma"),
        ("ppo.ratio=sum", "ppo.ratio"),
        ("updates=two", "updates"),
        ("precision=fp8", "precision"),
        ("compile=fastest", "compile"),
        ("+env.num_workers=2", "env.num_workers"),
        ("+ppo.lrr=1", "ppo.lrr"),
    ],
)
def test_invalid_values_fail_naming_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=rf"^{key} "):
        train(make_cfg(tmp_path, override))


def resume(tmp_path: Path, *overrides: str) -> float:
    """Resume as `python train.py <overrides>` would: only `overrides` change the saved run config."""
    return train(make_cfg(tmp_path, *overrides), overrides=list(overrides))


def test_resume_continues_exactly_in_the_same_run(tmp_path):
    full = tmp_path / "full"
    train(make_cfg(full, "updates=3"))
    part = tmp_path / "part"
    train(make_cfg(part, "updates=2"))
    ckpt = part / "run" / "checkpoints" / "last.ckpt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resume(tmp_path / "resumed", "updates=3", f"ckpt_path={ckpt}")
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    assert not (tmp_path / "resumed" / "run").exists()  # the run continued in its own dir
    expected = read_metrics(full / "run")
    got = read_metrics(part / "run")
    assert [row["epoch"] for row in got] == ["0", "1", "2"]  # one history: two updates, then the third
    for key in ("episode/return", "loss/total", "entropy/op", "approx_kl", "episode/final_accuracy", "grad_norm"):
        assert [row[key] for row in got] == [row[key] for row in expected], key
    # The best checkpoint is the best update of the whole run, before and after the resume.
    returns = [float(row["episode/return"]) for row in got]
    best = max(range(3), key=lambda update: returns[update])
    assert [p.name for p in (part / "run" / "checkpoints").glob("best-*.ckpt")] == [f"best-update{best:04d}.ckpt"]


def test_resume_with_only_ckpt_path_keeps_the_runs_settings(tmp_path, caplog):
    train(make_cfg(tmp_path / "a", "updates=1", "precision=bf16", "env.max_epochs=2", "ppo.lr=0.001"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    caplog.set_level("INFO", logger="tamiyo")
    resume(tmp_path / "b", "updates=2", f"ckpt_path={ckpt}")  # the command's defaults are not applied
    assert f"resuming {ckpt}: 1 updates done, training to 2" in caplog.text  # which file, from which update, to which
    config = torch.load(ckpt, weights_only=True)["tamiyo_run_config"]
    assert (config["precision"], config["env"]["max_epochs"], config["ppo"]["lr"]) == ("bf16", 2, 0.001)
    assert [row["epoch"] for row in read_metrics(tmp_path / "a" / "run")] == ["0", "1"]
    trace = json.loads((tmp_path / "a" / "run" / "plots" / "lifecycle.json").read_text())
    assert trace["episodes"][0]["label"].startswith("last rollout (update 1)")
    assert len(trace["episodes"][0]["stages"]) == 2  # the resumed update ran 2-epoch episodes


def test_resume_refuses_a_results_changing_override_and_warns_on_ppo(tmp_path, caplog):
    train(make_cfg(tmp_path / "a", "updates=1"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"^resume: env.max_epochs cannot change when a run continues \(3 → 4\)"):
        resume(tmp_path / "b", "updates=2", "env.max_epochs=4", f"ckpt_path={ckpt}")
    resume(tmp_path / "b", "updates=2", "ppo.lr=0.0003", f"ckpt_path={ckpt}")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "resume" in r.getMessage()]
    assert warnings == ["resume changes the run's results from here on: ppo.lr 0.001 → 0.0003"]


def test_resume_with_no_updates_left_is_a_one_line_error(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=2"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    for updates in (1, 2):
        with pytest.raises(ConfigError, match=rf"^updates={updates}, but checkpoint {ckpt} has done 2 updates already"):
            resume(tmp_path / "b", f"updates={updates}", f"ckpt_path={ckpt}")


def test_checkpoint_of_another_policy_shape_is_refused(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=1"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match=r"policy.hidden_dim cannot change when a run continues \(128 → 64\)"):
        resume(tmp_path / "b", "policy.hidden_dim=64", f"ckpt_path={ckpt}")


def test_checkpoint_of_the_other_op_conditioning_form_is_refused(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=1"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    # A resume may not change the policy's shape ...
    with pytest.raises(ConfigError, match=r"policy.op_conditioning cannot change when a run continues"):
        resume(tmp_path / "b", "updates=2", "policy.op_conditioning=false", f"ckpt_path={ckpt}")
    # ... and weights of one form never load into a network of the other.
    bundle = create_policy("lstm", SlotConfig.default(), "cnn", op_conditioning=False)
    message = (r"^checkpoint holds a policy with policy.op_conditioning=true, "
               r"the config's is policy.op_conditioning=false$")
    with pytest.raises(CheckpointMismatchError, match=message):
        check_op_conditioning(torch.load(ckpt, weights_only=True)["state_dict"], bundle, "policy_net.")


def test_init_from_starts_a_new_run_on_another_env_from_a_checkpoints_policy(tmp_path, caplog):
    train(make_cfg(tmp_path / "a", "updates=1"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    source = torch.load(ckpt, weights_only=True)
    caplog.set_level("INFO", logger="tamiyo")
    train(make_cfg(tmp_path / "b", "updates=1", "env=digits", f"init_from={ckpt}"))
    assert f"warm start from {ckpt}: policy weights and observation normaliser" in caplog.text
    tuned = torch.load(tmp_path / "b" / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert tuned["epoch"] == 0  # a new run: its own update count
    # Four Adam steps of lr 1e-3 move each weight by at most ~4e-3; a fresh initialisation differs by far more.
    policy = {k: v for k, v in source["state_dict"].items() if k.startswith("policy_net.")}
    assert max(float((tuned["state_dict"][k] - v).abs().max()) for k, v in policy.items()) < 0.01
    counts = [c["RolloutDataModule"]["obs_normalizer"]["count"] for c in (source, tuned)]
    assert counts[1] == counts[0] + 2 * 3  # the source's statistics plus the new run's 2 envs × 3 epochs


def test_init_from_an_older_narrower_observation_starts_new_columns_at_zero_and_resets_heads(tmp_path, caplog):
    train(make_cfg(tmp_path / "a", "updates=1"))
    source = torch.load(tmp_path / "a" / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    # A checkpoint written before the last 2 observation columns existed.
    hparams, weights = source["hyper_parameters"], source["state_dict"]
    older = dict(source, hyper_parameters={**hparams, "obs_dim": hparams["obs_dim"] - 2})
    older["state_dict"] = {**weights, "policy_net.feature.0.weight": weights["policy_net.feature.0.weight"][:, :-2]}
    stats = source["RolloutDataModule"]["obs_normalizer"]
    older["RolloutDataModule"] = {**source["RolloutDataModule"],
                                  "obs_normalizer": {**stats, "mean": stats["mean"][:-2], "var": stats["var"][:-2]}}
    ckpt = tmp_path / "older.ckpt"
    torch.save(older, ckpt)
    caplog.set_level("INFO", logger="tamiyo")
    train(make_cfg(tmp_path / "b", "updates=1", f"init_from={ckpt}", "init_reset_heads=[blueprint]"))
    assert "2 new observation columns at zero weight; heads ['blueprint'] reset" in caplog.text
    tuned = torch.load(tmp_path / "b" / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    weight = tuned["policy_net.feature.0.weight"]
    # Four Adam steps of lr 1e-3 move a weight by at most ~4e-3: the old columns are the checkpoint's, the new
    # ones started at 0 (an orthogonal initialisation would put entries of ~0.1 there).
    assert float((weight[:, :-2] - older["state_dict"]["policy_net.feature.0.weight"]).abs().max()) < 0.01
    assert float(weight[:, -2:].abs().max()) < 0.01
    with pytest.raises(ConfigError, match=r"^init_reset_heads: unknown policy heads \['graft'\]; heads: \['slot', "):
        train(make_cfg(tmp_path / "c", "updates=1", f"init_from={ckpt}", "init_reset_heads=[graft]"))
    refusal = r"^init_reset_heads=\['blueprint'\] resets heads of a warm start: give init_from"
    with pytest.raises(ConfigError, match=refusal):
        train(make_cfg(tmp_path / "d", "updates=1", "init_reset_heads=[blueprint]"))


def test_init_from_refuses_a_policy_it_does_not_fit(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=1"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointMismatchError, match=r"its policy.hidden_dim is 128, the config's is 64"):
        train(make_cfg(tmp_path / "b", "policy.hidden_dim=64", f"init_from={ckpt}"))
    with pytest.raises(ConfigError, match=r"^init_from: policy 'heuristic' has no weights to start from$"):
        train(make_cfg(tmp_path / "c", "policy=heuristic", f"init_from={ckpt}"))


def test_resume_latest_finds_the_newest_single_run(tmp_path):
    runs = tmp_path / "outputs" / "train" / "runs"
    train(make_cfg(tmp_path, "updates=1", f"paths.output_dir={runs / 'x'}"))
    sweep_job = tmp_path / "outputs" / "train" / "multiruns" / "s" / "0"
    train(make_cfg(tmp_path, "updates=1", f"paths.output_dir={sweep_job}"))  # newer, but a sweep job
    resume(tmp_path, "updates=2", "ckpt_path=latest_any")  # sweep jobs count when asked for
    assert len(read_metrics(runs / "x")) == 1 and len(read_metrics(sweep_job)) == 2
    value = resume(tmp_path, "updates=2", "ckpt_path=latest")  # the sweep job is newer, but not a single run
    assert math.isfinite(value)
    assert len(read_metrics(runs / "x")) == 2


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope.ckpt: no such file$"):
        train(make_cfg(tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}"))


def test_checkpoint_loads_with_weights_only(tmp_path):
    train(make_cfg(tmp_path, "updates=1"))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "RolloutDataModule" in ckpt and "obs_normalizer" in ckpt["RolloutDataModule"]
    assert ckpt["hyper_parameters"]["slot_ids"] == ["r0c0", "r0c1", "r0c2"]


def test_enabled_slots_shape_the_slot_head(tmp_path):
    train(make_cfg(tmp_path, "updates=1", "env.slots=[r0c0,r0c2]"))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["slot_ids"] == ["r0c0", "r0c2"]
    # base, 2 slots, context, 2 seed gradients, 2 gradient-measured flags
    assert ckpt["hyper_parameters"]["obs_dim"] == 23 + 39 * 2 + 2 + 2 + 2 + 1


def test_checkpoint_of_another_slot_configuration_is_refused(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=1", "env.slots=[r0c0,r0c2]"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    change = r"env.slots cannot change .*\(\['r0c0', 'r0c2'\] → \['r0c0', 'r0c1', 'r0c2'\]\)"
    with pytest.raises(ValueError, match=change):
        resume(tmp_path / "b", "updates=2", "env.slots=[r0c0,r0c1,r0c2]", f"ckpt_path={ckpt}")


def test_unknown_slot_id_is_a_clear_error(tmp_path):
    unknown = r"env.slots: unknown slot id .r0c7.; this host's slots are \[.r0c0., .r0c1., .r0c2.\]"
    with pytest.raises(ConfigError, match=unknown):
        train(make_cfg(tmp_path, "env.slots=[r0c0,r0c7]"))


@pytest.mark.parametrize("logger", ["tensorboard", "mlflow"])
def test_optional_loggers_write_their_files(tmp_path, logger):
    train(make_cfg(tmp_path, "updates=1", f"logger={logger}"))
    if logger == "tensorboard":
        assert list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    else:
        metric_files = list((tmp_path / "outputs" / "mlruns").rglob("metrics/episode/return"))
        assert metric_files and metric_files[0].read_text().strip()


def test_per_head_metrics_average_only_over_relevant_steps():
    from tamiyo.training.module import _MetricTotals

    totals = _MetricTotals()
    # Minibatch 1: 3 GERMINATE steps with blueprint entropy 0.6; minibatch 2: no GERMINATE step (NaN).
    totals.add({"entropy/blueprint": torch.tensor(0.6), "relevant_steps/blueprint": torch.tensor(3.0),
                "approx_kl": torch.tensor(0.01)})
    totals.add({"entropy/blueprint": torch.tensor(float("nan")), "relevant_steps/blueprint": torch.tensor(0.0),
                "approx_kl": torch.tensor(0.03)})
    keys, table = totals.table()
    means = _MetricTotals.means(keys, [table])
    assert means["entropy/blueprint"] == pytest.approx(0.6)
    assert means["approx_kl"] == pytest.approx(0.02)


@pytest.mark.parametrize(("experiment", "expected"), [
    ("mnist1d_long", {"updates": 200, "env.num_envs": 8, "ppo.num_minibatches": 4, "policy.name": "lstm"}),
    ("digits_heuristic", {"updates": 5, "env.task": "digits", "policy.name": "heuristic"}),
    ("mixed_controller", {"updates": 50, "env.num_envs": 16, "env.seed_failure_rate": 0.3,
                          "ppo.critic_warmup_updates": 5, "ppo.lr": 5e-4}),
    ("mixed_imitation", {"updates": 50, "imitation.updates": 10, "imitation.teacher.name": "schedule",
                         "imitation.teacher.blueprint": "conv_heavy", "imitation.teacher.prune_dead": True,
                         "imitation.entropy_coef.blueprint": 0.6}),
    ("mnist1d_scratch", {"updates": 60, "env.num_envs": 8, "env.auto_advance": True, "env.task": "mnist1d"}),
    ("mixed_scratch", {"updates": 60, "env.num_envs": 8, "env.auto_advance": True, "env.seed_failure_rate": 0.3,
                       "env.max_seeds": 5, "env.auto_prune_dead": True, "ppo.ops_from_update.prune": 20,
                       "ppo.ops_from_update.set_alpha_target": 20, "init_from": None, "imitation.updates": 0}),
])
def test_experiment_configs_compose(experiment, expected):
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"])
    for key, value in expected.items():
        assert OmegaConf.select(cfg, key) == value, key


@pytest.mark.parametrize(("override", "message"), [
    ("policy.op_init_logits.prune=nan", "op_init_logits.prune must be finite, got nan"),
    ("policy.hidden_dim=1", "hidden_dim must be ≥ 2, got 1"),
])
def test_bad_policy_option_is_a_config_error(tmp_path, override, message):
    with pytest.raises(ConfigError, match=rf"^policy config: {re.escape(message)}$"):
        train(make_cfg(tmp_path, override))


def test_resume_of_a_run_saved_before_a_setting_existed_names_the_setting(tmp_path):
    train(make_cfg(tmp_path / "a", "updates=1"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["tamiyo_run_config"]["ppo"]["critic_warmup_updates"]  # as saved by an older tamiyo
    torch.save(checkpoint, ckpt)
    with pytest.raises(ConfigError, match=r"^resume: the run's saved config has no ppo.critic_warmup_updates .*"
                                          r"e.g. ppo.critic_warmup_updates=0$"):
        resume(tmp_path / "b", "updates=2", f"ckpt_path={ckpt}")
    resume(tmp_path / "b", "updates=2", "ppo.critic_warmup_updates=0", f"ckpt_path={ckpt}")
    assert [row["epoch"] for row in read_metrics(tmp_path / "a" / "run")] == ["0", "1"]


def test_per_head_entropy_coefficients_reach_the_run(tmp_path):
    per_head = {head: 0.1 if head == "blueprint" else 0.01 for head in HEAD_NAMES}
    text = ",".join(f"{head}:{coef}" for head, coef in per_head.items())
    train(make_cfg(tmp_path, "updates=1", f"ppo.entropy_coef={{{text}}}"))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["ppo"]["entropy_coef"] == per_head
