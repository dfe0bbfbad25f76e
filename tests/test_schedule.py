"""policy=schedule, the static-final control env and the comparison with its schedule grid."""

from dataclasses import replace
from pathlib import Path

import pytest
from helpers.runs import compose_config, read_csv, tiny_overrides
from omegaconf import DictConfig

from tamiyo.core.actions import AlphaMode, BlueprintAction, FactoredAction, LifecycleOp
from tamiyo.core.errors import ConfigError
from tamiyo.core.observation import SlotReport, TrainingSignals
from tamiyo.core.slots import SlotConfig
from tamiyo.core.stages import SeedStage
from tamiyo.env.config import EnvConfig
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task
from tamiyo.evaluation.commands import compare_command, evaluate_command
from tamiyo.evaluation.comparison import schedule_grid
from tamiyo.policy import create_policy

SLOTS = SlotConfig.default()
TINY_ENV = tiny_overrides(env__task_options__train_subset=128, env__task_options__val_subset=64)


def compose_cfg(config: str, tmp_path: Path, *overrides: str) -> DictConfig:
    tiny = [o for o in TINY_ENV if not o.startswith("callbacks.")]
    return compose_config(config, tmp_path / "out", "progress=false", *overrides, tiny=tiny)


def signals(epoch: int = 1, seeds_used: int = 0, max_seeds: int = 3, plateau_epochs: int = 0,
            train_accuracy: float = 50.0) -> TrainingSignals:
    return TrainingSignals(
        epoch=epoch, max_epochs=25, train_loss=1.0, val_loss=1.0, loss_delta=0.0, train_accuracy=train_accuracy,
        val_accuracy=50.0, accuracy_delta=0.0, plateau_epochs=plateau_epochs, host_stabilized=True,
        best_val_accuracy=50.0, best_val_loss=1.0, loss_scale=2.3, host_params=690, seed_params=0,
        seeds_used=seeds_used, max_seeds=max_seeds, val_loss_history=(), val_accuracy_history=(),
    )


def seed(stage: SeedStage, epochs_in_stage: int = 1, moving: bool = False) -> SlotReport:
    return SlotReport(stage=stage, epochs_in_stage=epochs_in_stage, age=3, alpha=0.5,
                      alpha_mode=AlphaMode.UP if moving else AlphaMode.HOLD, blueprint=BlueprintAction.CONV_LIGHT)


def test_schedule_germinates_first_then_fossilizes_then_advances_the_readiest_seed():
    bundle = create_policy("schedule", SLOTS, "cnn", blueprint="conv_heavy", slots=["r0c2", "r0c0"], start_epoch=2,
                           tempo="fast", style="gated_gate")
    empty = [SlotReport.empty()] * 3
    assert bundle.decide(signals(epoch=1), empty).op == LifecycleOp.WAIT  # before start_epoch
    first = bundle.decide(signals(epoch=2), empty)
    assert (first.op, first.slot, first.blueprint_id, first.tempo_epochs) == (LifecycleOp.GERMINATE, 2, "conv_heavy", 3)
    assert first.alpha_algorithm.name == "GATE"
    growing = [SlotReport.empty(), SlotReport.empty(), seed(SeedStage.TRAINING)]
    assert (bundle.decide(signals(epoch=3), growing).op, bundle.decide(signals(epoch=3), growing).slot) == (
        LifecycleOp.GERMINATE, 0)
    assert bundle.decide(signals(epoch=3, seeds_used=3), growing).op == LifecycleOp.ADVANCE  # budget spent
    both = [seed(SeedStage.TRAINING, 1), SlotReport.empty(), seed(SeedStage.HOLDING)]
    assert (bundle.decide(signals(), both).op, bundle.decide(signals(), both).slot) == (LifecycleOp.FOSSILIZE, 2)
    # A blending seed whose alpha still moves cannot pass its gate: the training seed advances.
    ramping = [seed(SeedStage.TRAINING, 1), SlotReport.empty(), seed(SeedStage.BLENDING, 4, moving=True)]
    assert (bundle.decide(signals(), ramping).op, bundle.decide(signals(), ramping).slot) == (LifecycleOp.ADVANCE, 0)
    done = [seed(SeedStage.FOSSILIZED), SlotReport.empty(), seed(SeedStage.FOSSILIZED)]
    assert bundle.decide(signals(), done).op == LifecycleOp.WAIT


