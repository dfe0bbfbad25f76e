"""Episode kinds: what each episode of an env draws — a task, a host and a host width.

By default an env's kinds are its tasks × its host widths (`env.task` as a list, `env.host_widths`), the task and
the width drawn independently. `env.kinds` lists the kinds instead, when they differ in more than that (a host of
another depth, less training data): each is a mapping with a `name` and the env keys it sets for its own episodes,

    kinds:
      - {name: deep, task: digits, host: {_target_: tamiyo.env.hosts.stem_host, depth: 3}}
      - {name: shallow_small, task: digits, task_options: {train_subset: 150}, host: {…, depth: 1}}

— `task` (one task, a name or a `_target_`), `task_options` (merged over `env.task_options`), `host` and
`host_width`; a key a kind leaves out is the env's. Every episode draws one kind, each equally likely, from the
env's own RNG stream. The kind's name is in every step's info and in every evaluation row, where the headroom
report's context selector reads it. A controller tells kinds apart only by what its observation shows (the host
size and the input's dimensions, the learning curve), so kinds meant to be told apart at epoch 0 should differ there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tamiyo.core.values import is_number
from tamiyo.env.targets import is_target
from tamiyo.env.tasks import Task, make_task, make_tasks

KIND_KEYS = ("name", "task", "task_options", "host", "host_width")


@dataclass(frozen=True)
class EpisodeKind:
    """One kind of episode: its name, the index of its task among the env's loaded tasks, its host spec and
    width."""

    name: str
    task_index: int
    host: Mapping[str, Any] | None
    width: float


def check_kinds(kinds: Any, task: Any, host_widths: Sequence[float]) -> None:
    """Refuse a malformed `env.kinds` in one line (`task` and `host_widths`: the env's own, which kinds replace)."""
    if kinds is None:
        return
    if not isinstance(kinds, Sequence) or isinstance(kinds, str) or not kinds:
        raise ValueError(f"env.kinds must be null or a non-empty list of mappings, got {kinds!r}")
    if len(host_widths) > 1:
        raise ValueError(f"env.kinds and several env.host_widths {list(host_widths)} exclude each other; "
                         "give each kind its host_width")
    single_task = isinstance(task, str) or is_target(task)
    names: set[str] = set()
    for index, kind in enumerate(kinds):
        where = f"env.kinds[{index}]"
        if not isinstance(kind, Mapping):
            raise ValueError(f"{where} must be a mapping of env keys, got {kind!r}")
        unknown = sorted(set(kind) - set(KIND_KEYS))
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}; a kind sets {list(KIND_KEYS)}")
        name = kind.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ValueError(f"{where} needs a name of its own (a non-empty string, unique), got {name!r}")
        names.add(name)
        if "task" in kind and not (isinstance(kind["task"], str) or is_target(kind["task"])):
            raise ValueError(f"{where} ({name}): task must be one task (a name or a _target_ mapping), "
                             f"got {kind['task']!r}")
        if "task" not in kind and not single_task:
            raise ValueError(f"{where} ({name}) names no task and env.task is a list; give the kind its task")
        if not isinstance(kind.get("task_options", {}), Mapping):
            raise ValueError(f"{where} ({name}): task_options must be a mapping, got {kind['task_options']!r}")
        if kind.get("host") is not None and not is_target(kind["host"]):
            raise ValueError(f"{where} ({name}): host must be null or a mapping with a _target_, got {kind['host']!r}")
        width = kind.get("host_width", host_widths[0])
        if not (is_number(width) and width > 0):
            raise ValueError(f"{where} ({name}): host_width must be a number > 0, got {width!r}")


def load_tasks(task: Any, task_options: Mapping[str, Any] | None,
               kinds: Sequence[Mapping[str, Any]] | None) -> Task | tuple[Task, ...]:
    """The tasks an env's episodes draw, loaded: the env's task(s) with its task options, or with `kinds` one task
    per kind (in their order), each with the env's task options updated by the kind's."""
    options = dict(task_options or {})
    if not kinds:
        return make_tasks(task, **options)
    return tuple(make_task(kind.get("task", task), **{**options, **kind.get("task_options", {})}) for kind in kinds)


def episode_kinds(tasks: Sequence[Task], kinds: Sequence[Mapping[str, Any]] | None,
                  host: Mapping[str, Any] | None, host_widths: Sequence[float]) -> tuple[EpisodeKind, ...]:
    """An env's kinds over its loaded `tasks`: those `kinds` lists (one task each, in order), or every task × host
    width (task-major, named "<task> ×<width>")."""
    if kinds:
        if len(tasks) != len(kinds):
            raise ValueError(f"env.kinds lists {len(kinds)} kinds but {len(tasks)} tasks were loaded for them")
        width = host_widths[0]
        return tuple(EpisodeKind(kind["name"], index, kind.get("host", host), float(kind.get("host_width", width)))
                     for index, kind in enumerate(kinds))
    return tuple(EpisodeKind(default_kind_name(task.name, width), index, host, float(width))
                 for index, task in enumerate(tasks) for width in host_widths)


def default_kind_name(task: str, width: float) -> str:
    """The name of a kind `env.kinds` does not name: "<task> ×<width>"."""
    return f"{task} ×{width:g}"


def draw_kind(kinds: Sequence[EpisodeKind], named: bool, widths: int) -> EpisodeKind:
    """One episode's kind, drawn from torch's global RNG: a named kind (`env.kinds`), each equally likely; else the
    task, then the width, among `episode_kinds`' task × width (task-major, `widths` per task)."""
    if named:
        return kinds[int(torch.randint(len(kinds), ()))]
    task_index = int(torch.randint(len(kinds) // widths, ()))
    return kinds[task_index * widths + int(torch.randint(widths, ()))]
