"""Fault injection: kill -9 at random moments (also mid-checkpoint-write), a full disk, corrupt
checkpoints of every kind, and a NaN in host training.

Training runs here are subprocesses of a small driver that slows checkpoint writes down (the bytes
are written in two halves with a pause between), so a kill can land inside a write on purpose.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.runs import ROOT, compose_config, read_metrics, run_cli, tiny_overrides

from tamiyo.launch.console import report_user_errors
from tamiyo.launch.train import train
from tamiyo.training.checkpoints import CheckpointError, load_checkpoint

# Episode lengths vary between these tests, so env.max_epochs is left to each.
TINY = [o for o in tiny_overrides() if not o.startswith("env.max_epochs=")]
SLOW_WRITE_S = 0.25

DRIVER = f'''
import sys, time
import tamiyo.core.atomic_io as atomic_io
import tamiyo.training.checkpoints as checkpoints

fast = atomic_io._write_all

def slow(handle, data):
    fast(handle, data[: len(data) // 2])
    time.sleep({SLOW_WRITE_S})
    fast(handle, data[len(data) // 2 :])

def slow_checkpoint_write(path, data):
    atomic_io._write_all = slow
    try:
        return atomic_io.atomic_write_bytes(path, data)
    finally:
        atomic_io._write_all = fast

checkpoints.atomic_write_bytes = slow_checkpoint_write
from tamiyo.launch.train import main
main()
'''


def run_train(*args: str) -> subprocess.CompletedProcess:
    return run_cli("train.py", *args)


def start(driver: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(driver), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(condition, timeout: float = 120.0, poll: float = 0.005) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(poll)


def updates_done(last: Path) -> int:
    return int(torch.load(last, weights_only=True)["epoch"]) + 1


def metric_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return [int(float(row["epoch"])) for row in csv.DictReader(handle) if row.get("episode/return")]


def test_kill_9_at_random_moments_leaves_a_resumable_run(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    rng = random.Random(8)
    first = ["precision=bf16", "env.max_epochs=3", "updates=40", *TINY, f"hydra.run.dir={run_dir}",
             f"paths.output_root={tmp_path}"]
    resume = [f"ckpt_path={last}", "updates=40", f"paths.output_root={tmp_path}"]  # nothing else: the run's config
    done = 0
    for attempt, moment in enumerate(["inside a checkpoint write", "at a random moment", "at a random moment"]):
        before = done
        proc = start(driver, *(first if attempt == 0 else resume))
        # Let this process checkpoint at least one update of its own, then pick the moment.
        def past_first_update(p=proc, b=before) -> bool:
            return p.poll() is not None or (last.is_file() and updates_done(last) > b)

        wait_for(past_first_update, poll=0.05)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        if moment == "inside a checkpoint write":
            wait_for(lambda: any(checkpoints.glob(".last.ckpt.*.tmp")))
        else:
            time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        checkpoint = torch.load(last, weights_only=True)  # complete: the safe loader reads it
        load_checkpoint(last)
        done = int(checkpoint["epoch"]) + 1
        assert done > before, moment
        logged = metric_epochs(run_dir)  # every checkpointed update, once (the next one too if it was logged)
        assert logged == list(range(len(logged))) and len(logged) in (done, done + 1), (moment, logged, done)
    result = run_train(f"ckpt_path={last}", f"updates={done + 1}", f"paths.output_root={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert metric_epochs(run_dir) == list(range(done + 1))  # one history, no gap, no repeat
    config = torch.load(last, weights_only=True)["tamiyo_run_config"]
    assert (config["precision"], config["env"]["max_epochs"]) == ("bf16", 3)
    assert not list(checkpoints.glob(".*.tmp"))  # the killed writes' leftovers were cleaned up


def _can_mount_tmpfs(path: Path) -> str | None:
    """None if a small tmpfs can be mounted at `path`, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    path.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
        return f"mount -t tmpfs is not allowed here: {probe.stderr.strip()}"
    subprocess.run(["umount", str(path)], check=True)
    return None


def test_full_disk_stops_the_run_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    disk = tmp_path / "disk"
    reason = _can_mount_tmpfs(disk)
    if reason is not None:
        pytest.skip(reason)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    try:
        run_dir = disk / "run"
        last = run_dir / "checkpoints" / "last.ckpt"
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), "updates=40", "env.max_epochs=3", *TINY,
             f"hydra.run.dir={run_dir}", f"paths.output_root={tmp_path}"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_for(lambda: proc.poll() is not None or last.is_file())
        good = last.read_bytes()
        with open(disk / "filler", "wb") as filler:  # take every byte that is left
            try:
                while True:
                    filler.write(b"\0" * (1 << 20))
                    filler.flush()
            except OSError:
                pass
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr[-2000:]
        line = stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: cannot write {run_dir}/"), line
        assert "No space left on device" in line and line.endswith(f"last good checkpoint: {last}"), line
        assert "Traceback" not in stderr
        checkpoint = torch.load(last, weights_only=True)  # the last good one, whole
        assert int(checkpoint["epoch"]) >= int(torch.load(io.BytesIO(good), weights_only=True)["epoch"])
    finally:
        if "proc" in locals() and proc.poll() is None:
            proc.kill()
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good")
    train(compose_cfg("train", root, "updates=2"))
    return root / "run" / "checkpoints" / "last.ckpt"


