"""The training entry point: `python train.py ...` or the `tamiyo-train` console script."""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf

from tamiyo.conf import CONF_DIR
from tamiyo.core.atomic_io import is_storage_error
from tamiyo.core.errors import ConfigError, FileWriteError
from tamiyo.env.objective import Objective
from tamiyo.env.vector import resolve_workers
from tamiyo.evaluation.metric_history import read_metrics_csv
from tamiyo.launch.command_line import check_overrides
from tamiyo.launch.console import configure_console, report_user_errors
from tamiyo.launch.resume import resumed_config
from tamiyo.launch.sweep import run_sweep_job
from tamiyo.launch.validation import env_options, imitation_options, normalize_choices, ppo_options, validate_config
from tamiyo.policy.features import obs_dim
from tamiyo.training.checkpoints import LastCheckpoint, RunConfigRecorder, load_checkpoint, resolve_ckpt_path
from tamiyo.training.datamodule import RolloutDataModule
from tamiyo.training.module import PPOModule

log = logging.getLogger("tamiyo")

# precision choice → (Lightning Trainer precision, autocast dtype for rollouts and host training)
_PRECISION = {"32": ("32-true", None), "bf16": ("bf16-mixed", torch.bfloat16), "fp16": ("16-mixed", torch.float16)}


def resolve_precision(choice: str, accelerator: str) -> tuple[str, torch.dtype | None]:
    """Map `precision=` to Lightning's precision string and our autocast dtype."""
    if choice == "fp16" and (accelerator == "cpu" or not torch.cuda.is_available()):
        # fp16 autocast around nn.LSTM crashes inside oneDNN on CPU, and Lightning would silently use bf16.
        raise ConfigError("precision=fp16 needs a CUDA GPU; on CPU use precision=bf16")
    return _PRECISION[choice]


def load_resume(cfg: DictConfig, overrides: Sequence[str]) -> tuple[DictConfig, Path | None, dict[str, Any] | None]:
    """The config to run, and the checkpoint file and contents a resume continues from (None: a new run)."""
    if cfg.ckpt_path is None:
        return cfg, None, None
    path = resolve_ckpt_path(str(cfg.ckpt_path), Path(cfg.paths.output_root), cfg.task_name)
    checkpoint = load_checkpoint(path)
    return resumed_config(cfg, overrides, checkpoint, path), path, checkpoint


def warm_start(module: PPOModule, datamodule: RolloutDataModule, path: Path, reset_heads: Sequence[str] = ()) -> None:
    """Start a new run from the policy weights and observation normaliser of the checkpoint at `path`;
    the optimiser, the reward normaliser and the update count start afresh. Observation columns added since
    the checkpoint start at zero weight; the policy heads `reset_heads` start as a new policy's do."""
    if not module.bundle.is_trainable:
        raise ConfigError(f"init_from: policy {module.hparams.policy['name']!r} has no weights to start from")
    checkpoint = load_checkpoint(path)
    added = module.load_policy_weights(checkpoint)
    datamodule.obs_normalizer.load_state_dict(checkpoint["RolloutDataModule"]["obs_normalizer"], new_columns=True)
    try:
        module.policy_net.reset_heads(list(reset_heads))
    except ValueError as error:
        raise ConfigError(f"init_reset_heads: {error}") from error
    log.info("warm start from %s: policy weights and observation normaliser%s%s", path,
             f"; {added} new observation columns at zero weight" if added else "",
             f"; heads {list(reset_heads)} reset" if reset_heads else "")


