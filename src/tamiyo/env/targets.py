"""What a user brings from their own package, named by `_target_` as Hydra names any object: a task loader
(`env.task`), a host (`env.host`) and seed blueprints (`env.blueprints.<name>`).

A target is a mapping `{_target_: "my_package.module.name", <argument>: <value>, …}`; it is built where the env
needs the object (in each env worker), with the arguments the env supplies added (a host gets `task` and `width`,
a blueprint `layout` and `channels`), and what it builds must be of the kind its place needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate

T = TypeVar("T")


def is_target(value: object) -> bool:
    """Whether `value` names an object by `_target_`."""
    return isinstance(value, Mapping) and "_target_" in value


def build_target(spec: Mapping[str, Any], where: str, kind: type[T], **supplied: Any) -> T:
    """The object `spec` names, called with its own arguments and the `supplied` ones; `where` is the config key
    that named it (for the one-line error), `kind` what it must build."""
    if not is_target(spec) or not isinstance(spec["_target_"], str):
        raise ValueError(f"{where} must be a mapping with a _target_ (a dotted import path), got {spec!r}")
    target = spec["_target_"]
    try:
        # Partial, then called here: the supplied objects (a task, a width) reach it as they are, never
        # converted into config nodes.
        factory = instantiate(dict(spec), _partial_=True)
    except InstantiationException as error:
        reason = str(error).split(", set env var HYDRA_FULL_ERROR")[0].strip().splitlines()[-1]
        raise ValueError(f"{where} {{_target_: {target}}}: {reason}") from error
    built = factory(**supplied)
    if not isinstance(built, kind):
        raise ValueError(f"{where} {{_target_: {target}}} built a {type(built).__name__}, not a {kind.__name__}")
    return built
