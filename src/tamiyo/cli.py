"""The Hydra entry point: `python train.py ...` or the `tamiyo-train` console script."""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, RichProgressBar
from omegaconf import DictConfig, OmegaConf

from tamiyo.config import ConfigError, normalize_choices, validate_config
from tamiyo.launch_resources import register_resolvers
from tamiyo.policy.features import obs_dim
from tamiyo.sweep import run_sweep_job
from tamiyo.training.callbacks import EpisodeStatsLogger, HeadEntropyLogger, LastCheckpoint, PPODiagnosticsLogger
from tamiyo.training.datamodule import RolloutDataModule
from tamiyo.training.module import CheckpointMismatchError, PolicyLossNaNError, PPOModule
from tamiyo.training.plotting import RunPlotter

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
log = logging.getLogger("tamiyo")

# precision choice → (Lightning Trainer precision, autocast dtype for rollouts and host training)
_PRECISION = {"32": ("32-true", None), "bf16": ("bf16-mixed", torch.bfloat16), "fp16": ("16-mixed", torch.float16)}


def resolve_precision(choice: str, accelerator: str) -> tuple[str, torch.dtype | None]:
    """Map `precision=` to Lightning's precision string and our autocast dtype."""
    if choice == "fp16" and (accelerator == "cpu" or not torch.cuda.is_available()):
        # fp16 autocast around nn.LSTM crashes inside oneDNN on CPU, and Lightning would silently use bf16.
        raise ConfigError("precision=fp16 needs a CUDA GPU; on CPU use precision=bf16")
    return _PRECISION[choice]


def latest_checkpoint(output_root: Path, task_name: str) -> Path:
    """The newest `last.ckpt` of any run under `<output_root>/<task_name>/`."""
    candidates = sorted((output_root / task_name).glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"ckpt_path=latest: no last.ckpt under {output_root / task_name}")
    return candidates[-1]


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    if cfg.ckpt_path is None:
        return None
    if cfg.ckpt_path == "latest":
        return str(latest_checkpoint(Path(cfg.paths.output_root), cfg.task_name))
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path: no such checkpoint file {path}")
    return str(path)


def build_callbacks(cfg: DictConfig, trainable: bool, has_logger: bool) -> list[Callback]:
    callbacks: list[Callback] = [HeadEntropyLogger(), PPODiagnosticsLogger(), EpisodeStatsLogger()]
    callbacks.append(RunPlotter(cfg.paths.output_dir))  # PNGs into <run dir>/plots at the end of fit
    cb = cfg.callbacks
    if cb is None:
        return callbacks
    if cb.get("model_checkpoint") is not None:
        ckpt = cb.model_checkpoint
        if ckpt.save_last:
            callbacks.append(LastCheckpoint(ckpt.dirpath))
        if ckpt.save_top_k:
            callbacks.append(
                ModelCheckpoint(
                    dirpath=ckpt.dirpath,
                    filename="best-update{epoch:04d}",
                    auto_insert_metric_name=False,
                    monitor=cfg.monitor,
                    mode=cfg.monitor_mode,
                    save_top_k=ckpt.save_top_k,
                    save_last=False,
                    every_n_epochs=1,
                )
            )
    if cb.get("progress_bar"):
        callbacks.append(RichProgressBar())
    if cb.get("lr_monitor") and trainable and has_logger:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    return callbacks


def build_loggers(cfg: DictConfig) -> list:
    if not cfg.get("logger"):
        return []
    confs = [conf for conf in cfg.logger.values() if conf is not None]
    if any(str(conf.get("tracking_uri", "")).startswith("file:") for conf in confs):
        # MLflow ≥ 3 refuses its file store unless asked; a local file store is what logger=mlflow promises.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return [instantiate(conf) for conf in confs]


