"""The policy registry and the factory; every test leaves the registry as it found it."""

import pytest

import tamiyo.policy  # noqa: F401  (registers the bundles)
from tamiyo.core.slots import SlotConfig
from tamiyo.policy import create_policy, get_policy, list_policies, register_policy
from tamiyo.policy.bundles import StaticPolicyBundle
from tamiyo.policy.registry import POLICIES


@pytest.fixture(autouse=True)
def restored_registry():
    before = list_policies()
    with POLICIES.snapshot():
        yield
    assert list_policies() == before


def _recording_bundle(calls: list[str]) -> type:
    """A static bundle that records construction, placement and compilation in order."""

    class Recording(StaticPolicyBundle):
        def __init__(self, slot_config, topology):
            calls.append("build")
            super().__init__(slot_config, topology)

        def to(self, device):
            calls.append(f"to {device}")
            return super().to(device)

        def compile(self, mode):
            calls.append(f"compile {mode}")
            super().compile(mode)

    return Recording


def test_builtin_bundles_registered():
    assert sorted(list_policies()) == ["heuristic", "lstm", "random", "schedule", "static"]
    assert isinstance(get_policy("static", slot_config=SlotConfig.default(), topology="cnn"), StaticPolicyBundle)


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match=r"unknown policy 'ppo'; available: heuristic, lstm, random, schedule, static"):
        get_policy("ppo")


def test_missing_members_are_named():
    class HalfBundle:
        def get_action(self):
            return None

        @property
        def device(self):
            return "cpu"

    with pytest.raises(TypeError, match=r"HalfBundle does not implement PolicyBundle; missing: compile, dtype, "
                                        r"evaluate_actions, get_value, hidden_dim, initial_hidden, is_compiled"):
        register_policy("half")(HalfBundle)
    assert "half" not in list_policies()


def test_non_class_rejected():
    with pytest.raises(TypeError, match="must decorate a class"):
        register_policy("fn")(lambda: None)


def test_duplicate_name_rejected():
    with pytest.raises(ValueError, match=r"policy 'static' is already registered \(by StaticPolicyBundle\)"):
        register_policy("static")(_recording_bundle([]))


def test_register_then_get():
    calls: list[str] = []
    register_policy("recording")(_recording_bundle(calls))
    assert list_policies()[-1] == "recording"
    get_policy("recording", slot_config=SlotConfig.default(), topology="cnn")
    assert calls == ["build"]


def test_clear_registry_is_undone_by_snapshot():
    with POLICIES.snapshot():
        POLICIES.clear()
        assert list_policies() == []
        with pytest.raises(ValueError, match=r"available: \(none registered\)"):
            get_policy("lstm")
    assert "lstm" in list_policies()


def test_factory_places_before_compiling():
    calls: list[str] = []
    register_policy("recording")(_recording_bundle(calls))
    bundle = create_policy("recording", SlotConfig.default(), "cnn", device="cpu", compile_mode="default")
    assert calls == ["build", "to cpu", "compile default"]
    assert bundle.is_compiled is False  # nothing to compile without a network


def test_factory_checks_compile_mode_before_building():
    calls: list[str] = []
    register_policy("recording")(_recording_bundle(calls))
    with pytest.raises(ValueError, match=r"unknown compile mode 'turbo'"):
        create_policy("recording", SlotConfig.default(), "cnn", compile_mode="turbo")
    assert calls == []
    # Even an unknown policy name reports the compile mode first.
    with pytest.raises(ValueError, match="unknown compile mode"):
        create_policy("no-such-policy", SlotConfig.default(), "cnn", compile_mode="turbo")


def test_factory_passes_configuration():
    bundle = create_policy("lstm", SlotConfig.for_grid(2, 2), "transformer", hidden_dim=24, num_layers=2)
    assert (bundle.hidden_dim, bundle.num_layers, bundle.obs_dim) == (24, 2, 23 + 39 * 4 + 2 + 8 + 1)
    assert bundle.slot_config.num_slots == 4
    with pytest.raises(ValueError, match="unknown topology 'mlp'"):
        create_policy("static", SlotConfig.default(), "mlp")
    with pytest.raises(TypeError, match="seed"):
        create_policy("static", SlotConfig.default(), "cnn", seed=3)
