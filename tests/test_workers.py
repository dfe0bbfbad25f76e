"""Env worker processes (`env.workers`): same numbers as in-process, clean failure and interruption, sweeps."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from helpers.runs import ROOT, read_csv, tiny_overrides

from tamiyo.env.vector import resolve_workers

TINY = tiny_overrides(env__num_envs=2, env__max_epochs=2, env__task_options__train_subset=128,
                      env__task_options__val_subset=64)


def _start(*args: str, marker: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    """`python train.py ...` with a marker in its environment, which its worker processes inherit, and `tests/`
    on its path (for the hosts of `helpers`)."""
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TAMIYO_TEST_MARKER": marker, "PYTHONPATH": python_path}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                            stdout=stdout, stderr=subprocess.PIPE, text=True)


def _run(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    marker = uuid.uuid4().hex
    proc = _start(*args, marker=marker)
    stdout, stderr = proc.communicate(timeout=timeout)
    deadline = time.time() + 10  # a worker whose owner was killed leaves when it sees its pipe close
    while _processes_with(marker, env_workers_only=True) and time.time() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker, env_workers_only=True) == [], "env worker processes outlived the run"
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _processes_with(marker: str, env_workers_only: bool = False) -> list[int]:
    """Processes started by the marked run (its env workers only: Ray's own daemons end on their own time)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                marked = f"TAMIYO_TEST_MARKER={marker}".encode() in (entry / "environ").read_bytes()
                worker = b"spawn_main" in (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile, or not ours
                continue
            if marked and (worker or not env_workers_only):
                found.append(int(entry.name))
    return found


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    rows = read_csv(run_dir / "csv" / "metrics.csv")
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def test_auto_workers_divide_the_envs_and_share_the_cores(monkeypatch):
    monkeypatch.setattr("tamiyo.env.vector.usable_cores", lambda: 6)
    assert resolve_workers("auto", num_envs=4, torch_threads=1) == 4
    assert resolve_workers("auto", num_envs=8, torch_threads=1) == 4  # 6 does not divide 8
    assert resolve_workers("auto", num_envs=4, torch_threads=2) == 2  # 3 cores per thread pair; 3 does not divide 4
    assert resolve_workers("auto", num_envs=4, torch_threads=1, concurrent_processes=3) == 2
    assert resolve_workers("auto", num_envs=4, torch_threads=1, concurrent_processes=12) == 1
    assert resolve_workers(2, num_envs=4, torch_threads=1) == 2


def test_two_workers_log_exactly_what_one_logs(tmp_path):
    for workers in (1, 2):
        result = _run("updates=2", *TINY, f"env.workers={workers}", f"hydra.run.dir={tmp_path / str(workers)}",
                      f"paths.output_root={tmp_path}")
        assert result.returncode == 0, result.stderr[-2000:]
    one, two = _metrics(tmp_path / "1"), _metrics(tmp_path / "2")
    assert len(one) >= 2 and "episode/return" in one[0]
    assert one == two


@pytest.mark.parametrize(("how", "message"), [
    ("raise", r"error: env [01] failed: RuntimeError: injected fault at training step 2"),
    ("exit", r"error: env [01] lost: the worker process died \(exit code 70\)"),
])
def test_a_failing_worker_ends_the_run_with_one_line(tmp_path, how, message):
    # One of the two envs (the first to reach its second training step: one per epoch on 128 examples) fails.
    host = f"{{_target_:helpers.failing_host.FailingHost,fail_on_step:2,how:{how},claim_file:{tmp_path / 'claimed'}}}"
    result = _run("updates=2", *TINY, "env.workers=2", f"env.host={host}", f"paths.output_root={tmp_path}")
    assert result.returncode == 1
    assert re.fullmatch(message, result.stderr.strip().splitlines()[-1])
    assert (tmp_path / "claimed").exists()
    assert "Traceback" not in result.stderr


def test_sigterm_with_workers_leaves_a_resumable_checkpoint(tmp_path):
    run_dir, marker = tmp_path / "run", uuid.uuid4().hex
    proc = _start("updates=50", *TINY, "env.workers=2", f"hydra.run.dir={run_dir}", f"paths.output_root={tmp_path}",
                  marker=marker, stdout=subprocess.DEVNULL)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not last.exists():
        time.sleep(0.2)
    assert last.exists(), "no checkpoint written before the deadline"
    assert len(_processes_with(marker)) >= 3  # the run and its two workers
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    deadline = time.time() + 10  # workers and multiprocessing's resource tracker leave as their pipes close
    while _processes_with(marker) and time.time() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker) == [], "processes of the run outlived it"
    done = torch.load(last, weights_only=True)["epoch"] + 1
    assert done < 50
    result = _run(f"updates={done + 1}", *TINY, "env.workers=2", f"ckpt_path={last}", f"paths.output_root={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "episode/return" in result.stdout


def test_ray_sweep_runs_two_jobs_with_workers(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    result = _run("-m", "hydra/launcher=ray", "seed=0,1", "updates=1", *TINY, "env.workers=2",
                  f"paths.output_root={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = sorted(tmp_path.glob("train/multiruns/*/*/csv/metrics.csv"))
    assert len(metrics) == 2, result.stdout[-2000:]
