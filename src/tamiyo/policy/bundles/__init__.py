"""The five registered policy bundles; importing this package registers them."""

from tamiyo.policy.bundles.base import FixedPolicyBundle, MaskViolationError, NotTrainableError
from tamiyo.policy.bundles.heuristic import HeuristicPolicyBundle
from tamiyo.policy.bundles.lstm import CompiledPlacementError, LSTMPolicyBundle
from tamiyo.policy.bundles.random import RandomPolicyBundle
from tamiyo.policy.bundles.schedule import SchedulePolicyBundle
from tamiyo.policy.bundles.static import StaticPolicyBundle

__all__ = [
    "CompiledPlacementError",
    "FixedPolicyBundle",
    "HeuristicPolicyBundle",
    "MaskViolationError",
    "LSTMPolicyBundle",
    "NotTrainableError",
    "RandomPolicyBundle",
    "SchedulePolicyBundle",
    "StaticPolicyBundle",
]
