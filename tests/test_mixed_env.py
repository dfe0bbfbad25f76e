"""Episode distributions: envs whose episodes draw their task and host width, and seeds that fail."""

import dataclasses

import pytest
from helpers.runs import compose_config, read_csv, read_metrics, tiny_overrides

from tamiyo.core.actions import FactoredAction, LifecycleOp, blueprint_from_id
from tamiyo.core.legality import IllegalActionError
from tamiyo.env.blueprints import FailedSeed, count_params
from tamiyo.env.config import EnvConfig
from tamiyo.env.gym_env import SeedLifecycleEnv
from tamiyo.env.hosts import build_host
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task, make_tasks
from tamiyo.evaluation.commands import compare_command
from tamiyo.launch.train import train

WAIT = FactoredAction.wait()


@pytest.fixture(scope="module")
def two_tasks():
    return make_tasks(["mnist1d", "digits"], train_subset=128, val_subset=64)


def test_host_width_scales_every_block_and_the_transformer_width():
    task = make_task("mnist1d", train_subset=8, val_subset=8)
    assert [p.channels for p in build_host(task).injection_points] == [4, 8, 16]
    assert [p.channels for p in build_host(task, 2.0).injection_points] == [8, 16, 32]
    assert [p.channels for p in build_host(task, 0.1).injection_points] == [1, 1, 2]
    lm = make_task("pysource", context_length=8, train_subset=8, val_subset=8)
    assert [p.channels for p in build_host(lm, 0.5).injection_points] == [32, 32, 32]
    with pytest.raises(ValueError, match="host width must be a positive number, got 0"):
        build_host(task, 0)


def test_episodes_draw_every_task_and_width_reproducibly_and_observe_their_kind(two_tasks):
    config = EnvConfig(max_epochs=1, host_widths=(0.5, 1.0, 2.0), auto_advance=False)
    env = SeedEnv(two_tasks, config, env_index=3)
    kinds = []
    for episode in range(24):
        signals, _ = env.reset(seed=7, episode=episode)
        kinds.append((env.task.name, env.host_width, signals.host_params))
        assert signals.input_dims == {"mnist1d": 1, "digits": 2}[env.task.name]  # the observation tells the kind
    assert {(name, width) for name, width, _ in kinds} == {(n, w) for n in ("mnist1d", "digits") for w in (0.5, 1, 2)}
    for name, width, host_params in kinds:  # the host is the drawn task's, at the drawn width
        assert host_params == count_params(build_host(make_task(name), width))
    again = SeedEnv(two_tasks, config, env_index=3)
    for episode in (5, 17):
        again.reset(seed=7, episode=episode)
        assert (again.task.name, again.host_width) == kinds[episode][:2]
    result = again.step(WAIT)
    assert (result.info["task"], result.info["host_width"]) == kinds[17][:2]


def test_tasks_whose_hosts_differ_cannot_share_an_env(two_tasks):
    lm = make_task("pysource", context_length=8, train_subset=8, val_subset=8)
    with pytest.raises(ValueError, match="tasks 'mnist1d' and 'pysource' cannot share an env: their hosts have cnn"):
        SeedEnv((two_tasks[0], lm))
    with pytest.raises(ValueError, match="the task list is empty"):
        make_tasks([])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("host_widths", (), r"^env.host_widths must be a list of numbers > 0, got \[\]$"),
    ("host_widths", (1.0, -2.0), r"^env.host_widths must be a list of numbers > 0, got \[1.0, -2.0\]$"),
    ("seed_failure_rate", 1.5, r"^env.seed_failure_rate must be a number in \[0, 1\], got 1.5$"),
])
def test_bad_episode_distribution_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        EnvConfig(**{field: value})


def _grow_seed_in_r0c0(env: SeedEnv, epochs: int) -> list[dict]:
    """Germinate conv_heavy in r0c0, then ADVANCE whenever legal; the step infos."""
    infos = [env.step(dataclasses.replace(WAIT, op=LifecycleOp.GERMINATE, slot=0,
                                          blueprint=blueprint_from_id("conv_heavy"))).info]
    for _ in range(epochs - 1):
        action = dataclasses.replace(WAIT, op=LifecycleOp.ADVANCE, slot=0)
        try:
            env.check(action)
        except IllegalActionError:
            action = WAIT
        infos.append(env.step(action).info)
    return infos


