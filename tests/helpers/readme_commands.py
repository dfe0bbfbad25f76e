"""The README's shell commands, and a runner that checks each composes without running it.

`python tests/helpers/readme_commands.py RESULTS.json < COMMANDS.json` runs every command in this one process:
importing torch and Lightning takes ~5 s on a 2-core machine, so a process per command would take minutes.
- Hydra entry points (`train.py`, the `scripts/` shims, the `tamiyo-*` console scripts) get `--cfg job`: Hydra
  composes the config, checks every override against it, prints it and returns before the task runs, so no
  checkpoint or dataset is opened. `--cfg` cannot be combined with `-m`, so a multirun is checked as its first job
  (Hydra's basic sweeper splits the sweep overrides, which also checks their grammar).
- argparse scripts run up to their parsed arguments: `ArgumentParser.parse_args` is wrapped to stop the script once
  the README's arguments have parsed, which checks the options `--help` would only list.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import re
import runpy
import shlex
import sys
import tomllib
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

from tamiyo.launch.command_line import first_job

ROOT = Path(__file__).resolve().parents[2]
SHELL_FENCES = {"bash", "sh", "shell", "console"}
# `<run>`, `<account>`, `<compare dir 0.02>`: replaced by a plain word Hydra's override grammar accepts (`<` is
# not); `--cfg job` and a parse never open the path it stands for.
PLACEHOLDER = re.compile(r"<[^<>\n]*>")


def code_blocks(markdown: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every fenced code block."""
    blocks, info, lines = [], None, []
    for line in markdown.splitlines():
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if fence and info is None:
            info, lines = fence.group(2).lower(), []
        elif fence and info is not None:
            blocks.append((info, lines))
            info = None
        elif info is not None:
            lines.append(line)
    return blocks


def shell_commands(markdown: str) -> list[str]:
    """Every `python …` or `tamiyo-…` command of the shell blocks, continuation lines joined."""
    commands = []
    for info, lines in code_blocks(markdown):
        if info not in SHELL_FENCES:
            continue
        joined, pending = [], ""
        for line in lines:
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            joined.append(pending + line)
            pending = ""
        commands += [line for line in joined if line.startswith(("python ", "tamiyo-"))]
    return commands


def console_scripts() -> dict[str, str]:
    """`tamiyo-train` → `tamiyo.launch.train:main`, from pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["scripts"]


def is_hydra_module(module: str) -> bool:
    """Whether the `tamiyo.launch` module behind a console script or a `scripts/` shim is a Hydra entry point."""
    spec = importlib.util.find_spec(module)
    return spec is not None and "@hydra.main" in Path(spec.origin).read_text()


def shim_module(path: Path) -> str | None:
    """The module a `scripts/` shim runs (`from tamiyo.launch.compare import main` → `tamiyo.launch.compare`)."""
    found = re.search(r"^from (tamiyo\.launch\.\w+) import main$", path.read_text(), flags=re.M)
    return found.group(1) if found else None


class _Parsed(Exception):
    """Raised once an argparse script has parsed its arguments: nothing after that runs."""


def check(command: str) -> tuple[bool, str]:
    """Whether `command` composes (Hydra) or parses (argparse), with what it printed."""
    argv = shlex.split(PLACEHOLDER.sub("placeholder", command), comments=True)
    if argv[0] == "python":
        argv = argv[1:]
    program, args = argv[0], argv[1:]
    scripts = console_scripts()
    if program in scripts:
        module, function = scripts[program].split(":")
        run, hydra = (lambda: getattr(importlib.import_module(module), function)()), is_hydra_module(module)
    else:
        path = ROOT / program
        if not path.is_file():
            return False, f"no such script: {program}"
        module = shim_module(path)
        run, hydra = (lambda: runpy.run_path(str(path), run_name="__main__")), bool(module and is_hydra_module(module))
    if hydra:
        multirun = any(arg in ("-m", "--multirun") for arg in args)
        args = [arg for arg in args if arg not in ("-m", "--multirun")]
        parsed = OverridesParser.create().parse_overrides(args) if multirun else []
        args = [*(first_job(parsed) if multirun else args), "--cfg", "job"]
    output = io.StringIO()
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, *a, **k):
        original(self, *a, **k)
        raise _Parsed

    sys.argv = [program, *args]
    if not hydra:  # Hydra parses its own command line with argparse
        argparse.ArgumentParser.parse_args = parse_then_stop
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            run()
    except _Parsed:
        return not hydra, output.getvalue()
    except SystemExit as stop:  # Hydra's errors and argparse's exit 1 or 2; `--help` exits 0
        return stop.code in (0, None), output.getvalue()
    except Exception as error:  # noqa: BLE001 — reported per command
        return False, f"{output.getvalue()}\n{type(error).__name__}: {error}"
    finally:
        argparse.ArgumentParser.parse_args = original
    # A Hydra entry point returns after printing the config; an argparse script that returns never parsed.
    return hydra, output.getvalue()


def main() -> None:
    results_path = Path(sys.argv[1])  # before check() rewrites sys.argv
    commands = json.load(sys.stdin)
    results = {}
    for command in commands:
        ok, output = check(command)
        results[command] = {"ok": ok, "output": output[-3000:]}
    results_path.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
