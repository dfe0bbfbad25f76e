"""Multirun sweeps: parallel and cluster launchers, failure isolation, Optuna search."""

import math
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from helpers.runs import run_cli, tiny_overrides
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import InterpolationResolutionError

from tamiyo.conf import CONF_DIR
from tamiyo.core.errors import ConfigError
from tamiyo.launch.resources import parallel_jobs
from tamiyo.launch.sweep import ERROR_FILE, SweepJobFailed, failed_jobs, run_sweep_job, varying_overrides

# Hydra's notice about matching our launcher files to the plugins' schemas (cli.py silences it, but
# pytest restores the warning filters for every test) and optuna 2.x's SQLAlchemy 2.0 notice.
pytestmark = [
    pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/\w+' is validated against ConfigStore schema:UserWarning"),
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.MovedIn20Warning"),
]

# Sweeps vary env.num_envs themselves, so it is left out of the tiny overrides.
TINY = ["updates=1", *(o for o in tiny_overrides() if not o.startswith("env.num_envs="))]


def run_train(*args: str, **kwargs: object) -> subprocess.CompletedProcess:
    return run_cli("train.py", *args, **kwargs)


def job_dirs(output_root: Path) -> list[Path]:
    (sweep,) = (output_root / "train" / "multiruns").iterdir()
    return sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())


def assert_trained(job: Path) -> None:
    assert (job / "csv" / "metrics.csv").stat().st_size > 0
    assert (job / "checkpoints" / "last.ckpt").is_file()
    assert not (job / ERROR_FILE).exists()


def finish_line(job: Path) -> tuple[int, int]:
    """(pid, torch threads) from the job's 'finished in pid' log line."""
    (log_file,) = job.glob("*.log")
    match = re.search(r"finished in pid (\d+) with (\d+) torch thread", log_file.read_text())
    assert match, f"no finish line in {log_file}"
    return int(match.group(1)), int(match.group(2))


# ---------------------------------------------------------------- subprocess sweeps


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_processes_and_isolates_a_failure(tmp_path):
    result = run_train(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "ppo.lr=0.001,0.002,-1", "env.num_envs=1", *TINY,
        f"paths.output_root={tmp_path}",
    )
    assert result.returncode == 1
    *trained, failed = job_dirs(tmp_path)
    assert [j.name for j in trained] == ["0", "1"]
    for job in trained:
        assert_trained(job)
    (pid0, threads0), (pid1, threads1) = (finish_line(job) for job in trained)
    assert pid0 != pid1 and threads0 == threads1 == 1  # two worker processes, one torch thread each
    assert "ConfigError: ppo.lr must be a number > 0, got -1.0" in (failed / ERROR_FILE).read_text()
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: 1 sweep job(s) failed")
    assert last_line.endswith("job 2 (ppo.lr=-1): ConfigError: ppo.lr must be a number > 0, got -1.0")


def test_a_failing_job_does_not_stop_the_basic_launcher_and_is_named(tmp_path):
    # The failing job comes first: the basic launcher runs jobs in order, so job 1 ran after it failed.
    # Default paths: the sweep dir is resolved from the launch directory (<cwd>/outputs).
    result = run_train("-m", "env.num_envs=0,1", *TINY, cwd=tmp_path)
    assert result.returncode == 1
    failed, trained = job_dirs(tmp_path / "outputs")
    assert_trained(trained)
    assert "ConfigError: env.num_envs must be an integer > 0, got 0" in (failed / ERROR_FILE).read_text()
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: 1 sweep job(s) failed")
    assert last_line.endswith("job 0 (env.num_envs=0): ConfigError: env.num_envs must be an integer > 0, got 0")


