"""Shared test settings."""

import torch

# The test models are tiny: one intra-op thread avoids oversubscription on small CI machines.
torch.set_num_threads(1)
