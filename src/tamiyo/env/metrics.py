"""The validation numbers of one seed, read by its slot (which updates them) and by the quality gates."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SeedMetrics:
    """Validation numbers of one seed (accuracies in percent, contributions in percentage points)."""

    accuracy_at_germination: float
    accuracy_at_stage_start: float
    current_accuracy: float
    counterfactual: float | None = None  # last measured: val accuracy with the seed minus with its alpha at 0
    contribution_velocity: float = 0.0
    gradient_ratio: float | None = None  # EMA of the per-parameter seed/host gradient-norm ratio

    @property
    def total_improvement(self) -> float:
        return self.current_accuracy - self.accuracy_at_germination

    @property
    def improvement_since_stage_start(self) -> float:
        return self.current_accuracy - self.accuracy_at_stage_start
