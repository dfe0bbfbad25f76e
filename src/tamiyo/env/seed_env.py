"""One seed-lifecycle environment: a fresh host trained from scratch, one epoch per step.

`step(action)`: apply the action → train host and seeds for one epoch over the whole training split
(in this env's own shuffled order, measuring the seed/host gradient-norm ratio) → validate with
counterfactuals → governor health check (rollback on NaN/inf or a loss explosion) → advance the timed
lifecycle (`slot.step_epoch`) → reward of this transition → next observation. An episode ends by
truncation after `max_epochs` steps.

Randomness: every env owns a private copy of torch's global RNG streams, seeded from
(seed, env index, episode) at `reset` and swapped in for the duration of each call, so host and seed
initialisation, the episode's kind (task, host and width, when the env has several) and dropout never touch
the caller's RNG and do not depend on how many other envs run or in which order. Each epoch's data order
and each germination's fault draw (`seed_failure_rate`, `seed_faults`) come from generators of their own,
derived from the same key and the epoch or germination count: what a controller germinates changes
neither, so a control network trained from scratch on the same episode sees the same batches.

Seed budget: `max_seeds` germinations per episode (0 = unlimited; 3 by default, one per slot). Pruning does not
refund the budget; germination churn is also bounded by the 7-epoch prune cool-down.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from tamiyo.core.actions import (
    FactoredAction,
    LifecycleOp,
    topology_blueprints,
)
from tamiyo.core.legality import IllegalActionError, budget_left, illegal_reason, legal_blueprints
from tamiyo.core.observation import SlotReport, TrainingSignals
from tamiyo.core.seeding import derive_seed, generator
from tamiyo.core.stages import LIVE_STAGES, SeedStage
from tamiyo.env.blueprints import build_seed, make_faulty, seed_fault
from tamiyo.env.config import EnvConfig, Fossil, parse_fossil
from tamiyo.env.gates import GateConfig, GateResult
from tamiyo.env.governor import Governor
from tamiyo.env.gradients import GradientRatioMeter
from tamiyo.env.hosts import build_host, host_slot_config
from tamiyo.env.kinds import EpisodeKind, draw_kind, episode_kinds
from tamiyo.env.model import MorphogeneticModel, Validation, autocast, training_flops_per_sample, validate
from tamiyo.env.rewards import RewardInputs, make_reward
from tamiyo.env.tasks import Task, cross_entropy
from tamiyo.env.tracker import SignalTracker

_RETARGETABLE = frozenset({SeedStage.BLENDING, SeedStage.HOLDING})
_SEEDED_STAGES = LIVE_STAGES | {SeedStage.FOSSILIZED}
_BLENDED_STAGES = frozenset({SeedStage.BLENDING, SeedStage.HOLDING, SeedStage.FOSSILIZED})
# Sub-streams of an episode's seed, apart from the stream that initialises hosts and seeds: the data order
# of every epoch and the fault draw of every germination depend only on (seed, env, episode, epoch or
# germination), so a control network trained on the same episode sees the same batches.
_DATA_ORDER_STREAM = 1
_FAULT_STREAM = 2

Observation = tuple[TrainingSignals, list[SlotReport]]


def _seed_runs(stage: SeedStage, alpha: float) -> bool:
    """Whether a slot's seed takes part in a training step (the cost of counting FLOPs is paid only when this
    or the seed changes): in TRAINING it trains on detached features, blended it runs unless alpha is 0."""
    return stage is SeedStage.TRAINING or (stage in _BLENDED_STAGES and alpha != 0.0)


@dataclass(frozen=True)
class StepResult:
    signals: TrainingSignals
    reports: list[SlotReport]
    reward: float
    done: bool
    info: dict[str, Any]


@dataclass(frozen=True)
class _Metrics:
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class _EpochOutcome:
    validation: Validation
    rollback_reason: str | None  # None when the epoch was healthy
    train_s: float
    validate_s: float


def check_action(
    action: FactoredAction, reports: list[SlotReport], slot_ids: tuple[str, ...], topology: str,
    seeds_used: int, max_seeds: int,
) -> None:
    """Raise `IllegalActionError` unless `action` is legal for the slot states the policy observed.

    The rules are those of `tamiyo.core.legality`; gate conditions are not checked here (a gate
    failure is a legal no-op)."""
    op = LifecycleOp(action.op)
    if op == LifecycleOp.WAIT:
        return
    if not 0 <= action.slot < len(slot_ids):
        raise IllegalActionError(f"slot index {action.slot} out of range for slots {list(slot_ids)}")
    report, slot_id = reports[action.slot], slot_ids[action.slot]
    problem = illegal_reason(op, report.stage, report.alpha_holding, report.age, budget_left(seeds_used, max_seeds))
    if problem is not None and op == LifecycleOp.GERMINATE and report.stage == SeedStage.DORMANT:
        problem = f"{problem} ({seeds_used}/{max_seeds})"
    if problem is None and op == LifecycleOp.GERMINATE and action.blueprint not in legal_blueprints(topology):
        problem = f"blueprint {action.blueprint_id!r} is not available for topology {topology!r}"
    if problem is not None:
        raise IllegalActionError(
            f"illegal action {op.name} on slot {slot_id} in stage {report.stage.name}: {problem}"
        )


class _Optimizers:
    """The host SGD (host + fossils, with weight decay) and one SGD per live seed.

    `sync` rebuilds them whenever the parameter sets changed (germination, fossilization, prune,
    a new gate, a rollback), carrying each surviving parameter's momentum across."""

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.host: torch.optim.SGD | None = None
        self.seeds: dict[str, torch.optim.SGD] = {}
        self._layout: tuple[Any, ...] = ()

    @property
    def all(self) -> list[torch.optim.SGD]:
        return [self.host, *self.seeds.values()] if self.host is not None else []

    def sync(self, model: MorphogeneticModel) -> None:
        host_params = model.host_parameters()
        seed_params = model.live_seed_parameters()
        layout = (tuple(map(id, host_params)), tuple((sid, tuple(map(id, ps))) for sid, ps in seed_params.items()))
        if layout == self._layout:
            return
        carried = {param: state for opt in self.all for param, state in opt.state.items()}
        c = self.config
        self.host = torch.optim.SGD(
            host_params, lr=c.host_lr, momentum=c.host_momentum, weight_decay=c.host_weight_decay
        )
        self.seeds = {
            sid: torch.optim.SGD(params, lr=c.seed_lr, momentum=c.seed_momentum) for sid, params in seed_params.items()
        }
        for opt in self.all:
            for group in opt.param_groups:
                for param in group["params"]:
                    if param in carried:
                        opt.state[param] = carried[param]
        self._layout = layout

    def step(self) -> None:
        for opt in self.all:
            opt.step()

    def state_by_name(self, model: nn.Module) -> dict[str, dict[str, Tensor]]:
        """Copies of every parameter's optimiser state, keyed by the parameter's name in `model`."""
        states = {param: state for opt in self.all for param, state in opt.state.items()}
        return {
            name: _copy_state(states[param])
            for name, param in model.named_parameters()
            if param in states
        }

    def load_state_by_name(self, model: MorphogeneticModel, states: Mapping[str, Mapping[str, Tensor]]) -> None:
        """Rebuild the optimisers for `model`'s current parameters and load the named states."""
        self._layout = ()
        self.host, self.seeds = None, {}
        self.sync(model)
        owner = {param: opt for opt in self.all for group in opt.param_groups for param in group["params"]}
        for name, param in model.named_parameters():
            if name in states:
                owner[param].state[param] = _copy_state(states[name])


