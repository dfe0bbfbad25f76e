"""`tamiyo-compare`: the baselines and a learned checkpoint on the same seeds and env, in one table.

Writes `comparison.csv`, `comparison.md` and lifecycle timelines into `outputs/compare/runs/<time>/`.
Options: `conf/compare.yaml`.
"""

import sys

import hydra
from omegaconf import DictConfig

from tamiyo.conf import CONF_DIR
from tamiyo.evaluation.commands import compare_command
from tamiyo.launch.command_line import check_overrides
from tamiyo.launch.console import configure_console, report_user_errors
from tamiyo.launch.resume import command_line_keys


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="compare")
def _run(cfg: DictConfig) -> None:
    configure_console()
    with report_user_errors(cfg.paths):
        compare_command(cfg, command_line_keys())


def main() -> None:
    """`tamiyo-compare`: refuse a command line Hydra cannot compose in one line, then run."""
    check_overrides("compare", sys.argv[1:])
    _run()