def check_updates_left(updates: int, checkpoint: dict[str, Any], path: Path) -> None:
    """A resume needs updates beyond those the checkpoint has done."""
    done = int(checkpoint["epoch"]) + 1
    if updates <= done:
        raise ConfigError(
            f"updates={updates}, but checkpoint {path} has done {done} updates already: pass updates > {done} "
            "to continue the run"
        )


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """Every non-null entry of the `callbacks` group, instantiated."""
    return [instantiate(conf) for conf in (cfg.get("callbacks") or {}).values() if conf is not None]


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Every non-null entry of the `logger` group, instantiated."""
    confs = [conf for conf in (cfg.get("logger") or {}).values() if conf is not None]
    if any(str(conf.get("tracking_uri", "")).startswith("file:") for conf in confs):
        # MLflow ≥ 3 refuses its file store unless asked; a local file store is what logger=mlflow promises.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return [instantiate(conf) for conf in confs]


def build_datamodule(cfg: DictConfig, autocast_dtype: torch.dtype | None) -> RolloutDataModule:
    workers = resolve_workers(cfg.env.workers, cfg.env.num_envs, cfg.torch_threads, _processes_per_machine(cfg))
    log.info("env workers: %d (env.workers=%s, %d envs each)", workers, cfg.env.workers, cfg.env.num_envs // workers)
    ppo = ppo_options(cfg)
    return RolloutDataModule(
        env=env_options(cfg),
        reward=OmegaConf.to_container(cfg.reward, resolve=True),
        seed=cfg.seed,
        obs_clip=ppo.obs_clip,
        reward_clip=ppo.reward_clip,
        normalize_rewards=ppo.normalize_rewards,
        gamma=ppo.gamma,
        autocast_dtype=autocast_dtype,
        objective=Objective(**OmegaConf.to_container(cfg.objective, resolve=True)),
        workers=workers,
    )


def build_module(cfg: DictConfig, datamodule: RolloutDataModule) -> PPOModule:
    """The PPO module of a run, shaped by the datamodule's env (slots, topology, observation width)."""
    slot_config = datamodule.vec_env.slot_config
    return PPOModule(
        policy=OmegaConf.to_container(cfg.policy, resolve=True),
        ppo=ppo_options(cfg),
        slot_ids=list(slot_config.slot_ids),
        topology=datamodule.vec_env.topology,
        obs_dim=obs_dim(slot_config.num_slots),
        seed=cfg.seed,
        compile_mode=cfg.compile,
        total_updates=cfg.updates,
        imitation=imitation_options(cfg),
    )


def _processes_per_machine(cfg: DictConfig) -> int:
    """Training processes that share this machine's cores: parallel joblib sweep jobs × local CPU DDP ranks."""
    jobs = 1
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        launcher = HydraConfig.get().launcher
        if "joblib" in str(launcher.get("_target_", "")):
            jobs = int(launcher.n_jobs)
    devices = cfg.trainer.devices
    ranks = devices if cfg.trainer.accelerator == "cpu" and isinstance(devices, int) else 1
    return jobs * ranks


def train(cfg: DictConfig, overrides: Sequence[str] = ()) -> float:
    """Run one training job; returns the monitored metric (NaN if it was never logged).

    `overrides` are the command line's overrides: a resume (`ckpt_path=...`) restores the run's saved
    config and applies only these (see `tamiyo.launch.resume`)."""
    cfg, ckpt_path, checkpoint = load_resume(cfg, overrides)
    normalize_choices(cfg)
    validate_config(cfg)
    if checkpoint is not None:
        check_updates_left(cfg.updates, checkpoint, ckpt_path)
        log.info("resuming %s: %d updates done, training to %d", ckpt_path, int(checkpoint["epoch"]) + 1, cfg.updates)
        # A resume continues its own run dir, so its checkpoint dir is expected to hold checkpoints.
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    torch.set_num_threads(cfg.torch_threads)
    trainer_precision, autocast_dtype = resolve_precision(cfg.precision, cfg.trainer.accelerator)

    try:
        datamodule = build_datamodule(cfg, autocast_dtype)
        datamodule.vec_env.slot_config  # noqa: B018  (resolves the enabled slots now, so a bad slot id fails here)
    except (ValueError, TypeError) as error:  # bad task, reward or env values in the config
        raise ConfigError(f"env/reward config: {error}") from error
    L.seed_everything(cfg.seed, verbose=False)  # the policy's initial weights
    try:
        module = build_module(cfg, datamodule)
    except (ValueError, TypeError) as error:  # bad policy or teacher options (e.g. policy.hidden_dim)
        raise ConfigError(f"policy config: {error}") from error
    if checkpoint is None and cfg.get("init_from") is not None:  # a resume has its own weights
        path = resolve_ckpt_path(str(cfg.init_from), Path(cfg.paths.output_root), "train")
        warm_start(module, datamodule, path, cfg.get("init_reset_heads") or ())
    loggers = build_loggers(cfg)
    callbacks = build_callbacks(cfg)
    callbacks.append(RunConfigRecorder(OmegaConf.to_container(cfg, resolve=False)))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        max_epochs=cfg.updates,
        precision=trainer_precision,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=False,  # tamiyo.training.progress.UpdateProgress shows updates, not epochs
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
    )
    module.check_launch(trainer.world_size, checkpoint)
    status = "failed"
    try:
        # Our checkpoints hold only tensors and plain containers, so the safe loader always works.
        trainer.fit(module, datamodule=datamodule, ckpt_path=None if ckpt_path is None else str(ckpt_path),
                    weights_only=True)
        status = "success"
    except OSError as error:
        failure = _write_failure(error, cfg)
        if failure is None:
            raise
        raise failure from error
    finally:
        _finalize(loggers, status)
    metric = trainer.callback_metrics.get(cfg.monitor)
    value = float(metric) if metric is not None else math.nan
    _print_summary(cfg, trainer, value)
    return value


