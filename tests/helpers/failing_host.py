"""A host that breaks on purpose, for the tests of how env failures end a run: named by
`env.host={_target_: helpers.failing_host.FailingHost, ...}` (the run needs `tests/` on its PYTHONPATH).

It is the task's built-in host, except that on its `fail_on_step`-th training step one env (the first to get
there, claiming `claim_file`) fails: `how="raise"` raises, `how="exit"` ends its process at once with exit code 70,
as a crash would, without any cleanup."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from tamiyo.env.hosts import Host, build_host
from tamiyo.env.tasks import Task


class FailingHost(Host):
    def __init__(self, task: Task, width: float, fail_on_step: int, how: str, claim_file: str) -> None:
        if how not in ("raise", "exit"):
            raise ValueError(f"how must be raise or exit, got {how!r}")
        inner = build_host(task, width)
        super().__init__(inner.layout, [point.channels for point in inner.injection_points])
        self.inner = inner
        self.blocks = inner.blocks
        self.fail_on_step, self.how, self.claim_file = fail_on_step, how, Path(claim_file)
        self.training_steps = 0

    def embed(self, x: Tensor) -> Tensor:
        if self.training:
            self.training_steps += 1
            if self.training_steps == self.fail_on_step and self._claim():
                if self.how == "exit":
                    os._exit(70)
                raise RuntimeError(f"injected fault at training step {self.fail_on_step}")
        return self.inner.embed(x)

    def readout(self, h: Tensor) -> Tensor:
        return self.inner.readout(h)

    def _claim(self) -> bool:
        try:
            os.close(os.open(self.claim_file, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True
