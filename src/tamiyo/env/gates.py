"""Quality gates in front of a seed's lifecycle transitions.

Permissive gates check only structural conditions; strict gates add thresholds on training time,
accuracy gained, the seed/host gradient ratio, blending time and the measured contribution. Every
result carries the reason it passed or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tamiyo.core.stages import SeedStage
from tamiyo.env.metrics import SeedMetrics

if TYPE_CHECKING:
    from tamiyo.env.alpha import AlphaController

# Alpha within this of 1.0 counts as fully blended in.
FULL_ALPHA = 1.0 - 1e-6


@dataclass(frozen=True)
class GateResult:
    """Outcome of a quality gate; truthy when it passed."""

    gate: str
    passed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class GateConfig:
    """Quality-gate thresholds. Permissive (the default) checks only the structural conditions:
    G2 ≥ 1 epoch in TRAINING, G3 alpha settled at 1.0, G5 a counterfactual was measured. Strict adds
    the thresholds below (accuracies in percentage points)."""

    strict: bool = False
    min_training_improvement: float = 0.5
    min_training_epochs: int = 3
    min_gradient_ratio: float = 0.10
    min_blending_epochs: int = 3
    min_fossilize_contribution: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_training_epochs", "min_blending_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"gate threshold {name} must be ≥ 1, got {getattr(self, name)}")
        if self.min_gradient_ratio < 0:
            raise ValueError(f"gate threshold min_gradient_ratio must be ≥ 0, got {self.min_gradient_ratio}")


def check_gate(target: SeedStage, cfg: GateConfig, metrics: SeedMetrics, epochs_in_stage: int,
           controller: AlphaController) -> GateResult:
    """The gate in front of `target` (G1 TRAINING, G2 BLENDING, G3 HOLDING, G5 FOSSILIZED)."""
    strict = cfg.strict
    if target is SeedStage.TRAINING:
        return GateResult("G1", True, "seed germinated")
    if target is SeedStage.BLENDING:
        failed = [] if epochs_in_stage >= 1 else ["no epoch trained in TRAINING yet"]
        if strict:
            if epochs_in_stage < cfg.min_training_epochs:
                failed.append(f"{epochs_in_stage} < {cfg.min_training_epochs} epochs in TRAINING")
            if metrics.improvement_since_stage_start < cfg.min_training_improvement:
                failed.append(
                    f"improvement {metrics.improvement_since_stage_start:.2f} < {cfg.min_training_improvement}"
                )
            ratio = metrics.gradient_ratio
            if ratio is None or ratio < cfg.min_gradient_ratio:
                failed.append(f"gradient ratio {ratio} < {cfg.min_gradient_ratio}")
        return _gate_result("G2", failed, "seed trained")
    if target is SeedStage.HOLDING:
        ctl = controller
        failed = []
        if ctl.target < FULL_ALPHA:
            failed.append(f"alpha target {ctl.target} is not 1.0")
        elif not ctl.is_holding or ctl.alpha != ctl.target:
            failed.append(f"alpha {ctl.alpha:.3f} has not reached 1.0")
        if strict and epochs_in_stage < cfg.min_blending_epochs:
            failed.append(f"{epochs_in_stage} < {cfg.min_blending_epochs} epochs in BLENDING")
        return _gate_result("G3", failed, "alpha settled at 1.0")
    contribution = metrics.counterfactual
    failed = [] if contribution is not None else ["no counterfactual contribution measured"]
    if strict and contribution is not None and contribution < cfg.min_fossilize_contribution:
        failed.append(f"contribution {contribution:.2f} < {cfg.min_fossilize_contribution}")
    return _gate_result("G5", failed, "contribution measured")


def _gate_result(gate: str, failed: list[str], ok_reason: str) -> GateResult:
    return GateResult(gate, not failed, "; ".join(failed) if failed else ok_reason)