@pytest.mark.slow
def test_submitit_local_runs_two_jobs(tmp_path):
    result = run_train(
        "-m", "hydra/launcher=submitit_local", "seed=0,1", "env.num_envs=1", *TINY, f"paths.output_root={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = job_dirs(tmp_path)
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert_trained(job)
    submitted = list((jobs[0].parent / ".submitit").glob("*/*_result.pkl"))
    assert len(submitted) == 2  # the jobs really went through submitit


def study_trials(db: Path) -> list[tuple[str, float | None]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT t.state, v.value FROM trials t LEFT JOIN trial_values v ON v.trial_id = t.trial_id "
            "ORDER BY t.number"
        ).fetchall()
    return rows


def trial_params(db: Path, number: int) -> dict[str, float]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT p.param_name, p.param_value FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id "
            "WHERE t.number = ?", (number,)
        ).fetchall()
    return dict(rows)


@pytest.mark.slow
def test_optuna_study_survives_a_nan_trial_and_continues_from_its_sqlite_file(tmp_path):
    common = ["hparams_search=optuna", "env.num_envs=1", *TINY, f"paths.output_root={tmp_path}"]
    first = run_train("hydra.sweeper.n_trials=1", *common)
    assert first.returncode == 0, first.stderr[-2000:]
    db = tmp_path / "optuna.db"
    [(state, value)] = study_trials(db)
    assert state == "COMPLETE" and math.isfinite(value)
    params = trial_params(db, 0)
    assert set(params) == {"ppo.lr", "ppo.entropy_coef", "ppo.clip_ratio", "ppo.gae_lambda", "ppo.gamma"}
    assert 1e-5 <= params["ppo.lr"] <= 3e-3

    # Same command again, with a monitor key no run ever logs: the run's metric is NaN.
    second = run_train("monitor=episode/never_logged", "hydra.sweeper.n_trials=1", *common)
    assert study_trials(db) == [("COMPLETE", value), ("FAIL", None)]
    assert second.returncode == 1
    last_line = second.stderr.strip().splitlines()[-1]
    assert "job 0 (ppo.lr=" in last_line
    assert last_line.endswith("MetricNotFiniteError: monitored metric 'episode/never_logged' is nan "
                              "(never logged, or the run diverged)")


# ---------------------------------------------------------------- configs, in process


def compose_with_hydra(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_resources_follow_the_trainer():
    gpu = compose_with_hydra("hydra/launcher=submitit_slurm", "trainer=gpu", "trainer.devices=4", "torch_threads=2")
    launcher = gpu.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node, launcher.cpus_per_task) == (1, 4, 4, 2)
    cpu = compose_with_hydra("hydra/launcher=submitit_slurm", "trainer=ddp")
    assert (cpu.hydra.launcher.tasks_per_node, cpu.hydra.launcher.gpus_per_node) == (2, None)
    auto = compose_with_hydra("hydra/launcher=submitit_slurm", "trainer.devices=auto")
    message = "trainer.devices must be an integer ≥ 1 for a cluster launcher, got 'auto'"
    with pytest.raises(InterpolationResolutionError, match=message):
        _ = auto.hydra.launcher.tasks_per_node


