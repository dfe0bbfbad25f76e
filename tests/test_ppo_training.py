"""PPO update behaviour that needs the training machinery: value fitting over a terminal horizon and
gradient clipping under fp16 loss scaling."""

import re
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers.runs import compose_config, tiny_overrides
from lightning.pytorch.plugins.precision import MixedPrecision

from tamiyo.core.actions import HEAD_NAMES, head_sizes
from tamiyo.core.errors import ConfigError
from tamiyo.core.slots import SlotConfig
from tamiyo.launch.train import build_datamodule, build_module
from tamiyo.launch.validation import validate_config
from tamiyo.policy.network import FactoredRecurrentActorCritic
from tamiyo.ppo.config import PPOOptions
from tamiyo.ppo.loss import ppo_loss
from tamiyo.ppo.storage import RolloutStorage
from tamiyo.training.module import PPOModule


@dataclass
class _ValueOnly:
    """Evaluated actions whose log-probs are the stored ones (no policy gradient): only the value learns."""

    log_probs: dict
    entropy: dict
    value: torch.Tensor


def _fit_value(horizon_is_terminal: bool, iterations: int = 15) -> tuple[float, float]:
    """Fit the value head on one fixed rollout as PPO does: every iteration recomputes the rollout's values
    and GAE targets with the current network, then takes 4 epochs × 2 minibatches of clipped value loss.
    Returns the final mean V(s_0) and the mean discounted return from s_0 of the episode itself."""
    torch.manual_seed(0)
    n, t_max, d, h = 4, 10, 4, 8
    slots = SlotConfig.default()
    heads = head_sizes(slots)
    net = FactoredRecurrentActorCritic(d, slots, feature_dim=h, hidden_dim=h)
    gen = torch.Generator().manual_seed(0)
    # The epoch is part of the observation (as in the env); the state after the last step is never trained on.
    epoch = (torch.arange(t_max + 1, dtype=torch.float32) / t_max).expand(n, t_max + 1)[..., None]
    obs = torch.cat([epoch, 0.1 * torch.randn(n, t_max + 1, d - 1, generator=gen)], dim=-1)
    rewards = torch.full((n, t_max), -0.02)
    rewards[:, -1] = torch.linspace(0.3, 4.0, n)  # the terminal reward, paid at the last epoch
    storage = RolloutStorage(n, t_max, d, heads, (1, n, h))
    actions = {head: torch.zeros(n, dtype=torch.long) for head in HEAD_NAMES}
    masks = {head: torch.ones(n, size, dtype=torch.bool) for head, size in heads.items()}
    log_probs = {head: torch.zeros(n) for head in HEAD_NAMES}
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3, eps=1e-5)
    cfg = PPOOptions(entropy_coef=0.0)
    shuffle = torch.Generator().manual_seed(1)
    for _ in range(iterations):
        with torch.no_grad():
            values = net.value(obs)
        storage.set_initial_hidden(net.initial_hidden(n))
        for t in range(t_max):
            done = torch.full((n,), t == t_max - 1 and horizon_is_terminal)
            storage.insert(t, obs[:, t], masks, actions, log_probs, values[:, t], rewards[:, t], done)
        if not horizon_is_terminal:  # the old treatment: the last epoch bootstraps from V(s_T)
            storage.set_bootstrap(values[:, t_max])
        storage.compute_returns(gamma=0.995, gae_lambda=0.98)
        for _epoch in range(4):
            for batch in storage.minibatches(2, shuffle):
                value = net.value(batch.obs, batch.initial_hidden)
                zeros = {head: torch.zeros_like(value) for head in HEAD_NAMES}
                terms, _ = ppo_loss(_ValueOnly(batch.log_probs, zeros, value), batch, cfg, cfg.entropy_coef)
                loss = sum(terms.values())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    true_return = float((rewards * 0.995 ** torch.arange(t_max)).sum(1).mean())
    return float(values[:, 0].mean()), true_return


def test_value_fit_on_a_fixed_rollout_converges_to_the_returns_with_a_terminal_horizon():
    torch.set_num_threads(1)
    value, true_return = _fit_value(horizon_is_terminal=True)
    assert true_return == pytest.approx(1.88, abs=0.01)
    assert value == pytest.approx(true_return, rel=0.1)
    # Bootstrapping the last epoch from V(s_T) lets the targets feed on the critic's own estimate.
    drifting, _ = _fit_value(horizon_is_terminal=False)
    assert drifting > 3 * true_return


def _module_and_data(tmp_path: Path) -> tuple[PPOModule, L.LightningDataModule]:
    cfg = compose_config("train", tmp_path, "ppo.max_grad_norm=0.05",
                         tiny=tiny_overrides(env__num_envs=2, ppo__update_epochs=2, ppo__num_minibatches=2))
    datamodule = build_datamodule(cfg, None)
    torch.manual_seed(0)
    return build_module(cfg, datamodule), datamodule