def compose_cfg(name: str, root: Path, *overrides: str):
    return compose_config(name, root / "run", "env.max_epochs=2", *overrides, tiny=TINY)


def _bad_checkpoint(kind: str, directory: Path, good: Path) -> tuple[Path, str]:
    """A broken checkpoint file of `kind` and the end of the message that names what is wrong."""
    path = directory / f"{kind}.ckpt"
    if kind == "random bytes":
        path.write_bytes(random.Random(0).randbytes(4096))
        return path, "is not a PyTorch checkpoint (corrupt, or a file of another kind)"
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, ("is corrupt or truncated (PytorchStreamReader failed reading zip archive: "
                      "failed finding central directory)")
    if kind == "empty":
        path.write_bytes(b"")
        return path, "is empty (0 bytes)"
    if kind == "directory":
        path.mkdir()
        return path, "is a directory, not a checkpoint file"
    if kind == "another module":  # a plain Lightning checkpoint of some other LightningModule
        torch.save({"epoch": 3, "global_step": 30, "pytorch-lightning_version": "2.6.6",
                    "state_dict": {"layer.weight": torch.zeros(2, 2)}, "hyper_parameters": {"hidden": 8}}, path)
        return path, ("is not a tamiyo training checkpoint: "
                      "hyper_parameters lack ['policy', 'ppo', 'slot_ids', 'topology', 'obs_dim']")
    torch.save({"module": torch.nn.Linear(2, 2)}, path)  # pickled code objects
    return path, ("holds objects other than tensors and plain containers (not loaded: unpickling them could run "
                  "code); it was not written by tamiyo")


KINDS = ["random bytes", "truncated", "empty", "directory", "another module", "pickled objects"]


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_checkpoint_is_refused_naming_the_file_in_training_evaluation_and_comparison(
    kind, tmp_path, good_checkpoint
):
    from tamiyo.evaluation.commands import compare_command, evaluate_command

    path, problem = _bad_checkpoint(kind, tmp_path, good_checkpoint)
    expected = f"checkpoint {path} {problem}"
    for run, name in ((train, "train"), (evaluate_command, "evaluate"), (compare_command, "compare")):
        with pytest.raises(CheckpointError) as error:
            run(compose_cfg(name, tmp_path / name, f"ckpt_path={path}", "seeds=1") if name != "train"
                else compose_cfg(name, tmp_path / name, f"ckpt_path={path}"))
        assert str(error.value) == expected, name
        assert "weights_only" not in str(error.value)


def one_line_error(capsys, cfg, overrides: list[str]) -> str:
    """What the command line prints for a run that fails: `train` inside the entry point's error report."""
    with pytest.raises(SystemExit) as exit_info, report_user_errors():
        train(cfg, overrides)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_corrupt_checkpoint_on_the_command_line_is_one_line(tmp_path, good_checkpoint, capsys):
    path, problem = _bad_checkpoint("truncated", tmp_path, good_checkpoint)
    line = one_line_error(capsys, compose_cfg("train", tmp_path, f"ckpt_path={path}"), [f"ckpt_path={path}"])
    assert line == f"error: checkpoint {path} {problem}"


def test_updates_at_or_below_the_updates_done_is_one_line(tmp_path, good_checkpoint, capsys):
    for updates in (1, 2):  # below and at the 2 updates the checkpoint has done
        resume = [f"ckpt_path={good_checkpoint}", f"updates={updates}"]
        line = one_line_error(capsys, compose_cfg("train", tmp_path, *resume), resume)
        assert line == (
            f"error: updates={updates}, but checkpoint {good_checkpoint} has done 2 updates already: pass updates > 2 "
            "to continue the run"
        )


def test_nan_in_host_training_is_survived_by_the_governor(tmp_path, monkeypatch):
    from tamiyo.env import seed_env

    calls = {"n": 0}
    real = seed_env.cross_entropy

    def poisoned(logits, targets):
        calls["n"] += 1
        loss = real(logits, targets)
        return loss * float("nan") if calls["n"] == 3 else loss  # one batch of the second epoch of update 0

    monkeypatch.setattr(seed_env, "cross_entropy", poisoned)
    # The shaped reward logs the rollback penalty as a component of its own.
    value = train(compose_cfg("train", tmp_path, "updates=2", "reward=shaped"))
    assert math.isfinite(value)  # the run went on to the end
    rows = read_metrics(tmp_path / "run")
    assert [float(row["reward/rollback"]) < 0 for row in rows] == [True, False]  # rolled back once, in update 0
    assert all(0.0 <= float(row["episode/final_accuracy"]) <= 100.0 for row in rows)