def test_ray_and_joblib_resources_follow_the_run_config():
    ray = compose_with_hydra("hydra/launcher=ray", "trainer=gpu", "torch_threads=3", "env.workers=2").hydra.launcher
    assert (ray.ray.remote.num_cpus, ray.ray.remote.num_gpus) == (6, 1)  # torch_threads × env.workers CPUs
    joblib_cfg = compose_with_hydra("hydra/launcher=joblib", "torch_threads=1").hydra.launcher
    assert joblib_cfg.n_jobs == parallel_jobs(1) >= 1  # env.workers=auto: one core per job
    with_workers = compose_with_hydra("hydra/launcher=joblib", "torch_threads=1", "env.workers=2").hydra.launcher
    assert with_workers.n_jobs == max(1, parallel_jobs(1) // 2)
    assert joblib_cfg.backend == "loky"


def test_optuna_search_space_and_direction():
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
    from optuna.distributions import LogUniformDistribution, UniformDistribution

    cfg = compose_with_hydra("hparams_search=optuna", "monitor_mode=min", "paths.output_root=/data/out")
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "minimize"
    assert sweeper.storage == "sqlite:////data/out/optuna.db" and sweeper.study_name == "train-mnist1d"
    assert compose_with_hydra("hparams_search=optuna").hydra.sweeper.direction == "maximize"
    distributions, fixed = create_params_from_overrides([f"{k}={v}" for k, v in sweeper.params.items()])
    assert not fixed
    assert distributions["ppo.lr"] == LogUniformDistribution(1e-5, 3e-3)
    for key in ("ppo.entropy_coef", "ppo.clip_ratio", "ppo.gae_lambda", "ppo.gamma"):
        assert isinstance(distributions[key], UniformDistribution)
        assert OmegaConf.select(cfg, key) is not None  # the trial override targets an existing key


# ---------------------------------------------------------------- failure isolation, in process


@pytest.fixture
def sweep_job(tmp_path):
    """Make Hydra believe a sweep job is running: returns a function that sets the sweeper choice."""

    def enter(sweeper: str, job_num: int = 3) -> DictConfig:
        cfg = compose_with_hydra("env.num_envs=0", "seed=5")
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.runtime.output_dir = str(tmp_path / str(job_num))
            cfg.hydra.job.num = job_num
            cfg.hydra.runtime.choices["hydra/sweeper"] = sweeper
        (tmp_path / str(job_num)).mkdir(exist_ok=True)
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield enter
    HydraConfig.instance().cfg = None


def refuse(cfg: DictConfig) -> float:
    raise ConfigError("env.num_envs must be an integer > 0, got 0")


def test_failure_becomes_nan_for_the_basic_sweeper_and_is_recorded(sweep_job, tmp_path):
    cfg = sweep_job("basic")
    assert math.isnan(run_sweep_job(refuse, cfg, metric="episode/return"))
    text = (tmp_path / "3" / ERROR_FILE).read_text()
    assert text.startswith('job: 3\noverrides: ["env.num_envs=0", "seed=5"]\n'
                           "error: ConfigError: env.num_envs must be an integer > 0, got 0\n")
    assert "Traceback" in text
    [failure] = failed_jobs(tmp_path, since=0.0)
    assert (failure.job, failure.overrides) == (3, ["env.num_envs=0", "seed=5"])


def test_failure_is_raised_to_optuna_and_nan_metric_counts_as_failure(sweep_job, tmp_path):
    cfg = sweep_job("optuna")
    with pytest.raises(SweepJobFailed, match=r"^job 3: ConfigError: env.num_envs must be"):
        run_sweep_job(refuse, cfg, metric="episode/return")
    with pytest.raises(SweepJobFailed, match=r"MetricNotFiniteError: monitored metric 'x' is nan"):
        run_sweep_job(lambda cfg: math.nan, cfg, metric="x")


def test_success_returns_the_metric_and_clears_an_old_record(sweep_job, tmp_path):
    cfg = sweep_job("basic")
    run_sweep_job(refuse, cfg, metric="episode/return")
    assert run_sweep_job(lambda cfg: 1.5, cfg, metric="episode/return") == 1.5
    assert not (tmp_path / "3" / ERROR_FILE).exists()


def test_only_this_sweeps_records_count(sweep_job, tmp_path):
    cfg = sweep_job("basic", job_num=0)
    run_sweep_job(refuse, cfg, metric="m")
    assert failed_jobs(tmp_path, since=0.0) and not failed_jobs(tmp_path, since=2**40)


def test_shared_overrides_are_left_out_of_the_report():
    sweep = ["env.num_envs=1,0", "callbacks.progress_bar=null", "env.task_options.train_subset=192"]
    job = ["env.num_envs=0", "callbacks.progress_bar=null", "env.task_options.train_subset=192", "ppo.lr=0.01"]
    assert varying_overrides(job, sweep) == ["env.num_envs=0", "ppo.lr=0.01"]
