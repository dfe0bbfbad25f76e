"""Name → bundle class registry, filled by `@register_policy(name)` when `tamiyo.policy` is imported.

Every registered class is constructed as `cls(slot_config=..., topology=..., **cfg)` by the factory; its options
are the keywords after those (and `obs_dim`), or, where it takes `**options`, the fields of its `options_type`.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from tamiyo.core.registry import Registry
from tamiyo.core.schemas import options_dataclass
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


# Keywords every bundle takes from the run rather than from its `policy` options.
_RUN_KEYWORDS = ("self", "slot_config", "topology", "obs_dim")


def policy_options(name: str) -> type:
    """The options of the `policy` group for policy `name`, as a dataclass: `name` and every option of its bundle
    with its default. `conf/policy/<file>.yaml` extends it, so a key the policy lacks or a value of the wrong type
    is refused when the config is composed; the values themselves are checked once, by the bundle."""
    cls = POLICIES.get(name)
    own = getattr(cls, "options_type", None)
    if own is not None:
        hints = typing.get_type_hints(own)
        options = [(item.name, hints[item.name], item.default) for item in dataclasses.fields(own)]
    else:
        hints = typing.get_type_hints(cls.__init__)
        options = [(key, hints[key], parameter.default)
                   for key, parameter in inspect.signature(cls.__init__).parameters.items()
                   if key not in _RUN_KEYWORDS and parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    return options_dataclass(f"{cls.__name__}Options", name, options)
