"""`tamiyo-compare`: the baselines and a learned checkpoint on the same seeds and env, in one table.

Writes `comparison.csv`, `comparison.md` and lifecycle timelines into `outputs/compare/runs/<time>/`.
Options: `conf/compare.yaml`.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tamiyo.conf import CONF_DIR
from tamiyo.evaluation.commands import compare_command
from tamiyo.launch.command_line import check_overrides
from tamiyo.launch.console import configure_console, report_user_errors
from tamiyo.launch.resume import override_keys


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="compare")
def _run(cfg: DictConfig) -> None:
    configure_console()
    with report_user_errors(Path(cfg.paths.output_dir), Path(cfg.paths.output_root)):
        compare_command(cfg, [key for key, _ in override_keys(HydraConfig.get().overrides.task)])


def main() -> None:
    """`tamiyo-compare`: refuse a command line Hydra cannot compose in one line, then run."""
    check_overrides("compare", sys.argv[1:])
    _run()
