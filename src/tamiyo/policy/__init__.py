"""The policy layer: features, action masks, the factored actor-critic and the swappable policy bundles.

Importing this package registers the bundles "lstm", "heuristic", "random", "static" and "schedule"; build one
with `create_policy(name, slot_config, topology, device=..., compile_mode=...)`.
"""

from tamiyo.policy.bundles import (
    CompiledPlacementError,
    HeuristicPolicyBundle,
    LSTMPolicyBundle,
    MaskViolationError,
    NotTrainableError,
    RandomPolicyBundle,
    StaticPolicyBundle,
)
from tamiyo.policy.distribution import InvalidStateMachineError, MaskedCategorical, set_validation
from tamiyo.policy.factory import create_policy
from tamiyo.policy.features import extract_features, obs_dim
from tamiyo.policy.masks import ActionMasks, compute_masks
from tamiyo.policy.network import ActionResult, EvalResult, FactoredRecurrentActorCritic
from tamiyo.policy.protocol import COMPILE_MODES, PolicyBundle, validate_compile_mode
from tamiyo.policy.registry import get_policy, list_policies, register_policy

__all__ = [
    "COMPILE_MODES",
    "ActionMasks",
    "ActionResult",
    "CompiledPlacementError",
    "EvalResult",
    "FactoredRecurrentActorCritic",
    "HeuristicPolicyBundle",
    "MaskViolationError",
    "InvalidStateMachineError",
    "LSTMPolicyBundle",
    "MaskedCategorical",
    "NotTrainableError",
    "PolicyBundle",
    "RandomPolicyBundle",
    "StaticPolicyBundle",
    "compute_masks",
    "create_policy",
    "extract_features",
    "get_policy",
    "list_policies",
    "obs_dim",
    "register_policy",
    "set_validation",
    "validate_compile_mode",
]
