"""One training run across two CPU processes (`trainer=ddp`: Lightning `ddp_spawn` over gloo).

The end-to-end run is shared by the tests below (module-scoped fixture). A probe callback, pickled into
both worker processes, saves what each rank holds after every update, so the tests can compare ranks.
"""

import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers.runs import ROOT, compose_config, read_metrics, tiny_overrides

import tamiyo.launch.train
from tamiyo.core.errors import ConfigError
from tamiyo.env.config import EnvConfig
from tamiyo.env.tasks import Task, make_task
from tamiyo.env.vector import VectorEnv
from tamiyo.launch.train import train
from tamiyo.ppo.normalizers import RunningMeanStd
from tamiyo.training.checkpoints import CheckpointMismatchError
from tamiyo.training.distributed import merge_rank_statistics, reduce_episode_stats

ONE_ENV = ["env.num_envs=1", "env.max_epochs=3", "ppo.num_minibatches=1"]
DDP_TINY = ["trainer=ddp", *ONE_ENV, "updates=2"]
TINY = tiny_overrides(updates=2, env__num_envs=2, ppo__update_epochs=2, ppo__num_minibatches=2)


def make_cfg(tmp_path: Path, *overrides: str):
    return compose_config("train", tmp_path / "run", *overrides, tiny=TINY)


class RankProbe(L.Callback):
    """Saves, per rank and update, the policy parameters, env indices, rewards and normaliser state."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> None:
        datamodule = trainer.datamodule
        record = {
            "params": torch.cat([p.detach().flatten() for p in pl_module.policy_net.parameters()]).clone(),
            "env_indices": datamodule.vec_env.env_indices,
            "world_size": trainer.world_size,
        }
        if pl_module._storage is not None and name != "start":
            record["obs"] = pl_module._storage.obs.clone()
            record["obs_normalizer"] = datamodule.obs_normalizer.state_dict()
            record["reward_normalizer"] = datamodule.reward_normalizer.state_dict()["return_stats"]
        torch.save(record, self.out_dir / f"rank{trainer.global_rank}-{name}.pt")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, pl_module, "start")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self._save(trainer, pl_module, f"update{trainer.current_epoch}")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, Path, float]:
    """A 2-process run of 2 updates; returns (run dir, probe dir, monitored value)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    build_callbacks = tamiyo.launch.train.build_callbacks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tamiyo.launch.train, "build_callbacks", lambda *a: [*build_callbacks(*a), RankProbe(probe_dir)])
        value = train(make_cfg(tmp_path, *DDP_TINY))
    return tmp_path / "run", probe_dir, value


def load_probe(probe_dir: Path, rank: int, name: str) -> dict:
    return torch.load(probe_dir / f"rank{rank}-{name}.pt", weights_only=True)


@pytest.mark.slow
def test_two_processes_train_log_once_and_checkpoint_once(ddp_run):
    run_dir, _, value = ddp_run
    assert math.isfinite(value)
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.csv")) == ["csv/metrics.csv"]
    rows = read_metrics(run_dir)
    assert len(rows) == 2  # one row per update, written by rank 0 only
    for update, row in enumerate(rows):
        # 2 ranks × 1 env × 3 epochs per episode, one episode per update
        assert float(row["env_steps"]) == (update + 1) * 2 * 3
        assert float(row["onpolicy/max_logprob_gap"]) < 1e-5
        assert math.isfinite(float(row["loss/total"])) and float(row["grad_norm"]) > 0
    (last,) = (run_dir / "checkpoints").glob("last.ckpt")
    assert len(list((run_dir / "checkpoints").glob("best-*.ckpt"))) == 1
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["world_size"] == 2 and checkpoint["epoch"] == 1
    assert checkpoint["RolloutDataModule"]["obs_normalizer"]["count"] == 2 * 2 * 3


@pytest.mark.slow
def test_ranks_run_distinct_envs_and_stay_in_sync(ddp_run):
    run_dir, probe_dir, _ = ddp_run
    start = [load_probe(probe_dir, rank, "start") for rank in (0, 1)]
    assert [s["world_size"] for s in start] == [2, 2]
    assert [s["env_indices"] for s in start] == [[0], [1]]  # global env index = rank × num_envs + i
    assert torch.equal(start[0]["params"], start[1]["params"])
    for update in (0, 1):
        rank0, rank1 = (load_probe(probe_dir, rank, f"update{update}") for rank in (0, 1))
        # Each rank ran its own trajectories: the observations (losses, accuracies of its own hosts) differ.
        # (Rewards can coincide on 3-epoch tiny episodes: equal seed prices and unchanged accuracy.)
        assert not torch.equal(rank0["obs"], rank1["obs"])
        # Averaged gradients: both ranks took the same step although their rollouts differ.
        assert torch.equal(rank0["params"], rank1["params"])
        assert not torch.equal(rank0["params"], start[0]["params"])
        for key in ("obs_normalizer", "reward_normalizer"):
            for field in ("mean", "var"):
                assert torch.equal(rank0[key][field], rank1[key][field]), (key, field)
            # The reward normaliser's 100 prior pseudo-samples count once, not once per rank.
            prior = 100 if key == "reward_normalizer" else 0
            assert rank0[key]["count"] == rank1[key]["count"] == prior + 2 * 3 * (update + 1)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    saved = torch.cat([t.flatten() for k, t in checkpoint["state_dict"].items() if k.startswith("policy_net.")])
    assert torch.equal(saved, rank0["params"])


