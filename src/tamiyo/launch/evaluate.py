"""`tamiyo-evaluate`: run a checkpoint or a baseline for N episodes per seed and write its table.

Writes `evaluation.csv` (one row per env-episode), `evaluation.md` and a lifecycle timeline into the
Hydra run dir `outputs/evaluate/runs/<time>/`. Options: `conf/evaluate.yaml`.
"""

import sys

import hydra
from omegaconf import DictConfig

from tamiyo.conf import CONF_DIR
from tamiyo.evaluation.commands import evaluate_command
from tamiyo.launch.command_line import check_overrides
from tamiyo.launch.console import configure_console, report_user_errors
from tamiyo.launch.resume import command_line_keys


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def _run(cfg: DictConfig) -> None:
    configure_console()
    with report_user_errors(cfg.paths):
        evaluate_command(cfg, command_line_keys())


def main() -> None:
    """`tamiyo-evaluate`: refuse a command line Hydra cannot compose in one line, then run."""
    check_overrides("evaluate", sys.argv[1:])
    _run()
