"""Shared test settings and fixtures."""

import pytest
import torch

from tamiyo.env.tasks import Task, make_task

# The test models are tiny: one intra-op thread avoids oversubscription on small CI machines.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_task() -> Task:
    """mnist1d cut to 256 training and 128 validation signals."""
    full = make_task("mnist1d")
    return Task("mnist1d", "cnn", full.train_x[:256], full.train_y[:256], full.val_x[:128], full.val_y[:128], 10)