@pytest.mark.slow
def test_resume_on_another_world_size_is_refused(ddp_run, tmp_path):
    ckpt = ddp_run[0] / "checkpoints" / "last.ckpt"
    message = (
        r"^checkpoint was written by a run on 2 processes \(world size 2\), this run has world size 1; "
        r"resume with the same trainer.devices × trainer.num_nodes$"
    )
    resume = ["trainer=default", "updates=3", f"ckpt_path={ckpt}"]  # a resume restores the run's trainer unless told
    with pytest.raises(CheckpointMismatchError, match=message):
        train(make_cfg(tmp_path, *ONE_ENV, *resume), overrides=resume)


def test_cli_refuses_a_one_process_checkpoint_on_two_processes(tmp_path):
    train(make_cfg(tmp_path / "single", *ONE_ENV, "updates=1"))
    ckpt = tmp_path / "single" / "run" / "checkpoints" / "last.ckpt"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *DDP_TINY, f"ckpt_path={ckpt}", f"paths.output_root={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: checkpoint was written by a run on 1 processes (world size 1), this run has world size 2; "
        "resume with the same trainer.devices × trainer.num_nodes"
    )


def test_policy_without_parameters_is_refused_on_two_processes(tmp_path):
    with pytest.raises(ConfigError, match=r"^policy 'heuristic' has nothing to train, so it cannot run on 2 processes"):
        train(make_cfg(tmp_path, *DDP_TINY, "policy=heuristic"))


def test_merged_rank_statistics_equal_one_normaliser_over_all_samples():
    generator = torch.Generator().manual_seed(0)
    earlier, *per_rank = (torch.randn(n, 4, generator=generator, dtype=torch.float64) * 3 + 1 for n in (7, 5, 9, 1))
    start = RunningMeanStd((4,))
    start.update(earlier)
    ends = []
    for samples in per_rank:  # every rank folds its own samples, one at a time, into a copy of start
        rank = RunningMeanStd((4,))
        rank.load_state_dict(start.state_dict())
        for sample in samples:
            rank.update(sample)
        ends.append(rank.state_dict())
    merged = RunningMeanStd((4,))
    merged.load_state_dict(start.state_dict())
    merge_rank_statistics(merged, start.state_dict(), ends)
    everything = torch.cat([earlier, *per_rank])
    assert merged.count == 22
    torch.testing.assert_close(merged.mean, everything.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(merged.var, everything.var(0, correction=0), rtol=0, atol=1e-12)


def test_episode_statistics_are_pooled_over_ranks():
    returns = [torch.tensor([1.0, 4.0], dtype=torch.float64), torch.tensor([2.0, 9.0], dtype=torch.float64)]
    per_rank = [
        {"episode/return": float(r.mean()), "episode/return_std": float(r.std(correction=0)), "ops/wait": w}
        for r, w in zip(returns, (3.0, 1.0), strict=True)
    ]
    reduced = reduce_episode_stats(per_rank)
    everything = torch.cat(returns)
    assert reduced["episode/return"] == pytest.approx(float(everything.mean()), abs=1e-12)
    assert reduced["episode/return_std"] == pytest.approx(float(everything.std(correction=0)), abs=1e-12)
    assert reduced["ops/wait"] == 2.0
    with pytest.raises(RuntimeError, match=r"rank 1 reported episode statistics"):
        reduce_episode_stats([per_rank[0], {"episode/return": 1.0}])


def test_env_block_of_a_rank_reproduces_the_same_envs_of_one_process():
    full = make_task("mnist1d")
    task = Task("mnist1d", "cnn", full.train_x[:128], full.train_y[:128], full.val_x[:64], full.val_y[:64], 10)
    config = EnvConfig(max_epochs=2, auto_advance=False)
    one_process = VectorEnv(task, 2, config).reset(seed=3)
    rank1 = VectorEnv(task, 1, config, first_env_index=1).reset(seed=3)
    assert torch.equal(rank1.signals[0], one_process.signals[1])
    assert not torch.equal(one_process.signals[0], one_process.signals[1])
    with pytest.raises(ValueError, match="first_env_index must be ≥ 0, got -1"):
        VectorEnv(task, 1, config, first_env_index=-1)
