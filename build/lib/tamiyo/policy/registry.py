"""Name → bundle class registry, filled by `@register_policy(name)` when `tamiyo.policy` is imported.

Every registered class is constructed as `cls(slot_config=..., topology=..., **cfg)` by the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tamiyo.core.registry import Registry
from tamiyo.policy.protocol import PROTOCOL_MEMBERS, PolicyBundle

BundleClass = TypeVar("BundleClass", bound=type)


def _check_bundle_class(name: str, cls: Any) -> None:
    if not isinstance(cls, type):
        raise TypeError(f"register_policy({name!r}) must decorate a class, got {cls!r}")
    missing = [member for member in PROTOCOL_MEMBERS if not hasattr(cls, member)]
    if missing:
        raise TypeError(f"{cls.__name__} does not implement PolicyBundle; missing: {', '.join(missing)}")


POLICIES: Registry[type] = Registry("policy", check=_check_bundle_class)


def register_policy(name: str) -> Callable[[BundleClass], BundleClass]:
    """Class decorator registering a `PolicyBundle` implementation under `name`."""
    return POLICIES.register(name)


def get_policy(name: str, **cfg: Any) -> PolicyBundle:
    """Instantiate the bundle registered under `name` with keyword configuration `cfg`."""
    return POLICIES.get(name)(**cfg)


def list_policies() -> list[str]:
    """Registered names, in registration order."""
    return POLICIES.names()