def build_datamodule(cfg: DictConfig, autocast_dtype: torch.dtype | None) -> RolloutDataModule:
    return RolloutDataModule(
        env=OmegaConf.to_container(cfg.env, resolve=True),
        reward=OmegaConf.to_container(cfg.reward, resolve=True),
        seed=cfg.seed,
        obs_clip=cfg.ppo.obs_clip,
        reward_clip=cfg.ppo.reward_clip,
        normalize_rewards=cfg.ppo.normalize_rewards,
        gamma=cfg.ppo.gamma,
        autocast_dtype=autocast_dtype,
        num_workers=cfg.env.get("num_workers", 0),
    )


def train(cfg: DictConfig) -> float:
    """Run one training job; returns the monitored metric (NaN if it was never logged)."""
    normalize_choices(cfg)
    validate_config(cfg)
    torch.set_num_threads(cfg.torch_threads)
    trainer_precision, autocast_dtype = resolve_precision(cfg.precision, cfg.trainer.accelerator)
    ckpt_path = resolve_ckpt_path(cfg)

    try:
        datamodule = build_datamodule(cfg, autocast_dtype)
        slot_config = datamodule.vec_env.slot_config
    except (ValueError, TypeError) as error:  # bad task, reward or env values in the config
        raise ConfigError(f"env/reward config: {error}") from error
    L.seed_everything(cfg.seed, verbose=False)  # the policy's initial weights
    module = PPOModule(
        policy=OmegaConf.to_container(cfg.policy, resolve=True),
        ppo=OmegaConf.to_container(cfg.ppo, resolve=True),
        slot_ids=list(slot_config.slot_ids),
        topology=datamodule.vec_env.topology,
        obs_dim=obs_dim(slot_config.num_slots),
        seed=cfg.seed,
        compile_mode=cfg.compile,
        total_updates=cfg.updates,
    )
    loggers = build_loggers(cfg)
    callbacks = build_callbacks(cfg, module.bundle.is_trainable, bool(loggers))
    trainer = L.Trainer(
        max_epochs=cfg.updates,
        precision=trainer_precision,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy,
        num_nodes=cfg.trainer.num_nodes,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=any(isinstance(c, RichProgressBar) for c in callbacks),
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        deterministic=cfg.trainer.deterministic,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        default_root_dir=cfg.paths.output_dir,
    )
    module.check_launch(trainer.world_size, ckpt_path)
    status = "failed"
    try:
        # Our checkpoints hold only tensors and plain containers, so the safe loader always works.
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        status = "success"
    finally:
        for logger in loggers:
            logger.finalize(status)
    metric = trainer.callback_metrics.get(cfg.monitor)
    value = float(metric) if metric is not None else math.nan
    _print_summary(cfg, trainer, value)
    return value


def _print_summary(cfg: DictConfig, trainer: L.Trainer, value: float) -> None:
    metrics = trainer.callback_metrics
    lines = [f"run dir: {cfg.paths.output_dir}"]
    for callback in trainer.callbacks:
        if isinstance(callback, LastCheckpoint) and callback.path.is_file():
            lines.append(f"last checkpoint: {callback.path}")
        if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            lines.append(f"best checkpoint: {callback.best_model_path}")
    for logger in trainer.loggers:
        if logger.log_dir:
            lines.append(f"{type(logger).__name__} logs: {logger.log_dir}")
    lines.append(f"{cfg.monitor}: {value:.4f}")
    if "episode/final_accuracy" in metrics:
        lines.append(f"final validation accuracy: {float(metrics['episode/final_accuracy']):.2f}%")
    if trainer.is_global_zero:
        print("\n".join(lines))


# Errors caused by what the user asked for: reported as one line, without a traceback.
USER_ERRORS = (ConfigError, CheckpointMismatchError, PolicyLossNaNError, FileNotFoundError)


# Before @hydra.main composes the config: the launcher configs size their resources with these.
register_resolvers()
# conf/hydra/launcher/{joblib,submitit_*}.yaml carry the plugins' names and list every field themselves;
# Hydra still matches them to the plugins' schemas of the same name and warns that this matching is
# deprecated, which they do not depend on.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # One failing job must not stop the sweep: it is recorded and reported when the sweep ends.
        return run_sweep_job(train, cfg, metric=cfg.monitor)
    try:
        return train(cfg)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