def test_a_failed_seed_is_paid_for_never_learns_and_contributes_less():
    task = make_task("mnist1d", train_subset=1000, val_subset=500)  # enough data for a healthy seed to help
    infos, seeds = {}, {}
    for rate in (0.0, 1.0):
        env = SeedEnv(task, EnvConfig(max_epochs=10, seed_failure_rate=rate, auto_advance=False))
        env.reset(seed=0, episode=0)
        infos[rate] = _grow_seed_in_r0c0(env, 10)
        seeds[rate] = env.model.slot("r0c0").seed
    healthy, failed = infos[0.0], infos[1.0]
    assert isinstance(seeds[1.0], FailedSeed) and not isinstance(seeds[0.0], FailedSeed)
    assert failed[-1]["seed_params"] == healthy[-1]["seed_params"] > 0  # it is paid for
    assert (failed[-1]["seeds_failed"], healthy[-1]["seeds_failed"]) == (1, 0)
    assert all(p.grad is None for p in seeds[1.0].parameters())  # it never learns
    assert failed[-1]["slot_stages"]["r0c0"] == "HOLDING"
    blended = slice(-4, None)
    contribution = {rate: sum(i["counterfactuals"]["r0c0"] for i in infos[rate][blended]) / 4 for rate in infos}
    assert contribution[1.0] < contribution[0.0] - 2.0


def test_mixed_env_config_builds_a_gym_env_with_its_distribution(tmp_path):
    cfg = compose_config("train", tmp_path / "run", "env=mixed")
    assert list(cfg.env.task) == ["mnist1d", "digits"] and cfg.env.seed_failure_rate > 0
    env = SeedLifecycleEnv(list(cfg.env.task), train_subset=64, val_subset=32, max_epochs=1,
                           host_widths=list(cfg.env.host_widths), seed_failure_rate=cfg.env.seed_failure_rate)
    names = set()
    for episode in range(8):
        env.reset(seed=1, options={"episode": episode})
        _, _, _, _, step_info = env.step(WAIT.to_indices())
        names.add(step_info["task"])
    assert names == {"mnist1d", "digits"}


def test_comparison_on_a_mixed_env_reports_each_episodes_kind(tmp_path):
    compare_command(compose_config("compare", tmp_path / "out", "env=mixed", "env.max_epochs=2", "seeds=4",
                                   "baselines=[static,heuristic]", "schedule_grid=null", "static_final=[]",
                                   "reference=static"))
    episodes = read_csv(tmp_path / "out" / "comparison_episodes.csv")
    assert len(episodes) == 8
    assert {r["task"] for r in episodes} == {"mnist1d", "digits"}
    assert all(float(r["host_width"]) in (0.5, 1.0, 2.0) for r in episodes)
    # The heuristic germinates seeds, a third of which fail on env=mixed; the static host never germinates.
    assert all(r["seeds_failed"] == "0" for r in episodes if r["policy"] == "static")
    assert all(0 <= int(r["seeds_failed"]) <= int(r["seeds_germinated"]) for r in episodes)
    static = [r for r in episodes if r["policy"] == "static"]
    mnist1d = [float(r["objective"]) for r in static if r["task"] == "mnist1d"]
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "Mean objective by kind of episode (episodes):" in table
    assert f"| static | {sum(mnist1d) / len(mnist1d):.2f} ({len(mnist1d)}) |" in table
    assert (tmp_path / "out" / "comparison_pareto.png").stat().st_size > 0
    assert (tmp_path / "out" / "comparison_compute.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_on_a_mixed_env_logs_the_failed_seeds(tmp_path):
    train(compose_config("train", tmp_path / "run", "env=mixed", "env.seed_failure_rate=1.0", "policy=schedule",
                         "updates=1", tiny=tiny_overrides(env__num_envs=2)))
    [row] = read_metrics(tmp_path / "run")
    assert float(row["episode/seeds_germinated"]) == 3.0  # the default schedule: one seed per slot
    assert float(row["episode/seeds_failed"]) == 3.0
