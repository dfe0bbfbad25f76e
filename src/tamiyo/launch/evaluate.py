"""`tamiyo-evaluate`: run a checkpoint or a baseline for N episodes per seed and write its table.

Writes `evaluation.csv` (one row per env-episode), `evaluation.md` and a lifecycle timeline into the
Hydra run dir `outputs/evaluate/runs/<time>/`. Options: `conf/evaluate.yaml`.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tamiyo.conf import CONF_DIR
from tamiyo.evaluation.commands import evaluate_command
from tamiyo.launch.command_line import check_overrides
from tamiyo.launch.console import configure_console, report_user_errors
from tamiyo.launch.resume import override_keys


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def _run(cfg: DictConfig) -> None:
    configure_console()
    with report_user_errors(Path(cfg.paths.output_dir), Path(cfg.paths.output_root)):
        evaluate_command(cfg, [key for key, _ in override_keys(HydraConfig.get().overrides.task)])


def main() -> None:
    """`tamiyo-evaluate`: refuse a command line Hydra cannot compose in one line, then run."""
    check_overrides("evaluate", sys.argv[1:])
    _run()
