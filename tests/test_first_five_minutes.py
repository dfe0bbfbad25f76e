"""The README's "First five minutes" block, run as a newcomer runs it: every command in turn, in a fresh directory,
each finding the previous one's outputs (`ckpt_path=latest`, `tamiyo-plot latest`)."""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import sys
from pathlib import Path

from helpers.readme_commands import ROOT, code_blocks, console_scripts

SECTION = "## First five minutes"


def first_five_minutes() -> list[list[str]]:
    """The argv of each command of the section's shell block."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    (_, lines), = [block for block in code_blocks(section) if block[0] == "bash"]
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def as_subprocess(argv: list[str]) -> list[str]:
    """`python <file> …` from the checkout; `tamiyo-<name> …` through its console-script function."""
    if argv[0] == "python":
        return [sys.executable, str(ROOT / argv[1]), *argv[2:]]
    module, function = console_scripts()[argv[0]].split(":")
    return [sys.executable, "-c", f"from {module} import {function}; {function}()", *argv[1:]]


def newest(directory: Path) -> Path:
    return max(directory.iterdir(), key=lambda p: p.stat().st_mtime)


def test_the_readme_first_five_minutes_block_runs_in_a_fresh_directory(tmp_path):
    commands = first_five_minutes()
    assert [argv[:2] for argv in commands] == [["python", "train.py"], ["python", "scripts/evaluate.py"],
                                               ["python", "scripts/compare.py"], ["tamiyo-plot", "latest"]]
    for argv in commands:
        done = subprocess.run(as_subprocess(argv), cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    plotted = done.stdout
    outputs = tmp_path / "outputs"
    run = newest(outputs / "train" / "runs")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    # The evaluation ran the checkpoint's own env (debug=fast: 3-epoch episodes), not the command's 25 epochs.
    evaluation = (newest(outputs / "evaluate" / "runs") / "evaluation.md").read_text()
    assert re.search(r"^learned \(lstm\) from .*last\.ckpt on mnist1d \(the checkpoint's env: 3 epochs per episode",
                     evaluation)
    with (newest(outputs / "compare" / "runs") / "comparison.csv").open() as handle:
        controllers = [row["policy"] for row in csv.DictReader(handle)]
    assert controllers[:3] == ["static", "random", "heuristic"]
    # schedule_grid=null alone: no schedule, and static_final=auto retrains what the comparison has.
    assert controllers[-3:] == ["learned (lstm)", "static-final: heuristic", "static-final: learned (lstm)"]
    assert not any(c.startswith("schedule: none") for c in controllers)
    assert plotted.splitlines()[0] == f"latest: {run}"
    for picture in ("returns_accuracy.png", "head_entropy.png", "lifecycle.png"):
        assert f"wrote {run / 'plots' / picture}" in plotted and (run / "plots" / picture).stat().st_size > 0
