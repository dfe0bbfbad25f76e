"""The LightningModule: owns the policy bundle and the PPO update.

One Lightning epoch is one PPO update: `training_step` asks the DataModule for a fresh rollout
(collected here, inside the step, so it always uses the weights after the previous update — the
fit loop's one-batch prefetch never sees a rollout), then runs several epochs of minibatches of
whole env sequences with manual optimisation. Non-trainable bundles (heuristic, random, static)
run the same loop without optimiser steps. The first `imitation.updates` updates, when set, collect their
rollout with a teacher policy and clone its actions instead (`tamiyo.ppo.imitation`). With
`imitation.guide_coef` > 0 the PPO updates after them ask the teacher, at every step of this policy's rollout,
what it would do there, and add `coef · NLL(teacher's action)` to the PPO loss, the coefficient annealed
linearly from `guide_coef` at the first PPO update to `guide_coef_end` at the last: PPO explores from the clone
but is pulled back towards the teacher in the states it reaches, instead of drifting below it.

Distributed runs (`trainer=ddp`): Lightning wraps this module in DistributedDataParallel and, under
manual optimisation, prepares DDP's reducer at every `manual_backward`, so each backward averages the
gradients over the ranks before they are clipped; all ranks then take the same optimiser step and the
policy stays identical everywhere. The KL early stop compares the ranks' mean KL, so every rank runs the
same number of minibatches (and backward passes), and the logged metrics are reduced over all ranks.
Checkpoints record the world size; resuming on another number of ranks is refused.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.warnings import PossibleUserWarning

from tamiyo.core.actions import head_sizes
from tamiyo.core.errors import ConfigError
from tamiyo.core.seeding import derive_seed, generator
from tamiyo.core.slots import SlotConfig
from tamiyo.policy import create_policy
from tamiyo.policy.protocol import PolicyBundle
from tamiyo.ppo.config import ImitationOptions, PPOOptions
from tamiyo.ppo.curriculum import forbidden_ops, op_curriculum
from tamiyo.ppo.imitation import guide_loss, imitation_loss
from tamiyo.ppo.loss import entropy_coefficients, explained_variance, max_logprob_gap, ppo_loss
from tamiyo.ppo.storage import RolloutStorage
from tamiyo.training.checkpoints import check_policy_fits, check_resumable
from tamiyo.training.distributed import gather_from_ranks


class _MetricTotals:
    """Averages minibatch metrics over an update (and over ranks) with a single host sync at the end.

    Per-head metrics (`entropy/<head>`, `clip_fraction/<head>`) are weighted by the head's relevant
    steps in each minibatch, so a minibatch where the head never mattered (NaN) does not poison the mean.
    """

    _PER_HEAD = ("entropy/", "clip_fraction/")

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.weights: dict[str, torch.Tensor] = {}

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            if key.startswith("relevant_steps/"):
                continue
            head = key.split("/", 1)[1] if key.startswith(self._PER_HEAD) else None
            if head is not None and head != "joint":
                weight = metrics[f"relevant_steps/{head}"]
                value = torch.nan_to_num(value.float(), nan=0.0) * weight
            else:
                weight = torch.ones((), device=value.device)
            self.sums[key] = self.sums.get(key, 0.0) + value.float()
            self.weights[key] = self.weights.get(key, 0.0) + weight.float()

    def table(self) -> tuple[list[str], torch.Tensor]:
        """The metric names and a CPU tensor `[metrics, 2]` of their (sum, weight) on this rank."""
        keys = list(self.sums)
        return keys, torch.stack([torch.stack([self.sums[k], self.weights[k]]) for k in keys]).cpu()

    @staticmethod
    def means(keys: list[str], tables: list[torch.Tensor]) -> dict[str, float]:
        """Weighted means over the minibatches of all ranks, from each rank's `table()`."""
        total = torch.stack(tables).sum(dim=0)
        return dict(zip(keys, (total[:, 0] / total[:, 1]).tolist(), strict=True))


class PolicyLossNaNError(RuntimeError):
    """The PPO loss became NaN/inf; the run stops before writing a corrupt checkpoint."""


