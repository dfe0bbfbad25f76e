"""The PolicyBundle protocol: its members, and isinstance checks that never raise."""

import pytest
import torch

from tamiyo.core.slots import SlotConfig
from tamiyo.policy import COMPILE_MODES, PolicyBundle, create_policy, list_policies, validate_compile_mode
from tamiyo.policy.protocol import PROTOCOL_MEMBERS

BUNDLES = ("lstm", "heuristic", "random", "static")
PROPERTIES = ("device", "dtype", "is_recurrent", "is_trainable", "slot_config", "obs_dim", "hidden_dim", "network",
              "is_compiled")


@pytest.fixture(scope="module", params=BUNDLES)
def bundle(request):
    return create_policy(request.param, SlotConfig.default(), "cnn", hidden_dim=16) if request.param == "lstm" \
        else create_policy(request.param, SlotConfig.default(), "cnn")


def test_protocol_members_are_the_spec_list():
    methods = {"get_action", "evaluate_actions", "get_value", "initial_hidden", "state_dict", "load_state_dict", "to",
               "compile"}
    assert set(PROTOCOL_MEMBERS) == methods | set(PROPERTIES)


def test_all_four_bundles_are_registered():
    assert set(BUNDLES) <= set(list_policies())


def test_every_bundle_is_a_policy_bundle(bundle):
    assert isinstance(bundle, PolicyBundle)


def test_no_property_raises(bundle):
    values = {name: getattr(bundle, name) for name in PROPERTIES}
    assert values["device"] == torch.device("cpu")
    assert values["dtype"] == torch.float32
    assert values["obs_dim"] == 149
    assert values["slot_config"] == SlotConfig.default()
    assert values["is_compiled"] is False
    assert values["is_trainable"] is (values["network"] is not None)


def test_plain_objects_are_not_policy_bundles():
    assert not isinstance(object(), PolicyBundle)
    assert not isinstance(torch.nn.Linear(2, 2), PolicyBundle)


@pytest.mark.parametrize("left_out", PROTOCOL_MEMBERS)
def test_missing_any_member_is_not_a_policy_bundle(left_out):
    def stand_in(*args):
        return None

    complete = type("Complete", (), {name: stand_in for name in PROTOCOL_MEMBERS})
    partial = type("Partial", (), {name: stand_in for name in PROTOCOL_MEMBERS if name != left_out})
    assert isinstance(complete(), PolicyBundle)
    assert not isinstance(partial(), PolicyBundle)


def test_compile_mode_validation():
    assert COMPILE_MODES == ("off", "default", "reduce-overhead", "max-autotune")
    for mode in COMPILE_MODES:
        assert validate_compile_mode(mode) == mode
    with pytest.raises(ValueError, match=r"unknown compile mode 'fast'; choose one of \['off', 'default'"):
        validate_compile_mode("fast")