def _write_failure(error: OSError, cfg: DictConfig) -> FileWriteError | None:
    """A full disk, quota or unwritable run dir as one line naming the path and what is left (None for
    any other OSError)."""
    if not isinstance(error, FileWriteError) and not is_storage_error(error):
        return None
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    kept = f"; last good checkpoint: {last}" if last.is_file() else "; no checkpoint was written"
    if isinstance(error, FileWriteError):
        return FileWriteError(f"{error}{kept}")
    return FileWriteError(f"cannot write {error.filename or cfg.paths.output_dir}: {error.strerror}{kept}")


def _finalize(loggers: list[Logger], status: str) -> None:
    for logger in loggers:
        try:
            logger.finalize(status)
        except OSError as error:
            if status == "success" or not (is_storage_error(error) or isinstance(error, FileWriteError)):
                raise
            # The run already failed (e.g. on a full disk); that failure is the one to report.
            log.warning("could not finalize %s: %s", type(logger).__name__, error)


def _print_summary(cfg: DictConfig, trainer: L.Trainer, value: float) -> None:
    metrics = trainer.callback_metrics
    lines = [f"run dir: {cfg.paths.output_dir}"]
    for callback in trainer.callbacks:
        if isinstance(callback, LastCheckpoint) and callback.path.is_file():
            lines.append(f"last checkpoint: {callback.path}")
        if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            lines.append(f"best checkpoint: {callback.best_model_path}")
    lines += [_logger_line(logger) for logger in trainer.loggers]
    lines.append(f"{cfg.monitor} (last update): {value:.2f}")
    if "episode/final_accuracy" in metrics:
        lines.append(f"final validation accuracy (last update): {float(metrics['episode/final_accuracy']):.2f} %")
    csv_logs = [logger for logger in trainer.loggers if isinstance(logger, CSVLogger)]
    if trainer.is_global_zero:  # the CSV log is written by rank 0 only
        if csv_logs:
            lines += _objective_trend(Path(csv_logs[0].log_dir) / "metrics.csv")
        print("\n".join(lines))


def _logger_line(logger: Logger) -> str:
    """Where a logger's results went: the metrics file, the tracking store and run, or the event dir."""
    if isinstance(logger, CSVLogger):  # (touching `.experiment` here would start a new, empty file)
        return f"metrics: {Path(logger.log_dir) / 'metrics.csv'}"
    tracking_uri = getattr(logger, "_tracking_uri", None)
    if tracking_uri:
        return f"mlflow: {tracking_uri} (run {logger.run_id})"
    return f"logs: {logger.log_dir}"


def _objective_trend(metrics_csv: Path) -> list[str]:
    """The training objective over the run's first and last updates (a quarter of them each, at most 10), so
    whether the controller learned shows in the summary; none for a run of fewer than 2 updates."""
    objective = [v for v in read_metrics_csv(metrics_csv).get("episode/objective", []) if not math.isnan(v)]
    span = min(10, len(objective) // 4) or len(objective) // 2
    if span == 0:
        return []
    first, last = objective[:span], objective[-span:]
    return [f"episode/objective: {sum(first) / span:.2f} over the first {span} update(s), "
            f"{sum(last) / span:.2f} over the last {span}"]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _run(cfg: DictConfig) -> float:
    configure_console()
    overrides = list(HydraConfig.get().overrides.task)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        if cfg.ckpt_path is not None:
            # Every job would continue the same run dir.
            with report_user_errors(cfg.paths):
                raise ConfigError("ckpt_path resumes one run; it cannot be used in a multirun (-m)")
        # One failing job must not stop the sweep: it is recorded and reported when the sweep ends.
        return run_sweep_job(train, cfg, metric=cfg.monitor)
    with report_user_errors(cfg.paths):
        return train(cfg, overrides)


def main() -> None:
    """`tamiyo-train`: refuse a command line Hydra cannot compose in one line, then run."""
    check_overrides("train", sys.argv[1:])
    _run()