def test_schedule_with_prune_below_prunes_a_harmful_seed_once_alpha_settles_and_replants_its_slot():
    bundle = create_policy("schedule", SLOTS, "cnn", blueprint="conv_heavy", slots=["r0c1"], prune_below=0.0)
    harmful = SlotReport(stage=SeedStage.BLENDING, epochs_in_stage=5, age=7, alpha=1.0, counterfactual=-20.0,
                         alpha_mode=AlphaMode.HOLD, blueprint=BlueprintAction.CONV_HEAVY)
    prune = bundle.decide(signals(epoch=8, seeds_used=1), [SlotReport.empty(), harmful, SlotReport.empty()])
    assert (prune.op, prune.slot, prune.alpha_speed.name) == (LifecycleOp.PRUNE, 1, "INSTANT")
    ramping = replace(harmful, alpha=0.4, alpha_mode=AlphaMode.UP)  # pruning is illegal while alpha moves
    assert bundle.decide(signals(epoch=5, seeds_used=1), [SlotReport.empty(), ramping, SlotReport.empty()]).op == (
        LifecycleOp.ADVANCE)
    helpful = replace(harmful, stage=SeedStage.HOLDING, counterfactual=3.0)
    assert bundle.decide(signals(epoch=9, seeds_used=1), [SlotReport.empty(), helpful, SlotReport.empty()]).op == (
        LifecycleOp.FOSSILIZE)
    replant = bundle.decide(signals(epoch=15, seeds_used=1), [SlotReport.empty()] * 3)
    assert (replant.op, replant.slot) == (LifecycleOp.GERMINATE, 1)
    assert bundle.describe() == "schedule: conv_heavy in r0c1, prune_below=0.0"
    # Without prune_below the schedule is open loop: the same harmful seed is advanced, then fossilized.
    open_loop = create_policy("schedule", SLOTS, "cnn", blueprint="conv_heavy", slots=["r0c1"])
    assert open_loop.decide(signals(epoch=8, seeds_used=1), [SlotReport.empty(), harmful, SlotReport.empty()]).op == (
        LifecycleOp.ADVANCE)


def _first_epochs_at_r0c1(env: SeedEnv, bundle) -> tuple[list, list, list]:
    """The schedule's ops and the r0c1 seed's stage and gradient ratio over the first three epochs of episode 0."""
    signals_, reports = env.reset(seed=0, episode=0)
    ops, stages, ratios = [], [], []
    for _ in range(3):
        action = bundle.decide(signals_, reports)
        result = env.step(action)
        signals_, reports = result.signals, result.reports
        ops.append(action.op)
        stages.append(reports[1].stage)
        ratios.append(reports[1].gradient_ratio)
    return ops, stages, ratios


@pytest.mark.parametrize("failure_rate", [0.0, 1.0])
def test_schedule_with_prune_dead_prunes_a_failed_seed_after_its_training_epoch_before_it_blends(failure_rate):
    env = SeedEnv(make_task("mnist1d", train_subset=128, val_subset=64),
                  EnvConfig(max_epochs=8, seed_failure_rate=failure_rate, max_seeds=2, auto_advance=False))
    bundle = create_policy("schedule", SLOTS, "cnn", blueprint="conv_light", slots=["r0c1"], prune_dead=True)
    ops, stages, ratios = _first_epochs_at_r0c1(env, bundle)
    # GERMINATE, ADVANCE to TRAINING; its TRAINING epoch measures the gradient, and a dead seed is pruned at once.
    assert ops[:2] == [LifecycleOp.GERMINATE, LifecycleOp.ADVANCE] and stages[1] == SeedStage.TRAINING
    if failure_rate:
        assert ratios[1] == 0.0 and (ops[2], stages[2]) == (LifecycleOp.PRUNE, SeedStage.EMBARGOED)
    else:
        assert ratios[1] > 0.1 and (ops[2], stages[2]) == (LifecycleOp.ADVANCE, SeedStage.BLENDING)
    assert bundle.describe() == "schedule: conv_light in r0c1, prune_dead=True"