def _copy_state(state: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value.clone() if isinstance(value, Tensor) else value for key, value in state.items()}


class SeedEnv:
    """One environment; `env_index` only selects its RNG stream (see the module docstring).

    Given several tasks (or `config.host_widths` with several widths, or `config.kinds`), every episode draws its
    kind (`tamiyo.env.kinds`) from this env's RNG stream; the kinds' hosts must have the same injection points.
    With `config.kinds`, `task` holds one task per kind, in order (`tamiyo.env.kinds.load_tasks`)."""

    def __init__(
        self, task: Task | Sequence[Task], config: EnvConfig | None = None, env_index: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if env_index < 0:
            raise ValueError(f"env_index must be ≥ 0, got {env_index}")
        self.config = config if config is not None else EnvConfig()
        self.env_index = env_index
        self.device = torch.device(device)
        self.tasks = (task,) if isinstance(task, Task) else tuple(task)
        self.kinds = episode_kinds(self.tasks, self.config.kinds, self.config.host, self.config.host_widths)
        # The kinds' hosts must share their injection points (at width 1, so task × width kinds: once per task).
        hosts = ([(self.tasks[kind.task_index], kind.host) for kind in self.kinds] if self.config.kinds
                 else [(task, self.config.host) for task in self.tasks])
        host_slot_config(hosts)
        self._splits = [
            tuple(getattr(t, name).to(self.device) for name in ("train_x", "train_y", "val_x", "val_y"))
            for t in self.tasks
        ]
        self.reward_fn = make_reward(self.config.reward, **self.config.reward_config)
        self._draw_episode_kind(self.kinds[0])
        self.model: MorphogeneticModel | None = None
        self.governor: Governor | None = None
        self.optimizers = _Optimizers(self.config)
        self._rng_state: dict[str, Tensor] | None = None
        self._episode_key = (0, env_index, 0)  # (seed, env index, episode) of the current episode
        self.epoch = 0
        self.seeds_used = 0
        self.seeds_failed = 0
        self.train_flops = 0
        self._flops_cache: dict[tuple[Any, ...], int] = {}
        self._host_flops_per_sample = 0
        self.fossil_contributions: list[float] = []
        self._metrics: _Metrics | None = None
        self._reports: list[SlotReport] = []
        self._signals: TrainingSignals | None = None

    # ---- RNG ----
    @contextlib.contextmanager
    def _private_rng(self) -> Iterator[None]:
        """Run with this env's own global RNG streams (CPU, and the env's CUDA device if any)."""
        cuda = self.device.type == "cuda"
        devices = [self.device] if cuda else []
        with torch.random.fork_rng(devices=devices):
            if self._rng_state is not None:
                torch.set_rng_state(self._rng_state["cpu"])
                if cuda:
                    torch.cuda.set_rng_state(self._rng_state["cuda"], self.device)
            try:
                yield
            finally:
                self._rng_state = {"cpu": torch.get_rng_state()}
                if cuda:
                    self._rng_state["cuda"] = torch.cuda.get_rng_state(self.device)

    def _seed_private_rng(self, seed: int) -> None:
        self._rng_state = None
        with self._private_rng():
            torch.default_generator.manual_seed(seed)
            if self.device.type == "cuda":
                torch.cuda.default_generators[self.device.index or 0].manual_seed(seed)

    # ---- episode ----
    @property
    def slot_ids(self) -> tuple[str, ...]:
        return self._require_model().slot_config.slot_ids

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.max_epochs

    def _require_model(self) -> MorphogeneticModel:
        if self.model is None:
            raise RuntimeError("the environment has not been reset; call reset(seed, episode) first")
        return self.model

    def _draw_episode_kind(self, kind: EpisodeKind) -> None:
        self.kind = kind
        self.task = self.tasks[kind.task_index]
        self.host_width = kind.width
        self._train_x, self._train_y, self._val_x, self._val_y = self._splits[kind.task_index]
        self.tracker = SignalTracker(
            max_epochs=self.config.max_epochs, loss_scale=self.task.loss_scale, max_seeds=self.config.max_seeds,
            input_dims=self.task.spatial_dims, kind_index=self.kinds.index(kind), kinds=len(self.kinds),
        )

    def reset(self, seed: int, episode: int) -> Observation:
        """Start an episode with a fresh host; returns the observation after the initial validation (epoch 0)."""
        self._episode_key = (seed, self.env_index, episode)
        self._seed_private_rng(derive_seed(*self._episode_key))
        with self._private_rng():
            if self.config.kinds or len(self.kinds) > 1:
                self._draw_episode_kind(draw_kind(self.kinds, bool(self.config.kinds), len(self.config.host_widths)))
            host = build_host(self.task, self.host_width, self.kind.host)
            gates = GateConfig(strict=self.config.strict_gates)
            self.model = MorphogeneticModel(host, gates, self.config.slots).to(self.device)
            self.model.train()
            self.optimizers = _Optimizers(self.config)
            self.optimizers.sync(self.model)
            self.epoch = 0
            self.seeds_used = 0
            self.seeds_failed = 0
            self.train_flops = 0  # spent compute: a rollback undoes an epoch's effect, not its cost
            self._flops_cache = {}
            self.fossil_contributions = []
            self.tracker.reset()
            self._host_flops_per_sample = self._flops_per_sample(self.model)  # the host alone: no seed yet
            result = self._validate()
            if self.config.fossils:
                self._plant_fossils(result.accuracy)
                result = self._validate()
            # An untrained model has seen no training data, so its training-split metrics equal its
            # held-out ones in expectation; report those instead of spending a pass over the training split.
            self._metrics = _Metrics(result.loss, result.accuracy, result.loss, result.accuracy)
            self.governor = Governor(self, self.config.governor, self.task.loss_scale)
            self.governor.reset(result.loss)
            self._signals, self._reports = self._observe()
        return self._signals, self._reports

    def _plant_fossils(self, accuracy: float) -> None:
        model = self._require_model()
        for slot_id, seed in self.config.fossils.items():
            fossil = parse_fossil(seed)
            if fossil.blueprint not in topology_blueprints(model.topology):
                raise ValueError(f"fossil {seed!r} is not a blueprint of a {model.topology!r} host")
            slot = model.slot(slot_id)
            module = build_seed(fossil.blueprint, model.host.layout, slot.channels, self.config.blueprints)
            if fossil.fault is not None:
                module = make_faulty(fossil.fault, module)
            slot.plant_fossil(module, fossil.blueprint, fossil.algorithm, accuracy, fossil.alpha)
        self.optimizers.sync(model)

    def _observe(self) -> Observation:
        model, metrics = self._require_model(), self._metrics
        assert metrics is not None
        signals = self.tracker.update(
            epoch=self.epoch,
            train_loss=metrics.train_loss,
            train_accuracy=metrics.train_accuracy,
            val_loss=metrics.val_loss,
            val_accuracy=metrics.val_accuracy,
            host_params=model.host_param_count(),
            seed_params=model.seed_param_count(),
            seeds_used=self.seeds_used,
        )
        return signals, [slot.report() for slot in model.slots]

    # ---- step ----
    def check(self, action: FactoredAction) -> None:
        """Raise `IllegalActionError` unless `action` is legal in the current observation."""
        model = self._require_model()
        check_action(action, self._reports, self.slot_ids, model.topology, self.seeds_used, self.config.max_seeds)

    def step(self, action: FactoredAction) -> StepResult:
        """Apply `action`, train and validate one epoch, and return the next observation and reward."""
        self._require_model()
        if self.done:
            raise RuntimeError(f"the episode ended after {self.epoch} epochs; call reset() for a new one")
        self.check(action)
        started = time.perf_counter()
        extra_compute_before = self.extra_compute
        with self._private_rng():
            gate = self._apply(action)
            addressed = None if action.op == LifecycleOp.WAIT else action.slot
            if self.config.auto_prune_dead:
                self._prune_dead(addressed)
            if self.config.auto_advance:
                self._advance_others(addressed)
            epoch = self._run_epoch()
            self.epoch += 1
            before, signals_before = self._reports, self._signals
            assert signals_before is not None  # set by reset()
            signals, self._reports = self._observe()
            self._signals = signals
        rolled_back = epoch.rollback_reason is not None
        took_effect = action.op != LifecycleOp.WAIT and not rolled_back and (gate is None or gate.passed)
        reward = self.reward_fn(RewardInputs(
            action=action,
            took_effect=took_effect,
            before=before,
            after=self._reports,
            val_accuracy=signals.val_accuracy,
            host_params=signals.host_params,
            seed_params=signals.seed_params,
            val_accuracy_before=signals_before.val_accuracy,
            seed_params_before=signals_before.seed_params,
            epoch=self.epoch,
            max_epochs=self.config.max_epochs,
            fossil_contributions=tuple(self.fossil_contributions),
            rolled_back=rolled_back,
            extra_compute=self.extra_compute,
            extra_compute_before=extra_compute_before,
        ))
        slots = list(zip(self.slot_ids, self._reports, strict=True))
        model = self._require_model()
        info = {
            "epoch": self.epoch,
            "train_loss": signals.train_loss,
            "train_accuracy": signals.train_accuracy,
            "val_loss": signals.val_loss,
            "val_accuracy": signals.val_accuracy,
            "host_params": signals.host_params,
            "seed_params": signals.seed_params,
            "seeds_used": self.seeds_used,
            "seeds_failed": self.seeds_failed,
            # Fossilized this episode, by the controller's FOSSILIZE or by auto_advance.
            "seeds_fossilized": len(self.fossil_contributions),
            "train_flops": self.train_flops,
            "extra_compute": self.extra_compute,
            "kind": self.kind.name,
            "task": self.task.name,
            "host_width": self.host_width,
            "slot_stages": {sid: r.stage.name for sid, r in slots},
            "slot_alphas": {sid: r.alpha for sid, r in slots},
            # The grown architecture as fossil specs: blueprint, blend algorithm, alpha and fault of every
            # seed in the network (for a control network that reproduces it; never observed by a policy).
            "slot_seeds": {
                sid: str(Fossil(r.blueprint, r.alpha_algorithm, r.alpha, seed_fault(model.slot(sid).seed)))
                for sid, r in slots if r.stage in _SEEDED_STAGES
            },
            "counterfactuals": {} if rolled_back else epoch.validation.counterfactuals,
            "action": action.to_indices(),
            "op": LifecycleOp(action.op).name,
            "took_effect": took_effect,
            "gate_failed": gate is not None and not gate.passed,
            "gate_reason": None if gate is None else gate.reason,
            "rolled_back": rolled_back,
            "rollback_reason": epoch.rollback_reason,
            "reward": reward.total,
            "reward_components": reward.components,
            "time_train_s": epoch.train_s,
            "time_validate_s": epoch.validate_s,
            "time_step_s": time.perf_counter() - started,
        }
        return StepResult(signals, self._reports, reward.total, self.done, info)

    def _run_epoch(self) -> _EpochOutcome:
        """Train, validate, let the governor judge, then advance the timed lifecycle of a healthy epoch."""
        model = self._require_model()
        train_started = time.perf_counter()
        train_loss, train_accuracy = self._train_epoch()
        val_started = time.perf_counter()
        validation = self._validate()
        val_finished = time.perf_counter()
        self._metrics = _Metrics(train_loss, train_accuracy, validation.loss, validation.accuracy)
        for slot_id, slot in zip(self.slot_ids, model.slots, strict=True):
            if slot.has_seed:
                slot.record_validation(validation.accuracy, validation.counterfactuals.get(slot_id))
        assert self.governor is not None
        rollback_reason = self.governor.check(train_loss, validation.loss)
        if rollback_reason is None:
            for slot in model.slots:
                slot.step_epoch()
            self.governor.commit(validation.loss)
        return _EpochOutcome(validation, rollback_reason, val_started - train_started, val_finished - val_started)

    def _apply(self, action: FactoredAction) -> GateResult | None:
        """Carry out a legal action; the gate result for ADVANCE/FOSSILIZE, else None."""
        op = LifecycleOp(action.op)
        if op == LifecycleOp.WAIT:
            return None
        model = self._require_model()
        slot_id = self.slot_ids[action.slot]
        slot = model.slot(slot_id)
        if op == LifecycleOp.GERMINATE:
            seed = build_seed(action.blueprint, model.host.layout, slot.channels, self.config.blueprints)
            fault = self._draw_fault()
            if fault is not None:
                seed = make_faulty(fault, seed)
                self.seeds_failed += 1
            assert self._metrics is not None
            slot.germinate(seed, action.blueprint, action.style, action.tempo_epochs, action.alpha_target_value,
                           accuracy=self._metrics.val_accuracy)
            self.seeds_used += 1
            return None
        if op == LifecycleOp.ADVANCE:
            return slot.advance()
        if op == LifecycleOp.FOSSILIZE:
            return self._fossilize(action.slot)
        if op == LifecycleOp.SET_ALPHA_TARGET:
            slot.set_alpha_target(action.alpha_target_value, action.alpha_speed_steps, action.alpha_curve_shape,
                                  action.alpha_curve_steepness, action.alpha_algorithm)
            return None
        slot.prune(action.alpha_speed_steps, action.alpha_curve_shape, action.alpha_curve_steepness)
        return None

    def _fossilize(self, index: int) -> GateResult:
        counterfactual = self._reports[index].counterfactual
        gate = self._require_model().slots[index].fossilize()
        if gate.passed:
            assert counterfactual is not None  # G5 requires a measured counterfactual
            self.fossil_contributions.append(counterfactual)
        return gate

    def _prune_dead(self, addressed: int | None) -> None:
        """`auto_prune_dead`: prune, at once, every seed that trained an epoch in TRAINING without any gradient
        reaching it, except in the slot the action addressed."""
        for index, slot in enumerate(self._require_model().slots):
            report = slot.report()
            if index != addressed and report.is_dead and report.may_prune:
                slot.prune()

    def _advance_others(self, addressed: int | None) -> None:
        """`auto_advance`: fossilize every holding seed and advance every other seed whose ADVANCE is legal (its
        gate decides), except in the slot the action addressed."""
        budget = budget_left(self.seeds_used, self.config.max_seeds)
        for index, slot in enumerate(self._require_model().slots):
            if index == addressed or not slot.has_seed:
                continue
            report = slot.report()
            if illegal_reason(LifecycleOp.FOSSILIZE, report.stage, report.alpha_holding, report.age, budget) is None:
                self._fossilize(index)
            elif illegal_reason(LifecycleOp.ADVANCE, report.stage, report.alpha_holding, report.age, budget) is None:
                slot.advance()

    def _draw_fault(self) -> str | None:
        """The fault of the episode's next germination (None: healthy), from its own sub-stream."""
        rate, faults = self.config.seed_failure_rate, self.config.seed_faults
        if rate == 0:
            return None
        draw = generator(*self._episode_key, self.seeds_used, _FAULT_STREAM)
        if float(torch.rand((), generator=draw)) >= rate:
            return None
        return faults[int(torch.randint(len(faults), (), generator=draw))]

    def _validate(self) -> Validation:
        model = self._require_model()
        return validate(model, self._val_x, self._val_y, self.config.val_batch_size, self.config.autocast_dtype)

    @property
    def extra_compute(self) -> float:
        """Training FLOPs spent so far beyond the static host's over the same epochs, as a fraction of the static
        host's over the whole episode (the objective's compute term)."""
        per_epoch = self._host_flops_per_sample * len(self._train_x)
        return (self.train_flops - per_epoch * self.epoch) / (per_epoch * self.config.max_epochs)

    def _flops_per_sample(self, model: MorphogeneticModel) -> int:
        """Training FLOPs per sample, counted once per set of running seeds (counting costs a traced pass)."""
        key = tuple((id(s.seed), id(s.gate), _seed_runs(s.stage, s.alpha)) for s in model.slots)
        if key not in self._flops_cache:
            self._flops_cache[key] = training_flops_per_sample(model, self._train_x)
        return self._flops_cache[key]

    def _train_epoch(self) -> tuple[float, float]:
        """One pass over the training split in this env's shuffled order; per-sample mean loss, accuracy %."""
        model = self._require_model()
        self.optimizers.sync(model)
        x_all, y_all, batch_size = self._train_x, self._train_y, self.config.batch_size
        self.train_flops += self._flops_per_sample(model) * len(x_all)
        model.train()
        order = torch.randperm(len(x_all), generator=generator(*self._episode_key, self.epoch, _DATA_ORDER_STREAM))
        order = order.to(self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        gradients = GradientRatioMeter(model.host_parameters(), model.slots, self.device)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            x, y = x_all[index], y_all[index]
            model.zero_grad(set_to_none=True)
            with autocast(self.device, self.config.autocast_dtype):
                logits = model(x)
                loss = cross_entropy(logits.float(), y)
            loss.backward()
            gradients.accumulate()
            self.optimizers.step()
            loss_sum += loss.detach() * y.numel()
            correct += (logits.detach().argmax(dim=-1) == y).sum()
        # One read of the device per epoch: loss, hits and the gradient-norm sums together.
        totals = torch.cat([torch.stack([loss_sum, correct.double()]), gradients.sums])
        loss_total, hits, *gradient_sums = totals.tolist()
        gradients.record(gradient_sums)
        targets = y_all.numel()
        return loss_total / targets, 100.0 * hits / targets

    # ---- governor target ----
    def snapshot(self) -> dict[str, Any]:
        """An independent copy of everything a rollback restores."""
        model = self._require_model()
        return {
            "model": model.snapshot(),
            "optimizers": self.optimizers.state_by_name(model),
            "metrics": self._metrics,
            "seeds_used": self.seeds_used,
            "seeds_failed": self.seeds_failed,
            "fossil_contributions": list(self.fossil_contributions),
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        model = self._require_model()
        model.restore(snapshot["model"])
        self.optimizers.load_state_by_name(model, snapshot["optimizers"])
        self._metrics = snapshot["metrics"]
        self.seeds_used = snapshot["seeds_used"]
        self.seeds_failed = snapshot["seeds_failed"]
        self.fossil_contributions = list(snapshot["fossil_contributions"])

