"""Governor: health checks, snapshots, rollback of host and seed weights, and the penalised transition."""

import math

import pytest
import torch

from tamiyo.core.actions import BlueprintAction, FactoredAction, LifecycleOp
from tamiyo.core.stages import SeedStage
from tamiyo.env.config import EnvConfig
from tamiyo.env.governor import Governor, GovernorConfig
from tamiyo.env.seed_env import SeedEnv


class Counter:
    """A minimal snapshottable target."""

    def __init__(self) -> None:
        self.value = torch.zeros(3)

    def snapshot(self):
        return self.value.clone()

    def restore(self, snapshot):
        self.value = snapshot.clone()


def test_nan_rolls_back_to_the_last_committed_state():
    target = Counter()
    governor = Governor(target, GovernorConfig(), loss_scale=math.log(10))
    governor.reset(2.3)
    target.value += 1
    assert governor.check(train_loss=2.0, val_loss=2.0) is None
    governor.commit(2.0)
    target.value += 5
    reason = governor.check(train_loss=float("nan"), val_loss=2.0)
    assert reason is not None and "non-finite" in reason
    assert torch.equal(target.value, torch.ones(3)) and governor.rollbacks == 1
    target.value += 7  # the snapshot survives a restore and can be restored again
    assert governor.check(2.0, float("inf")) is not None
    assert torch.equal(target.value, torch.ones(3)) and governor.rollbacks == 2


def test_explosion_is_relative_to_recent_best_and_never_below_chance():
    target = Counter()
    governor = Governor(target, GovernorConfig(explosion_factor=4.0, window=3), loss_scale=2.3)
    governor.reset(2.3)
    for loss in (1.0, 0.5, 0.4):
        governor.commit(loss)
    assert governor.diagnose(1.0, 2.3) is None  # 2.3 ≤ max(4 · 0.4, 2.3)
    assert "exploded" in governor.diagnose(1.0, 2.31)
    for loss in (0.8, 0.8, 0.8):  # the window forgets the old best
        governor.commit(loss)
    assert governor.diagnose(1.0, 3.1) is None
    assert governor.diagnose(1.0, 3.3) is not None


def test_disabled_governor_never_rolls_back():
    target = Counter()
    governor = Governor(target, GovernorConfig(enabled=False), loss_scale=2.3)
    governor.reset(2.3)
    target.value += 1
    assert governor.check(float("nan"), float("nan")) is None
    assert torch.equal(target.value, torch.ones(3))


def test_config_validation():
    with pytest.raises(ValueError, match="explosion_factor"):
        GovernorConfig(explosion_factor=1.0)
    with pytest.raises(ValueError, match="window"):
        GovernorConfig(window=0)
    with pytest.raises(ValueError, match="non-finite"):
        Governor(Counter(), GovernorConfig(), 2.3).reset(float("nan"))


# ---------------------------------------------------------------- in the environment
def act(op: LifecycleOp, slot: int = 0) -> FactoredAction:
    indices = list(FactoredAction.wait().to_indices())
    indices[0], indices[1], indices[7] = slot, int(BlueprintAction.CONV_LIGHT), int(op)
    return FactoredAction.from_indices(indices)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def test_poisoned_host_is_rolled_back_with_its_seed_and_the_step_is_penalised(tiny_task):
    # The shaped reward penalises a rollback (the objective reward needs no penalty: see env/rewards.py).
    env = SeedEnv(tiny_task, EnvConfig(max_epochs=6, reward="shaped", auto_advance=False))
    env.reset(seed=0, episode=0)
    env.step(act(LifecycleOp.GERMINATE, slot=1))
    env.step(act(LifecycleOp.ADVANCE, slot=1))  # the seed trains (straight-through) from now on
    slot = env.model.slot("r0c1")
    assert slot.stage == SeedStage.TRAINING
    host_before, seed_before = weights(env.model.host), weights(slot.seed)
    reports_before = env._reports

    with torch.no_grad():
        env.model.host.classifier.weight[0, 0] = float("nan")
    result = env.step(FactoredAction.wait())

    assert result.info["rolled_back"] and "non-finite" in result.info["rollback_reason"]
    penalty = env.reward_fn.config.rollback_penalty
    assert result.info["reward_components"]["rollback"] == -penalty
    assert result.reward <= -penalty + 1.0  # the penalty dominates this transition's reward
    for name, value in weights(env.model.host).items():
        assert torch.equal(value, host_before[name]), name
    restored_seed = env.model.slot("r0c1").seed
    for name, value in weights(restored_seed).items():
        assert torch.equal(value, seed_before[name]), name
    assert result.reports == reports_before  # lifecycle state is back where the action was chosen
    assert math.isfinite(result.signals.val_loss) and result.signals.epoch == 3

    healthy = env.step(FactoredAction.wait())  # training resumes from the restored state
    assert not healthy.info["rolled_back"] and healthy.info["reward_components"]["rollback"] == 0.0
    assert all(torch.isfinite(p).all() for p in env.model.parameters())
    assert env.model.slot("r0c1").stage == SeedStage.TRAINING
    # The rebuilt seed optimiser trains the restored seed module.
    assert not torch.equal(weights(env.model.slot("r0c1").seed)["body.0.weight"], seed_before["body.0.weight"])
