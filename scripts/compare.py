"""Compare static / random / heuristic / learned: `python scripts/compare.py ckpt_path=<ckpt|latest> seeds=5`.

Writes `comparison.csv` (one row per env-episode), `comparison.md` (mean ± std of final accuracy,
return, parameter cost and seed counts per policy) and one lifecycle timeline per policy into the
Hydra run dir `outputs/compare/runs/<time>/`. Env options must match the checkpoint's training run.
Options: conf/compare.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from tamiyo.cli import CONF_DIR, USER_ERRORS
from tamiyo.eval_commands import compare_command
from tamiyo.evaluation import CheckpointContentError


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="compare")
def main(cfg: DictConfig) -> None:
    try:
        compare_command(cfg)
    except (*USER_ERRORS, CheckpointContentError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
