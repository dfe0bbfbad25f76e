"""Seed faults (dead, unstable), fair control networks (fossil specs with alpha and fault, the same data
order) and the training compute every episode reports."""

import dataclasses

import pytest
import torch
from torch import nn

from tamiyo.core.actions import AlphaAlgorithm, FactoredAction, LifecycleOp, blueprint_from_id
from tamiyo.core.stages import SeedStage
from tamiyo.env.blueprints import FailedSeed, UnstableSeed, make_faulty, seed_fault
from tamiyo.env.config import EnvConfig, Fossil, parse_fossil
from tamiyo.env.model import training_flops_per_sample
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task

WAIT = FactoredAction.wait()


@pytest.fixture(scope="module")
def task():
    return make_task("mnist1d", train_subset=128, val_subset=64)


def _germinate(blueprint: str = "conv_heavy", slot: int = 0) -> FactoredAction:
    return dataclasses.replace(WAIT, op=LifecycleOp.GERMINATE, slot=slot, blueprint=blueprint_from_id(blueprint))


def test_an_unstable_seed_amplifies_its_change_and_its_gradient():
    inner = nn.Linear(3, 3)
    unstable = UnstableSeed(inner, gain=10.0)
    x = torch.randn(4, 3)
    assert torch.allclose(unstable(x), x + 10.0 * (inner(x) - x))
    unstable(x).sum().backward()
    amplified = inner.weight.grad.clone()
    inner.zero_grad()
    inner(x).sum().backward()
    assert torch.allclose(amplified, 10.0 * inner.weight.grad)  # real gradient, gain times larger
    with pytest.raises(ValueError, match="an unstable seed's gain must be > 1, got 1.0"):
        UnstableSeed(inner, gain=1.0)
    with pytest.raises(ValueError, match=r"unknown seed fault 'slow'; choose from \['dead', 'unstable'\]"):
        make_faulty("slow", inner)
    faults = (seed_fault(make_faulty("dead", inner)), seed_fault(unstable), seed_fault(inner))
    assert faults == ("dead", "unstable", None)


def test_a_failing_seed_draws_its_fault_from_seed_faults(task):
    env = SeedEnv(task, EnvConfig(max_epochs=3, seed_failure_rate=1.0, seed_faults=("unstable",), auto_advance=False))
    env.reset(seed=0, episode=0)
    info = env.step(_germinate()).info
    seed = env.model.slot("r0c0").seed
    assert isinstance(seed, UnstableSeed) and info["seeds_failed"] == 1
    assert info["slot_seeds"] == {"r0c0": "conv_heavy/add@0!unstable"}  # GERMINATED: alpha 0
    with pytest.raises(ValueError, match=r"seed_faults must name faults from \['dead', 'unstable'\], got \['slow'\]"):
        EnvConfig(seed_faults=("slow",))
    with pytest.raises(ValueError, match=r"seed_faults must name faults from .*, got \[\]"):
        EnvConfig(seed_faults=())


def test_both_faults_occur_when_both_are_named(task):
    env = SeedEnv(task, EnvConfig(max_epochs=1, seed_failure_rate=1.0, seed_faults=("dead", "unstable"),
                                  auto_advance=False))
    kinds = set()
    for episode in range(12):
        env.reset(seed=0, episode=episode)
        env.step(_germinate())
        kinds.add(seed_fault(env.model.slot("r0c0").seed))
    assert kinds == {"dead", "unstable"}


def test_which_germination_fails_does_not_depend_on_what_was_germinated(task):
    """The fault draw has its own sub-stream: a bigger seed's initialisation does not move it."""
    failed = {}
    for blueprint in ("conv_heavy", "conv_small"):
        env = SeedEnv(task, EnvConfig(max_epochs=1, seed_failure_rate=0.5, auto_advance=False))
        failed[blueprint] = []
        for episode in range(10):
            env.reset(seed=3, episode=episode)
            failed[blueprint].append(env.step(_germinate(blueprint)).info["seeds_failed"])
    assert failed["conv_heavy"] == failed["conv_small"]
    assert 0 < sum(failed["conv_heavy"]) < 10


def test_germinating_leaves_the_data_order_and_so_the_host_untouched(task):
    """A GERMINATED or TRAINING seed does not change the host's forward or its gradient, so with the same
    data order the host trains exactly as without the seed: the condition for a fair control network."""
    hosts = {}
    for grow in (False, True):
        env = SeedEnv(task, EnvConfig(max_epochs=3, auto_advance=False))
        env.reset(seed=1, episode=2)
        env.step(_germinate() if grow else WAIT)
        env.step(dataclasses.replace(WAIT, op=LifecycleOp.ADVANCE, slot=0) if grow else WAIT)  # → TRAINING
        if grow:
            assert env.model.slot("r0c0").stage is SeedStage.TRAINING
        env.step(WAIT)
        hosts[grow] = {name: p.detach().clone() for name, p in env.model.host.named_parameters()}
    assert all(torch.equal(hosts[False][name], hosts[True][name]) for name in hosts[False])