class PPOModule(L.LightningModule):
    def __init__(
        self,
        policy: dict[str, Any],
        ppo: PPOOptions,
        slot_ids: list[str],
        topology: str,
        obs_dim: int,
        seed: int = 0,
        compile_mode: str = "off",
        total_updates: int = 1,
        imitation: ImitationOptions | None = None,
    ) -> None:
        super().__init__()
        imitation = imitation or ImitationOptions()
        self.ppo, self.imitation = ppo, imitation
        # Plain containers only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters({
            "policy": policy, "ppo": dataclasses.asdict(ppo), "slot_ids": slot_ids, "topology": topology,
            "obs_dim": obs_dim, "seed": seed, "compile_mode": compile_mode, "total_updates": total_updates,
            "imitation": dataclasses.asdict(imitation),
        })
        self.automatic_optimization = False
        self.slot_config = SlotConfig(tuple(slot_ids))
        policy_options = {k: v for k, v in policy.items() if k != "name"}
        self.bundle: PolicyBundle = create_policy(
            policy["name"], slot_config=self.slot_config, topology=topology, obs_dim=obs_dim, **policy_options
        )
        self.teacher: PolicyBundle | None = None
        if imitation.uses_teacher:
            if not self.bundle.is_trainable:
                used = "imitation.updates" if imitation.updates else "imitation.guide_coef"
                raise ValueError(f"{used} needs a policy that learns; {policy['name']!r} has nothing to train")
            teacher_options = {k: v for k, v in imitation.teacher.items() if k != "name"}
            try:
                self.teacher = create_policy(
                    imitation.teacher["name"], slot_config=self.slot_config, topology=topology, obs_dim=obs_dim,
                    **teacher_options,
                )
            except (ValueError, TypeError) as error:
                raise ValueError(f"imitation.teacher: {error}") from error
        # Registering the (uncompiled) network makes Lightning move, save and restore it.
        self.policy_net = self.bundle.network
        self.op_curriculum = op_curriculum(ppo.ops_from_update or {})
        self._actor_params: list[torch.nn.Parameter] = []
        if self.bundle.is_trainable:
            value_head = {id(p) for p in self.policy_net.value_head.parameters()}
            self._actor_params = [p for p in self.policy_net.parameters() if id(p) not in value_head]
        self.last_rollout_stats: dict[str, float] = {}
        self.last_update_metrics: dict[str, float] = {}
        self._storage: RolloutStorage | None = None
        self._grad_norm = torch.zeros(())  # of the latest optimiser step, before clipping

    # ---- setup -------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.imitation.updates:
            # The imitation updates log the teacher's episodes under imitation/, so the best-checkpoint callback
            # finds no `monitor` value in them, by design: only this policy's own episodes may pick the best.
            warnings.filterwarnings("ignore", message=r"`ModelCheckpoint\(monitor=.*could not find the monitored key")
        if self.trainer.world_size > 1:
            # The logged metrics are reduced over the ranks before logging (only the wall-clock timings
            # `time/rollout_s` and `time/ppo_update_s` are each rank's own; rank 0 logs), so Lightning's
            # advice to log with sync_dist=True does not apply.
            warnings.filterwarnings(
                "ignore", message=r"It is recommended to use `self.log\(.*sync_dist=True", category=PossibleUserWarning
            )

    def on_fit_start(self) -> None:
        # Compile after Lightning placed the module on its device (compiling first would pin it).
        if self.hparams.compile_mode != "off" and not self.bundle.is_compiled:
            self.bundle.compile(self.hparams.compile_mode)

    def configure_optimizers(self):
        if not self.bundle.is_trainable:
            return None
        return torch.optim.Adam(self.policy_net.parameters(), lr=self.ppo.lr, eps=self.ppo.adam_eps)

    def _storage_for(self, num_envs: int, num_steps: int) -> RolloutStorage:
        if self._storage is None:
            hidden = self.bundle.initial_hidden(num_envs)
            hidden_shape = tuple(hidden[0].shape) if isinstance(hidden, tuple) else None
            self._storage = RolloutStorage(
                num_envs=num_envs,
                num_steps=num_steps,
                obs_dim=self.hparams.obs_dim,
                head_sizes=head_sizes(self.slot_config),
                hidden_shape=hidden_shape,
                device=self.device,
            )
        return self._storage

    # ---- one update --------------------------------------------------------------------------
    def guide_coefficient(self, update: int) -> float:
        """The teacher term's coefficient at `update`: 0 while imitating and without a guide, else linear from
        `guide_coef` at the first PPO update to `guide_coef_end` at the last update of the run."""
        start, end = self.imitation.guide_coef, self.imitation.guide_coef_end
        if update < self.imitation.updates or start == end == 0:
            return 0.0
        ppo_updates = self.hparams.total_updates - self.imitation.updates
        progress = min(1.0, (update - self.imitation.updates) / max(ppo_updates - 1, 1))
        return start + progress * (end - start)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        update = self.current_epoch
        datamodule = self.trainer.datamodule
        rank = self.global_rank
        # Action sampling draws from the global RNG; seeding it per update makes a resumed run
        # continue exactly as the uninterrupted one would (no RNG state needs checkpointing).
        torch.manual_seed(derive_seed(self.hparams.seed, update, rank, 1))
        trainable = self.bundle.is_trainable
        storage = self._storage_for(datamodule.num_envs, datamodule.episode_length) if trainable else None
        imitating = update < self.imitation.updates
        started = time.perf_counter()
        if imitating:
            learner_hidden = self.bundle.initial_hidden(datamodule.num_envs)
            stats = datamodule.collect(self.teacher, storage, update, learner_hidden)
            # The teacher's episodes, not this policy's: kept apart from the episode statistics (and `monitor`).
            stats = {k if k == "env_steps" else f"imitation/{k}": v for k, v in stats.items()}
        else:
            guide = self.teacher if self.guide_coefficient(update) > 0 else None
            stats = datamodule.collect(self.bundle, storage, update, guide=guide,
                                       forbidden_ops=forbidden_ops(self.op_curriculum, update))
        self.last_rollout_stats = stats
        self.last_rollout_stats["time/rollout_s"] = time.perf_counter() - started
        if storage is None:
            self.last_update_metrics = {}
            return
        started = time.perf_counter()
        # The teacher has no critic (V = 0), so its advantages at λ = 1 are the plain discounted returns.
        storage.compute_returns(gamma=self.ppo.gamma, gae_lambda=1.0 if imitating else self.ppo.gae_lambda)
        self.last_update_metrics = self._ppo_update(storage, update, imitating)
        self.last_update_metrics["time/ppo_update_s"] = time.perf_counter() - started

    def _ppo_update(self, storage: RolloutStorage, update: int, imitating: bool) -> dict[str, float]:
        """One update on `storage`: PPO, or behaviour cloning of the teacher that collected it (`imitating`)."""
        ppo = self.ppo
        optimizer = self.optimizers()
        entropy_coef = entropy_coefficients(update, self.hparams.total_updates, ppo.entropy_coef, ppo.entropy_coef_end)
        train_actor = update >= ppo.critic_warmup_updates
        guide_coef = self.guide_coefficient(update) if train_actor and storage.guided else 0.0
        kl_limit = None if imitating else ppo.target_kl
        shuffle = generator(self.hparams.seed, update, self.global_rank, 2)
        totals, onpolicy_gap, epochs_run, early_stop = _MetricTotals(), None, 0, False
        while epochs_run < ppo.update_epochs and not early_stop:
            epochs_run += 1
            for minibatch in storage.minibatches(ppo.num_minibatches, shuffle):
                result = self.bundle.evaluate_actions(
                    minibatch.obs, minibatch.actions, minibatch.masks, minibatch.initial_hidden
                )
                if onpolicy_gap is None and not imitating:
                    # On-policy invariant: before any step the recomputed log-probs equal the stored ones.
                    onpolicy_gap = max_logprob_gap(result.log_probs, minibatch.log_probs)
                if imitating:
                    terms, metrics = imitation_loss(result, minibatch, ppo.value_coef, self.imitation.entropy_coef)
                else:
                    terms, metrics = ppo_loss(result, minibatch, ppo, entropy_coef, train_actor)
                if guide_coef > 0:
                    advised = self.bundle.evaluate_actions(
                        minibatch.obs, minibatch.guide_actions, minibatch.guide_masks, minibatch.initial_hidden
                    )
                    guide_terms, guide_metrics = guide_loss(advised, guide_coef)
                    terms, metrics = {**terms, **guide_terms}, {**metrics, **guide_metrics}
                loss = sum(terms.values())
                metrics["loss/total"] = loss.detach()
                metrics["grad_norm"] = self._step(loss, update, actor_learns=train_actor or imitating)
                totals.add(metrics)
                if kl_limit is not None and self._mean_over_ranks(metrics["approx_kl"]) > kl_limit:
                    early_stop = True
                    break
        out = self._update_metrics(storage, totals, onpolicy_gap, imitating)
        out.update({"ppo/epochs_run": float(epochs_run), "ppo/early_stop": float(early_stop),
                    "ppo/train_actor": float(train_actor or imitating), "ppo/imitating": float(imitating),
                    "lr": optimizer.param_groups[0]["lr"]})
        if storage.guided:
            out["guide/coef"] = guide_coef
        return out

    def _step(self, loss: torch.Tensor, update: int, actor_learns: bool) -> torch.Tensor:
        """One optimiser step on `loss`; returns the gradient norm before clipping."""
        if not torch.isfinite(loss):
            raise PolicyLossNaNError(f"PPO loss is {float(loss)} at update {update}; stopped before checkpointing "
                                     "this update")
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        # Backward outside the step's autocast: on CPU it runs on this thread and would re-autocast its matmuls to
        # fp16, where loss-scaled gradients overflow.
        with torch.autocast(self.device.type, enabled=False):
            self.manual_backward(loss)
        if not actor_learns:
            # Only the value head learns: the shared trunk would otherwise move the actor too.
            for param in self._actor_params:
                param.grad = None
        optimizer.step()  # clips in on_before_optimizer_step, on unscaled gradients
        return self._grad_norm

    def _update_metrics(self, storage: RolloutStorage, totals: _MetricTotals, onpolicy_gap: torch.Tensor | None,
                        imitating: bool) -> dict[str, float]:
        """The update's metrics averaged over minibatches and ranks, with the critic's and the guide's diagnostics
        over the whole rollout of every rank."""
        gamma = self.ppo.gamma
        keys, table = totals.table()
        ranks = gather_from_ranks({
            "keys": keys,
            "table": table,
            "onpolicy_gap": math.nan if onpolicy_gap is None else float(onpolicy_gap),
            "values": storage.values.detach().flatten().cpu(),
            "returns": storage.returns.detach().flatten().cpu(),
            "first_values": storage.values[:, 0].detach().cpu(),
            "first_returns": storage.first_step_return(gamma).detach().cpu(),
        })
        if any(rank["keys"] != keys for rank in ranks):
            raise RuntimeError(f"ranks logged different PPO metrics: {[rank['keys'] for rank in ranks]}")
        out = _MetricTotals.means(keys, [rank["table"] for rank in ranks])
        out["onpolicy/max_logprob_gap"] = max(rank["onpolicy_gap"] for rank in ranks)
        if storage.guided:
            # Steps where this policy chose exactly the teacher's whole action (irrelevant heads agree by construction).
            same = torch.stack([storage.actions[h] == storage.guide_actions[h] for h in storage.head_sizes]).all(dim=0)
            out["guide/agreement"] = float(same.float().mean())
        out["return/first_step"] = float(torch.cat([rank["first_returns"] for rank in ranks]).mean())
        if not imitating:  # a teacher's rollout holds no values of this critic
            out["explained_variance"] = float(explained_variance(
                torch.cat([rank["values"] for rank in ranks]), torch.cat([rank["returns"] for rank in ranks])
            ))
            # The critic against the truth, on the normalised reward scale: V(s_0) at sampling and the
            # discounted return actually collected from s_0.
            out["value/first_step"] = float(torch.cat([rank["first_values"] for rank in ranks]).mean())
        return out

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning calls this inside `optimizer.step()` after the precision plugin has unscaled the
        # gradients (fp16 loss scaling), so the threshold and the logged norm are in true gradient units
        # under every precision. Clipping right after `manual_backward` would see loss-scaled gradients.
        self._grad_norm = torch.nn.utils.clip_grad_norm_(
            self.policy_net.parameters(), self.ppo.max_grad_norm
        ).detach()

    def _mean_over_ranks(self, value: torch.Tensor) -> float:
        """The mean of a scalar over all ranks (the value itself on one process)."""
        return float(self.trainer.strategy.reduce(value.detach().clone(), reduce_op="mean"))

    # ---- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Env indices, normaliser merging and the optimiser's batch all depend on the number of ranks.
        checkpoint["world_size"] = self.trainer.world_size

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_resumable(checkpoint, self.hparams, self.bundle, self.trainer.world_size)

    def check_launch(self, world_size: int, checkpoint: dict[str, Any] | None) -> None:
        """Refuse, in the launching process, a run that cannot work: a policy without parameters on
        several processes, or a checkpoint (as loaded) that does not fit. (With `ddp_spawn` the checks in
        `on_load_checkpoint` run inside the worker processes, where an error becomes a traceback.)"""
        if world_size > 1 and not self.bundle.is_trainable:
            raise ConfigError(
                f"policy {self.hparams.policy['name']!r} has nothing to train, so it cannot run on "
                f"{world_size} processes; use trainer=default"
            )
        if checkpoint is not None:
            check_resumable(checkpoint, self.hparams, self.bundle, world_size)

    def load_policy_weights(self, checkpoint: dict[str, Any]) -> int:
        """Start from the policy weights of `checkpoint` (a warm start: nothing else of that run is kept).

        The checkpoint's observation may be narrower than this policy's: feature columns are only ever
        appended, so its weights fill the first columns of the input layer and the new ones start at zero
        weight, and the loaded policy acts exactly as it did until learning uses them. Returns the number
        of new input columns.
        """
        saved_dim = int(checkpoint.get("hyper_parameters", {}).get("obs_dim", self.hparams.obs_dim))
        added = max(self.hparams.obs_dim - saved_dim, 0)
        check_policy_fits(checkpoint, self.hparams, self.bundle, new_inputs=added)
        prefix = "policy_net."
        state = {key[len(prefix):]: value for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)}
        if added:
            weight = state["feature.0.weight"]
            state["feature.0.weight"] = torch.cat((weight, weight.new_zeros(weight.shape[0], added)), dim=1)
        self.policy_net.load_state_dict(state)
        return added
