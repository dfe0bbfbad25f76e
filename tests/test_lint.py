"""The code base passes the linter with the rules pyproject.toml selects."""

import subprocess
import sys

from helpers.runs import ROOT


def test_ruff_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "scripts", "train.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
