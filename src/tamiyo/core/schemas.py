"""The options dataclass of a config group option: what Hydra composes `conf/<group>/<option>.yaml` against."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from typing import Any

_PLAIN_TYPES = (int, float, bool, str)


def _schema_type(hint: Any) -> Any:
    """`hint` where a Hydra structured config can hold it (a plain type, or an optional one), else `Any`."""
    if hint in _PLAIN_TYPES:
        return hint
    members = typing.get_args(hint)
    plain = [member for member in members if member is not type(None)]
    if len(members) == 2 and len(plain) == 1 and plain[0] in _PLAIN_TYPES:
        return plain[0] | None
    return Any


def options_dataclass(type_name: str, name: str, options: Iterable[tuple[str, Any, Any]]) -> type:
    """A dataclass `type_name` of `name` (the option's identity, its default) and each (key, type hint, default) of
    `options`, typed as far as a structured config can check: a key it lacks or a value of the wrong type is refused
    when the config is composed; the values themselves are checked by whatever the options build."""
    fields = [(key, _schema_type(hint), dataclasses.field(default=default)) for key, hint, default in options]
    return dataclasses.make_dataclass(type_name, [("name", str, dataclasses.field(default=name)), *fields])
