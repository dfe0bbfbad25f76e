"""The command line as users run it: subprocesses of `python train.py`."""

import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers.runs import ROOT, run_cli, tiny_overrides

TINY = tiny_overrides()


def run_train(*args: str, **kwargs: object) -> subprocess.CompletedProcess:
    return run_cli("train.py", *args, **kwargs)


def test_multirun_makes_one_run_dir_per_job(tmp_path):
    result = run_train("-m", "seed=0,1", "updates=1", *TINY, f"paths.output_root={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert f"sweep dir: {sweep} (one run dir per job" in result.stdout
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "csv" / "metrics.csv").stat().st_size > 0
        assert (job / "checkpoints" / "last.ckpt").is_file()


def test_bad_value_is_one_line_on_stderr(tmp_path):
    result = run_train("ppo.lr=-1", f"paths.output_root={tmp_path / 'outputs'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: ppo.lr must be a number > 0, got -1.0"
    # No debris: the run dir Hydra made for the refused command is gone, and the dirs it created with it.
    assert not (tmp_path / "outputs").exists()


def test_a_refused_resume_keeps_the_run_it_names(tmp_path):
    trained = run_train("updates=1", *TINY, f"paths.output_root={tmp_path}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    (run,) = (tmp_path / "train" / "runs").iterdir()
    refused = run_train(f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "updates=2", "seed=1",
                        f"paths.output_root={tmp_path}")
    assert refused.returncode == 2 and refused.stderr.strip().startswith("error: resume: seed cannot change")
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "csv" / "metrics.csv").is_file()


@pytest.mark.parametrize(("override", "message"), [
    ("policy=lstmm", "error: policy=lstmm: no such option; did you mean policy=lstm? options: grow_on_plateau, "
                     "heuristic, lstm, random, schedule, static"),
    ("ppo.lrr=1", "error: ppo.lrr is not a key of this config; did you mean ppo.lr?"),
    ("+ppo.lrr=1", "error: ppo.lrr is not a key of ppo; did you mean ppo.lr?"),
    ("env.task_options.train_subset=[1", "error: cannot parse env.task_options.train_subset=[1: "
                                         "no viable alternative at input '[1'"),
])
def test_a_command_line_hydra_or_tamiyo_refuses_is_one_line_and_exit_2(tmp_path, override, message):
    result = run_train(override, f"paths.output_root={tmp_path}")
    assert (result.returncode, result.stderr.strip()) == (2, message)
    assert not any(tmp_path.rglob("*.ckpt"))


def test_sigterm_leaves_a_resumable_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "updates=50", *TINY, f"hydra.run.dir={run_dir}",
         f"paths.output_root={tmp_path}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not last.exists():
        time.sleep(0.2)
    assert last.exists(), "no checkpoint written before the deadline"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    checkpoint = torch.load(last, weights_only=True)  # complete and loadable
    done = checkpoint["epoch"] + 1
    assert done < 50
    result = run_train(f"updates={done + 1}", *TINY, f"ckpt_path={last}", f"paths.output_root={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "episode/return" in result.stdout
