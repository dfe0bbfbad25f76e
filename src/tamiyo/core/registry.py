"""One name → implementation registry mechanism, used for policies, tasks and rewards.

`Registry.register(name)` is a decorator; `get(name)` raises one `ValueError` that lists the
available names. A registry may check each entry when it is registered (e.g. a protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, check: Callable[[str, T], None] | None = None) -> None:
        self.kind = kind
        self._check = check
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering the decorated object under `name` (a duplicate name is refused)."""

        def decorate(entry: T) -> T:
            if self._check is not None:
                self._check(name, entry)
            if name in self._entries:
                holder = self._entries[name]
                holder_name = getattr(holder, "__name__", holder)
                raise ValueError(f"{self.kind} {name!r} is already registered (by {holder_name})")
            self._entries[name] = entry
            return entry

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            available = ", ".join(sorted(self._entries)) or "(none registered)"
            raise ValueError(f"unknown {self.kind} {name!r}; available: {available}") from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def clear(self) -> None:
        """Test-only: forget every entry. Wrap it in `snapshot()` to undo it."""
        self._entries.clear()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Test-only: restore the registry to its current contents when the block exits."""
        saved = dict(self._entries)
        try:
            yield
        finally:
            self._entries.clear()
            self._entries.update(saved)
