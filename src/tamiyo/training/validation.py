"""Checkpoint selection on validation episodes: the update a run reports is chosen on episodes it never trained on.

The last update of a PPO run is not its best, and the best by training return is chosen on the very episodes the
policy learned from (and, with sampled actions, by luck). Every `every` updates, and after the last one, this
callback plays `episodes` validation episodes with the current policy (arg-max actions, the observation
normaliser frozen at its current statistics) and logs their mean objective as `val/objective`; the update with
the best value so far is written to `<dirpath>/best-val.ckpt`.

The validation episodes are those of env seed `seed` (envs 0 … episodes − 1, evaluation episode index), so they
are the same for every training seed of a study and never a training episode (training plays episode indices
0, 1, 2, …) nor one of the held-out comparison's episodes, as long as `seed` lies outside the seeds a study
compares on. The choice survives a resume (the best value so far is part of the callback's checkpoint state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from tamiyo.core.values import is_int
from tamiyo.env.vector import VectorEnv
from tamiyo.evaluation.runner import EvalPolicy, evaluate
from tamiyo.ppo.normalizers import ObservationNormalizer

BEST_VALIDATION_CHECKPOINT = "best-val.ckpt"


@dataclass
class ValidationOptions:
    """The `validation` key (`validation.<key>=…`): validate every `every` updates (0: off) and after the last, on
    `episodes` episodes of env seed `seed`; keep `seed` apart from the seeds a comparison reports on."""

    every: int = 0
    episodes: int = 8
    seed: int = 3000

    def __post_init__(self) -> None:
        for name, minimum, demand in (("every", 0, "an integer ≥ 0 (0 = off)"), ("episodes", 1, "an integer > 0"),
                                      ("seed", 0, "an integer ≥ 0")):
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                raise ValueError(f"validation.{name} must be {demand}, got {value!r}")


class ValidationCheckpoint(Checkpoint):
    """Validate every `every` updates (0: never) on `episodes` episodes of env seed `seed`; keep the best update."""

    def __init__(self, dirpath: str | Path, every: int, episodes: int, seed: int) -> None:
        self.dirpath = Path(dirpath)
        self.every, self.episodes, self.seed = every, episodes, seed
        self.best_objective = -math.inf
        self.best_update: int | None = None
        self._env: VectorEnv | None = None
        self._improved = False

    @property
    def path(self) -> Path:
        return self.dirpath / BEST_VALIDATION_CHECKPOINT

    def _due(self, trainer: L.Trainer) -> bool:
        update = trainer.current_epoch
        return self.every > 0 and ((update + 1) % self.every == 0 or update + 1 == trainer.max_epochs)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._improved = False
        if not self._due(trainer):
            return
        objective = self._validate(trainer.datamodule, pl_module)
        self._improved = objective > self.best_objective
        if self._improved:
            self.best_objective, self.best_update = objective, trainer.current_epoch
        # Logged with the update's own row, like every other metric of the update.
        for key, value in (("val/objective", objective), ("val/best_objective", self.best_objective)):
            pl_module.log(key, value, on_step=True, on_epoch=False, batch_size=1)

    def _validate(self, datamodule: Any, pl_module: L.LightningModule) -> float:
        if self._env is None:
            self._env = VectorEnv(datamodule.task, num_envs=self.episodes, config=datamodule.vec_env.config,
                                  seed=self.seed, workers=_divisor_at_most(datamodule.vec_env.workers, self.episodes))
        training = datamodule.obs_normalizer
        normalizer = ObservationNormalizer(pl_module.hparams.obs_dim, clip=training.clip, frozen=True)
        normalizer.load_state_dict(training.state_dict())
        slot_config = self._env.slot_config
        policy = EvalPolicy(name=pl_module.hparams.policy["name"], label="validation", bundle=pl_module.bundle,
                            obs_normalizer=normalizer, deterministic=True, slot_ids=slot_config.slot_ids,
                            topology=self._env.topology)
        results = evaluate(policy, self._env, seeds=[self.seed], episodes=1, objective=datamodule.objective).results
        return sum(result.objective for result in results) / len(results)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._improved:
            trainer.save_checkpoint(self.path, weights_only=False)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._env is not None:
            self._env.abort()
            self._env = None

    def state_dict(self) -> dict[str, Any]:
        return {"best_objective": self.best_objective, "best_update": self.best_update}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_objective = float(state_dict["best_objective"])
        self.best_update = state_dict["best_update"]


def _divisor_at_most(limit: int, n: int) -> int:
    """The largest divisor of `n` that is at most `limit` (worker processes must split the envs evenly)."""
    return max(d for d in range(1, min(limit, n) + 1) if n % d == 0)
