"""The README a newcomer reads: every command in it composes, its links resolve, its configuration table names
keys that exist, its test command is the one CI runs, and it stays short. Also the moved experiment scripts start
from `scripts/experiments/`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.readme_commands import ROOT, code_blocks, shell_commands
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tamiyo.conf import CONF_DIR

README = ROOT / "README.md"
RECORDS = sorted((ROOT / "scripts" / "experiments").glob("*.md"))
TEST_COMMAND = "python -m pytest"
COMMANDS = list(dict.fromkeys(c for c in shell_commands(README.read_text()) if c.split("#")[0].strip() != TEST_COMMAND))
# Commands that must fail, so that a check that passes everything cannot go unnoticed.
BROKEN = [
    "python train.py ppo.no_such_key=1",
    "python train.py policy=no_such_policy",
    "python train.py -m seed=0,1 ppo.no_such_key=1,2",
    "tamiyo-compare 'baselines=[static'",
    "python scripts/pareto.py some_dir --no-such-option",
    "python scripts/no_such_script.py",
]
# Each argparse experiment script still imports and builds its parser from its place in scripts/experiments/.
EXPERIMENT_SCRIPTS = [f"python {path.relative_to(ROOT)} --help"
                      for path in sorted((ROOT / "scripts" / "experiments").glob("*.py"))
                      if "import argparse" in path.read_text()]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """Every command checked in one subprocess (tests/helpers/readme_commands.py), run away from the checkout."""
    out = tmp_path_factory.mktemp("readme")
    commands = [*COMMANDS, *BROKEN, *EXPERIMENT_SCRIPTS]
    subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "readme_commands.py"), str(out / "r.json")],
                   input=json.dumps(commands), text=True, cwd=out, check=True, timeout=300)
    return json.loads((out / "r.json").read_text())


def test_the_readme_is_short_and_has_few_commands():
    assert len(README.read_text().splitlines()) <= 400
    # Each command costs a Hydra composition in the check below; the file must stay well under 90 s.
    assert 0 < len(COMMANDS) <= 25


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_composes(results, command):
    outcome = results[command]
    assert outcome["ok"], f"{command}\n{outcome['output']}"


@pytest.mark.parametrize("command", BROKEN)
def test_the_check_refuses_a_broken_command(results, command):
    assert not results[command]["ok"], results[command]["output"]


@pytest.mark.parametrize("command", EXPERIMENT_SCRIPTS)
def test_experiment_script_starts_from_its_place(results, command):
    outcome = results[command]
    assert outcome["ok"] and "usage:" in outcome["output"], outcome["output"]


def test_set_up_and_test_commands_are_what_ci_runs():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == TEST_COMMAND
    setup = next(lines for info, lines in code_blocks(README.read_text()) if TEST_COMMAND in lines)
    assert setup[-1] == TEST_COMMAND and len(setup) == 2
    installs = [shlex.split(line) for line in ci if line.startswith("pip install")]
    readme_installs = [shlex.split(part) for part in setup[0].split("&&") if part.strip().startswith("pip install")]
    assert [[a for a in args if a != "--quiet"] for args in installs] == readme_installs


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # links only outside code blocks
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("path", [README, *RECORDS], ids=lambda p: p.name)
def test_relative_links_point_to_existing_files(path):
    links = relative_links(path)
    missing = [link for link in links if not (path.parent / link).exists()]
    assert not missing, f"{path.name}: {missing}"


def test_the_readme_links_every_experiment_record():
    assert {(README.parent / link).resolve() for link in relative_links(README)} >= {p.resolve() for p in RECORDS}


def configuration_rows() -> list[tuple[list[str], list[str], list[str]]]:
    """(keys, backticked options, backticked defaults) of each row of the README's configuration table."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("group or key", "---"):
            continue
        rows.append(tuple(re.findall(r"`([^`]+)`", cell) for cell in cells))
    return rows


def normalised(value):
    """Config values as comparable plain data: numbers as floats ('1e-3', 32 and 0.001 alike)."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def test_configuration_table_names_existing_groups_options_keys_and_defaults():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    rows = configuration_rows()
    assert len(rows) > 20
    absent = object()
    for keys, options, defaults in rows:
        if len(defaults) == 1:
            defaults = defaults * len(keys)
        if keys[0] in choices:  # a config group: its options are files, its default is the chosen one
            for option in (o for o in options if re.fullmatch(r"[\w-]+", o)):
                builtin = (keys[0], option) == ("hydra/launcher", "basic")
                assert builtin or (CONF_DIR / keys[0] / f"{option}.yaml").is_file(), (keys[0], option)
            for key, default in zip(keys, defaults, strict=False):
                assert key in choices, key
                assert default == (choices[key] or "none"), (key, default, choices[key])
            continue
        for i, key in enumerate(keys):
            value = OmegaConf.select(cfg, key, default=absent)
            assert value is not absent, f"{key} is not a key of the composed train config"
            if len(defaults) == len(keys):
                plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
                # A string value is compared as written: YAML would read `off` (compile) as false.
                written = defaults[i] if isinstance(plain, str) else yaml.safe_load(defaults[i])
                assert normalised(plain) == normalised(written), (key, defaults[i], plain)


def test_objective_baselines_script_runs_evaluate_from_the_checkout(tmp_path):
    """scripts/experiments/objective_baselines.sh calls `$PYTHON scripts/evaluate.py ...` from the checkout root
    wherever it is started; a stand-in for Python records where each call ran instead of evaluating."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$(pwd) $1" >> "$CALLS"\n')
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    subprocess.run(["bash", str(ROOT / "scripts" / "experiments" / "objective_baselines.sh")], cwd=tmp_path,
                   env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake), "CALLS": str(calls)}, check=True, timeout=60)
    lines = calls.read_text().splitlines()
    assert len(lines) == 7 and set(lines) == {f"{ROOT} scripts/evaluate.py"}
    assert (ROOT / "scripts" / "evaluate.py").is_file()