class _ClipSpy(PPOModule):
    """Records, at every optimiser step, the norm of the gradients the optimiser is about to apply."""

    applied_norms: list[float]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        grads = [p.grad for p in self.policy_net.parameters() if p.grad is not None]
        self.applied_norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_fp16_loss_scaling_clips_and_logs_unscaled_gradients(tmp_path):
    """Under a GradScaler (scale 2^16) the logged norm is the true one and the optimiser applies gradients
    clipped to max_grad_norm in true units (clipping the scaled ones would leave them 2^16 times too small)."""
    torch.set_num_threads(1)
    module, datamodule = _module_and_data(tmp_path)
    module.__class__ = _ClipSpy
    module.applied_norms = []
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, plugins=[MixedPrecision("16-mixed", "cpu", scaler)],
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    assert scaler.get_scale() == 2.0**16  # the scaler ran and skipped no step
    assert len(module.applied_norms) == 4  # 2 epochs × 2 minibatches
    grad_norm = module.last_update_metrics["grad_norm"]  # mean over the 4 steps, before clipping
    assert 0.05 < grad_norm < 100  # loss-scaled gradients would measure ~65 536 times more
    for applied in module.applied_norms:
        assert applied == pytest.approx(0.05, rel=1e-3)  # clipped to max_grad_norm=0.05, unscaled


class _Snapshots(L.Callback):
    """The policy's parameters and the logged `ppo/train_actor` after every update."""

    def __init__(self) -> None:
        self.params: list[dict[str, torch.Tensor]] = []
        self.train_actor: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: PPOModule) -> None:
        self.params.append({k: v.detach().clone() for k, v in module.policy_net.named_parameters()})
        self.train_actor.append(module.last_update_metrics["ppo/train_actor"])


def test_critic_warmup_updates_train_only_the_value_head_then_the_whole_policy(tmp_path):
    torch.set_num_threads(1)
    cfg = compose_config("train", tmp_path, "ppo.critic_warmup_updates=1",
                         tiny=tiny_overrides(env__num_envs=2, ppo__update_epochs=1, ppo__num_minibatches=1))
    datamodule = build_datamodule(cfg, None)
    torch.manual_seed(0)
    module = build_module(cfg, datamodule)
    initial = {k: v.detach().clone() for k, v in module.policy_net.named_parameters()}
    snapshots = _Snapshots()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[snapshots])
    trainer.fit(module, datamodule=datamodule)
    assert snapshots.train_actor == [0.0, 1.0]
    warmed, trained = snapshots.params

    def changed(after: dict[str, torch.Tensor], before: dict[str, torch.Tensor]) -> set[str]:
        return {k for k in after if not torch.equal(after[k], before[k])}

    value_head = {k for k in initial if k.startswith("value_head.")}
    assert changed(warmed, initial) == value_head
    assert changed(trained, warmed) - value_head  # the actor learns from the second update on


def test_negative_critic_warmup_is_refused(tmp_path):
    cfg = compose_config("train", tmp_path, "ppo.critic_warmup_updates=-1", tiny=tiny_overrides(env__num_envs=2))
    with pytest.raises(ValueError, match=r"^ppo.critic_warmup_updates must be an integer ≥ 0, got -1$"):
        build_module(cfg, build_datamodule(cfg, None))


class _Ops(L.Callback):
    """The ops PPO's rollout sampled per env in every update (`ops/<op>` of the rollout statistics)."""

    def __init__(self) -> None:
        self.prunes: list[float] = []
        self.germinations: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: PPOModule) -> None:
        self.prunes.append(module.last_rollout_stats["ops/prune"])
        self.germinations.append(module.last_rollout_stats["ops/germinate"])


def _sampled_ops(tmp_path: Path, *overrides: str) -> _Ops:
    """Three updates of a policy that starts out eager to germinate and to prune (6-epoch episodes)."""
    torch.set_num_threads(1)
    cfg = compose_config("train", tmp_path, "policy.op_init_logits.prune=3.0", "+policy.op_init_logits.germinate=3.0",
                         *overrides, tiny=tiny_overrides(env__num_envs=2, env__max_epochs=6))
    datamodule = build_datamodule(cfg, None)
    torch.manual_seed(0)
    module = build_module(cfg, datamodule)
    ops = _Ops()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[ops])
    trainer.fit(module, datamodule=datamodule)
    return ops


def test_an_op_curriculum_keeps_prune_out_of_the_rollouts_until_its_update(tmp_path):
    free = _sampled_ops(tmp_path / "free")
    assert free.prunes[0] > 0 and free.prunes[1] > 0  # this policy prunes from the start
    held = _sampled_ops(tmp_path / "held", "ppo.ops_from_update={prune: 2}")
    assert held.prunes[:2] == [0.0, 0.0] and held.prunes[2] > 0
    assert min(held.germinations) > 0  # the other ops stay


@pytest.mark.parametrize(("value", "message"), [
    ("{wait: 3}", "ppo.ops_from_update: unknown op 'wait'; ops that can wait for an update: germinate, "),
    ("{prune: -1}", "ppo.ops_from_update: prune needs an update index ≥ 0, got -1"),
    ("20", "ppo.ops_from_update must be a mapping op → update, e.g. {prune: 20}, got 20"),
])
def test_a_bad_op_curriculum_is_refused_in_one_line(tmp_path, value, message):
    cfg = compose_config("train", tmp_path, f"ppo.ops_from_update={value}", tiny=tiny_overrides())
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(cfg)