@pytest.mark.parametrize("failure_rate", [0.0, 1.0])
def test_schedule_with_prune_unstable_prunes_an_unstable_seed_in_training_before_it_blends(failure_rate):
    env = SeedEnv(make_task("mnist1d", train_subset=128, val_subset=64),
                  EnvConfig(max_epochs=8, seed_failure_rate=failure_rate, seed_faults=("unstable",), max_seeds=2,
                            auto_advance=False))
    bundle = create_policy("schedule", SLOTS, "cnn", blueprint="conv_light", slots=["r0c1"], prune_unstable=3.0)
    ops, stages, ratios = _first_epochs_at_r0c1(env, bundle)
    # The unstable seed's out-of-scale gradient shows in its TRAINING epoch, while the host never saw its output.
    assert ops[:2] == [LifecycleOp.GERMINATE, LifecycleOp.ADVANCE] and stages[1] == SeedStage.TRAINING
    if failure_rate:
        assert ratios[1] > 3.0 and (ops[2], stages[2]) == (LifecycleOp.PRUNE, SeedStage.EMBARGOED)
    else:
        assert 0.1 < ratios[1] < 3.0 and (ops[2], stages[2]) == (LifecycleOp.ADVANCE, SeedStage.BLENDING)
    assert bundle.describe() == "schedule: conv_light in r0c1, prune_unstable=3.0"


def test_schedule_on_plateau_germinates_only_once_the_host_stops_learning():
    bundle = create_policy("schedule", SLOTS, "cnn", blueprint="norm", slots=["r0c0"], germinate_on_plateau=2)
    empty = [SlotReport.empty()] * 3
    assert bundle.decide(signals(epoch=6, plateau_epochs=1), empty).op == LifecycleOp.WAIT
    grow = bundle.decide(signals(epoch=6, plateau_epochs=2), empty)
    assert (grow.op, grow.slot, grow.blueprint_id) == (LifecycleOp.GERMINATE, 0, "norm")
    growing = [seed(SeedStage.TRAINING), SlotReport.empty(), SlotReport.empty()]
    assert bundle.decide(signals(epoch=7, plateau_epochs=0), growing).op == LifecycleOp.ADVANCE  # then as ever
    assert bundle.describe() == "schedule: norm in r0c0, germinate_on_plateau=2"


def test_schedule_below_an_accuracy_germinates_only_a_host_that_underfits():
    bundle = create_policy("schedule", SLOTS, "cnn", blueprint="depthwise", slots=["r0c0"], germinate_below=80.0,
                           germinate_on_plateau=2)
    empty = [SlotReport.empty()] * 3
    assert bundle.decide(signals(epoch=6, plateau_epochs=2, train_accuracy=97.0), empty).op == LifecycleOp.WAIT
    assert bundle.decide(signals(epoch=6, plateau_epochs=1, train_accuracy=40.0), empty).op == LifecycleOp.WAIT
    grow = bundle.decide(signals(epoch=6, plateau_epochs=2, train_accuracy=40.0), empty)
    assert (grow.op, grow.slot, grow.blueprint_id) == (LifecycleOp.GERMINATE, 0, "depthwise")
    assert bundle.describe() == "schedule: depthwise in r0c0, germinate_on_plateau=2, germinate_below=80.0"