@pytest.mark.parametrize(("spec", "fossil"), [
    ("conv_heavy/add", Fossil(blueprint_from_id("conv_heavy"), AlphaAlgorithm.ADD)),
    ("conv_small/gate@0.25", Fossil(blueprint_from_id("conv_small"), AlphaAlgorithm.GATE, 0.25)),
    ("conv_heavy/add@0!dead", Fossil(blueprint_from_id("conv_heavy"), AlphaAlgorithm.ADD, 0.0, "dead")),
    ("norm/multiply!unstable", Fossil(blueprint_from_id("norm"), AlphaAlgorithm.MULTIPLY, 1.0, "unstable")),
])
def test_fossil_specs_parse_and_print_back(spec, fossil):
    assert parse_fossil(spec) == fossil and str(fossil) == spec


@pytest.mark.parametrize(("spec", "message"), [
    ("conv_heavy/add@1.5", r"fossil 'conv_heavy/add@1.5' must have an alpha in \[0, 1\]"),
    ("conv_heavy/add@x", r"fossil 'conv_heavy/add@x' must have an alpha in \[0, 1\]"),
    ("conv_heavy/add!slow", r"fossil 'conv_heavy/add!slow' names an unknown fault 'slow'"),
])
def test_bad_fossil_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        EnvConfig(fossils={"r0c0": spec})


def test_a_control_network_plants_its_fossils_at_their_alpha_and_with_their_fault(task):
    env = SeedEnv(task, EnvConfig(max_epochs=1, fossils={"r0c0": "conv_heavy/add@0.4!dead", "r0c1": "norm/add"},
                                  auto_advance=False))
    _, reports = env.reset(seed=0, episode=0)
    assert [r.stage for r in reports[:2]] == [SeedStage.FOSSILIZED] * 2
    assert (reports[0].alpha, reports[1].alpha) == pytest.approx((0.4, 1.0))
    assert isinstance(env.model.slot("r0c0").seed, FailedSeed) and seed_fault(env.model.slot("r0c1").seed) is None
    info = env.step(WAIT).info
    # The control network's own architecture reads back as the specs it was built from.
    assert info["slot_seeds"] == {"r0c0": "conv_heavy/add@0.4!dead", "r0c1": "norm/add"}


def test_training_compute_counts_every_epoch_of_the_network_as_it_trains(task):
    plain = SeedEnv(task, EnvConfig(max_epochs=3, auto_advance=False))
    plain.reset(seed=0, episode=0)
    per_epoch = training_flops_per_sample(plain.model, task.train_x) * len(task.train_x)
    assert per_epoch > 0
    flops = [plain.step(WAIT).info["train_flops"] for _ in range(3)]
    assert flops == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    fixed = SeedEnv(task, EnvConfig(max_epochs=1, fossils={"r0c0": "conv_heavy/add"}, auto_advance=False))
    fixed.reset(seed=0, episode=0)
    assert fixed.step(WAIT).info["train_flops"] > per_epoch  # the fossil's convolutions cost compute
    # A GERMINATED seed does not run; in TRAINING it runs (and is trained) though its output is unused.
    grown = SeedEnv(task, EnvConfig(max_epochs=3, auto_advance=False))
    grown.reset(seed=0, episode=0)
    after = [grown.step(_germinate()).info["train_flops"]]
    after.append(grown.step(dataclasses.replace(WAIT, op=LifecycleOp.ADVANCE, slot=0)).info["train_flops"])
    assert after[0] == per_epoch and after[1] - after[0] > per_epoch


@pytest.mark.parametrize(("failure_rate", "auto_advance"), [(1.0, True), (1.0, False), (0.0, True)])
def test_auto_prune_dead_removes_a_dead_seed_after_its_training_epoch_before_it_blends(task, failure_rate,
                                                                                       auto_advance):
    config = EnvConfig(max_epochs=6, seed_failure_rate=failure_rate, seed_faults=("dead",), max_seeds=2,
                       auto_advance=auto_advance, auto_prune_dead=True)
    env = SeedEnv(task, config)
    env.reset(seed=0, episode=0)
    stages = [env.step(_germinate("conv_light")).info["slot_stages"]["r0c0"]]
    advance = dataclasses.replace(WAIT, op=LifecycleOp.ADVANCE, slot=0)
    stages.append(env.step(WAIT if auto_advance else advance).info["slot_stages"]["r0c0"])  # into TRAINING
    stages.append(env.step(WAIT).info["slot_stages"]["r0c0"])  # its TRAINING epoch measured; a dead seed goes
    if failure_rate:
        assert stages[1] == "TRAINING" and stages[2] in ("PRUNED", "EMBARGOED")
        assert env.seeds_used == 1 and env._require_model().seed_param_count() == 0
    else:  # a healthy seed is left to the gates (auto_advance blends it)
        assert stages[2] == "BLENDING"
