"""Seed-lifecycle traces: the stage and alpha of every slot at every epoch of chosen env-episodes.

A trace is read from the per-step env infos a `RolloutCollector` keeps of its latest episode, and
saved as JSON next to a run's pictures so they can be redrawn later without re-running anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tamiyo.core.atomic_io import atomic_write_text

# File name of a saved trace inside a run's `plots/` directory.
LIFECYCLE_JSON = "lifecycle.json"


@dataclass(frozen=True)
class EpisodeLifecycle:
    """One env-episode: `stages[t][s]` (stage names) and `alphas[t][s]` after epoch `t + 1`."""

    label: str
    stages: list[list[str]]
    alphas: list[list[float]]


@dataclass(frozen=True)
class LifecycleTrace:
    slot_ids: list[str]
    episodes: list[EpisodeLifecycle] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LifecycleTrace:
        return cls(slot_ids=list(data["slot_ids"]), episodes=[EpisodeLifecycle(**e) for e in data["episodes"]])

    def save(self, path: Path) -> Path:
        """Write the trace as JSON, replacing `path` atomically."""
        return atomic_write_text(path, json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, path: Path) -> LifecycleTrace:
        if not path.is_file():
            raise FileNotFoundError(f"no lifecycle trace at {path}")
        return cls.from_json(json.loads(path.read_text()))


def episode_lifecycle(step_infos: Sequence[Sequence[dict]], env: int, label: str) -> EpisodeLifecycle:
    """The lifecycle of env `env` from `step_infos[step][env]` (the infos `SeedEnv.step` returns)."""
    if not step_infos:
        raise ValueError("no steps recorded: the episode has not been run")
    if not 0 <= env < len(step_infos[0]):
        raise ValueError(f"env index {env} is out of range for {len(step_infos[0])} envs")
    slot_ids = list(step_infos[0][env]["slot_stages"])
    stages = [[step[env]["slot_stages"][sid] for sid in slot_ids] for step in step_infos]
    alphas = [[float(step[env]["slot_alphas"][sid]) for sid in slot_ids] for step in step_infos]
    return EpisodeLifecycle(label=label, stages=stages, alphas=alphas)


def trace_of_envs(
    step_infos: Sequence[Sequence[dict]], label: str, envs: Sequence[int] | None = None
) -> LifecycleTrace:
    """A trace of the chosen envs (default: all) of one recorded episode, labelled `"<label>, env <i>"`."""
    if not step_infos:
        raise ValueError("no steps recorded: the episode has not been run")
    chosen = range(len(step_infos[0])) if envs is None else envs
    slot_ids = list(step_infos[0][0]["slot_stages"])
    return LifecycleTrace(
        slot_ids=slot_ids, episodes=[episode_lifecycle(step_infos, env, f"{label}, env {env}") for env in chosen]
    )