@pytest.mark.parametrize(("options", "message"), [
    ({"germinate_below": 0}, r"^schedule germinate_below must be a training accuracy in \(0, 100\] percent or null, "
                             r"got 0$"),
    ({"germinate_on_plateau": 0}, r"schedule germinate_on_plateau must be an integer ≥ 1 \(flat epochs\) or null"),
    ({"blueprint": "lora"}, r"schedule blueprint 'lora' is not available for a 'cnn' host"),
    ({"slots": ["r9c9"]}, r"schedule slots \['r9c9'\] are not enabled slots of this env"),
    ({"slots": []}, r"schedule slots must be 'all' or a non-empty list"),
    ({"tempo": "quick"}, r"schedule tempo must be one of \['fast', 'standard', 'slow'\], got 'quick'"),
    ({"start_epoch": -1}, r"schedule start_epoch must be an integer ≥ 0"),
    ({"prune_below": "low"}, r"schedule prune_below must be a finite number of accuracy points or null, got 'low'"),
    ({"prune_dead": "yes"}, r"schedule prune_dead must be true or false, got 'yes'"),
    ({"prune_unstable": 0}, r"schedule prune_unstable must be a gradient ratio > 0 or null, got 0"),
])
def test_bad_schedule_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        create_policy("schedule", SLOTS, "cnn", **options)


def test_schedule_evaluates_from_hydra_and_fossilizes_its_seed(tmp_path):
    evaluate_command(compose_cfg("evaluate", tmp_path, "env.max_epochs=8", "policy=schedule",
                                 "policy.blueprint=conv_heavy", "policy.slots=[r0c2]", "policy.tempo=fast", "seeds=1"))
    [row] = read_csv(tmp_path / "out" / "evaluation.csv")
    assert row["policy"] == "schedule: conv_heavy in r0c2, tempo=fast"
    assert row["architecture"] == "r0c2=conv_heavy/add"
    assert (row["seeds_germinated"], row["seeds_fossilized"]) == ("1", "1")
    assert float(row["objective"]) == pytest.approx(
        float(row["final_accuracy"]) - 0.05 * 100 * int(row["added_params"]) / int(row["host_params"]))


def test_planted_fossils_are_in_the_network_from_epoch_zero():
    task = make_task("mnist1d", train_subset=64, val_subset=32)
    plain = SeedEnv(task, EnvConfig(max_epochs=1, auto_advance=False))
    fixed = SeedEnv(task, EnvConfig(max_epochs=1, fossils={"r0c2": "conv_heavy/gate"}, auto_advance=False))
    plain_signals, _ = plain.reset(seed=0, episode=0)
    signals_0, reports = fixed.reset(seed=0, episode=0)
    assert reports[2].stage == SeedStage.FOSSILIZED and reports[2].alpha == 1.0
    assert signals_0.seed_params > 0 and signals_0.host_params == plain_signals.host_params
    host = dict(plain.model.host.named_parameters())
    assert all((p == host[name]).all() for name, p in fixed.model.host.named_parameters())  # same host init
    result = fixed.step(FactoredAction.wait())
    assert result.info["slot_seeds"] == {"r0c2": "conv_heavy/gate"}
    with pytest.raises(ValueError, match=r"fossil 'conv_heavy' must be 'blueprint/algorithm\[@alpha\]\[!fault\]'"):
        EnvConfig(fossils={"r0c2": "conv_heavy"})


def test_schedule_grid_covers_every_blueprint_by_each_slot_and_all():
    grid = schedule_grid("all", ["each", "all"], "cnn", ["r0c0", "r0c1", "r0c2"])
    assert len(grid) == 7 * 4
    assert grid[:4] == [{"blueprint": "conv_light", "slots": s} for s in (["r0c0"], ["r0c1"], ["r0c2"], "all")]
    with pytest.raises(ValueError, match="schedule_grid.slots entries are 'each', 'all' or lists of slot ids"):
        schedule_grid("all", ["some"], "cnn", ["r0c0"])


