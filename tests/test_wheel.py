"""The installed package works without the source tree: configs ship in the wheel, console scripts run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.runs import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The wheel built from this checkout, installed into a folder of its own; (bin dir, environment)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools leaves build/ behind, which must not leak into (or from) the checkout.
    source = tmp / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("tamiyo-*.whl")
    site = tmp / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    # The wheel's package comes first on the path; dependencies come from this interpreter's environment.
    env = {**os.environ, "PYTHONPATH": str(site)}
    return site / "bin", env


def run(installed, command: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    bin_dir, env = installed
    return subprocess.run([sys.executable, str(bin_dir / command), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    _, env = installed
    where = subprocess.run([sys.executable, "-c", "import tamiyo.conf as c; print(c.CONF_DIR)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60)
    conf_dir = Path(where.stdout.strip())
    assert conf_dir.is_relative_to(Path(env["PYTHONPATH"])) and not conf_dir.is_relative_to(ROOT)
    assert (conf_dir / "train.yaml").is_file() and (conf_dir / "policy" / "lstm.yaml").is_file()


def test_tamiyo_train_prints_its_config_and_runs_a_debug_run(installed, tmp_path):
    job = run(installed, "tamiyo-train", "--cfg", "job", cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-2000:]
    assert "policy:" in job.stdout and "name: lstm" in job.stdout
    fast = run(installed, "tamiyo-train", "debug=fast", "env.task_options.train_subset=128",
               "env.task_options.val_subset=64", "callbacks.progress_bar=null", cwd=tmp_path)
    assert fast.returncode == 0, fast.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert f"run dir: {run_dir}" in fast.stdout
    redrawn = run(installed, "tamiyo-plot", str(run_dir), "--out", str(tmp_path / "redrawn"), cwd=tmp_path)
    assert redrawn.returncode == 0, redrawn.stderr[-2000:]
    assert (tmp_path / "redrawn" / "returns_accuracy.png").stat().st_size > 0
    front = run(installed, "tamiyo-pareto", str(run_dir), cwd=tmp_path)  # a training run is no comparison
    assert front.returncode == 2 and front.stderr.startswith("error: ") and "tamiyo-compare" in front.stderr


def test_tamiyo_evaluate_runs_a_baseline(installed, tmp_path):
    result = run(installed, "tamiyo-evaluate", "policy=static", "seeds=1", "env.num_envs=1", "env.max_epochs=2",
                 "env.task_options.train_subset=128", "env.task_options.val_subset=64", "progress=false",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "evaluate" / "runs").iterdir()
    assert (run_dir / "evaluation.csv").is_file() and "| static |" in result.stdout
