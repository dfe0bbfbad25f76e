"""Name → bundle class registry, filled by `@register_policy(name)` when `tamiyo.policy` is imported.

Every registered class is constructed as `cls(slot_config=..., topology=..., **cfg)` by the factory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tamiyo.policy.protocol import PROTOCOL_MEMBERS, PolicyBundle

_REGISTRY: dict[str, type] = {}

BundleClass = TypeVar("BundleClass", bound=type)


def register_policy(name: str) -> Callable[[BundleClass], BundleClass]:
    """Class decorator registering a `PolicyBundle` implementation under `name`."""

    def decorate(cls: BundleClass) -> BundleClass:
        if not isinstance(cls, type):
            raise TypeError(f"register_policy({name!r}) must decorate a class, got {cls!r}")
        missing = [member for member in PROTOCOL_MEMBERS if not hasattr(cls, member)]
        if missing:
            raise TypeError(f"{cls.__name__} does not implement PolicyBundle; missing: {', '.join(missing)}")
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} is already registered (by {_REGISTRY[name].__name__})")
        _REGISTRY[name] = cls
        return cls

    return decorate


def get_policy(name: str, **cfg: Any) -> PolicyBundle:
    """Instantiate the bundle registered under `name` with keyword configuration `cfg`."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        available = ", ".join(sorted(_REGISTRY)) or "(none registered)"
        raise ValueError(f"unknown policy {name!r}; available: {available}") from None
    return cls(**cfg)


def list_policies() -> list[str]:
    """Registered names, in registration order."""
    return list(_REGISTRY)


def clear_registry() -> None:
    """Test-only: forget every registered bundle. Wrap it in `registry_snapshot()` to undo it."""
    _REGISTRY.clear()


@contextmanager
def registry_snapshot() -> Iterator[None]:
    """Test-only: restore the registry to its current contents when the block exits."""
    saved = dict(_REGISTRY)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)