def test_comparison_picks_the_schedule_on_training_seeds_and_adds_static_final_controls(tmp_path):
    compare_command(compose_cfg(
        "compare", tmp_path, "env.max_epochs=2", "seeds=2", "train_seeds=[5]", "baselines=[static,heuristic]",
        "schedule_grid.blueprints=[conv_light,conv_small]", "schedule_grid.slots=[[r0c2],all]",
        "static_final=[heuristic,schedule]", "reference=heuristic"))
    out = tmp_path / "out"
    searched = read_csv(out / "schedule_grid.csv")
    # Never growing, then blueprints × slots × families (open loop, prune_dead).
    policies = list(dict.fromkeys(r["policy"] for r in searched))
    assert {r["seed"] for r in searched} == {"5"} and len(policies) == 9
    assert policies[0] == "schedule: none (static)"
    assert policies[5:] == [f"{p}, prune_dead=True" for p in policies[1:5]]
    order = list(dict.fromkeys(r["policy"] for r in searched))  # grid order; the first best wins a tie
    means = {p: sum(float(r["objective"]) for r in searched if r["policy"] == p) for p in order}
    best = max(order, key=means.get)
    rows = read_csv(out / "comparison.csv")
    assert [r["policy"] for r in rows] == ["static", "heuristic", best, "static-final: heuristic",
                                           f"static-final: {best}"]
    episodes = read_csv(out / "comparison_episodes.csv")
    assert {r["seed"] for r in episodes} == {"0", "1"}
    by_policy = {r["policy"]: r for r in rows}
    heuristic = [r for r in episodes if r["policy"] == "heuristic"]
    static = [r for r in episodes if r["policy"] == "static"]
    expected = sum(float(s["objective"]) - float(h["objective"]) for s, h in zip(static, heuristic, strict=True)) / 2
    assert float(by_policy["static"]["diff_objective_mean"]) == pytest.approx(expected)
    assert by_policy["heuristic"]["diff_objective_mean"] == "nan"
    controls = [r for r in episodes if r["policy"] == f"static-final: {best}"]
    grown = [r for r in episodes if r["policy"] == best]
    assert [c["added_params"] for c in controls] == [g["added_params"] for g in grown]
    assert "| controller | n | objective |" in (out / "comparison.md").read_text()
    assert (out / "comparison_pareto.png").stat().st_size > 0
    assert (out / "comparison_compute.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_comparison_runs_a_baseline_given_as_a_policy_config_and_names_it_by_its_settings(tmp_path):
    closed_loop = "{name:schedule,blueprint:conv_light,slots:[r0c2],prune_below:1.5}"
    compare_command(compose_cfg("compare", tmp_path, "env.max_epochs=2", "seeds=1", "schedule_grid=null",
                                f"baselines=[static,{closed_loop}]", "static_final=[schedule_1]",
                                "reference=schedule_1"))
    out = tmp_path / "out"
    label = "schedule: conv_light in r0c2, prune_below=1.5"
    rows = read_csv(out / "comparison.csv")
    assert [r["policy"] for r in rows] == ["static", label, f"static-final: {label}"]
    assert float(rows[0]["diff_objective_mean"]) == pytest.approx(
        float(rows[0]["objective_mean"]) - float(rows[1]["objective_mean"]))
    assert (out / "lifecycle_schedule_1.png").stat().st_size > 0
    with pytest.raises(ConfigError, match=r"baselines entries are policy names or configs with a name, got"):
        compare_command(compose_cfg("compare", tmp_path, "schedule_grid=null", "reference=null", "static_final=[]",
                                    "baselines=[{blueprint:conv_light}]"))


def test_comparison_refuses_selection_on_the_held_out_seeds(tmp_path):
    with pytest.raises(ConfigError, match=r"train_seeds \[0\] and seeds \[0, 1\] overlap"):
        compare_command(compose_cfg("compare", tmp_path, "seeds=2", "train_seeds=[0]", "reference=null",
                                    "static_final=[]"))


def test_comparison_refuses_names_of_controllers_it_does_not_run(tmp_path):
    expected = (r"static_final and reference must name controllers of this comparison "
                r"\['static', 'random', 'heuristic', 'grow_on_plateau'\], got \['schedule'\]")
    with pytest.raises(ConfigError, match=expected):
        compare_command(compose_cfg("compare", tmp_path, "schedule_grid=null", "reference=null",
                                    "static_final=[schedule]"))
    with pytest.raises(ConfigError, match=r"^static_final must be a list of names or auto, got 'all'$"):
        compare_command(compose_cfg("compare", tmp_path, "schedule_grid=null", "reference=null", "static_final=all"))
