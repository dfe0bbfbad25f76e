"""Evaluate a checkpoint or a baseline: `python scripts/evaluate.py policy=heuristic seeds=[0,1] episodes=2`.

Writes `evaluation.csv` (one row per env-episode), `evaluation.md` (mean ± std) and a lifecycle
timeline into the Hydra run dir `outputs/evaluate/runs/<time>/`. Options: conf/evaluate.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from tamiyo.cli import CONF_DIR, USER_ERRORS
from tamiyo.eval_commands import evaluate_command
from tamiyo.evaluation import CheckpointContentError


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        evaluate_command(cfg)
    except (*USER_ERRORS, CheckpointContentError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
