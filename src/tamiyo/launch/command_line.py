"""Command lines Hydra would refuse with a page of text (an unknown group option or key, an override it cannot
parse), refused before Hydra starts in one line and exit status 2, naming the closest options or keys."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from tamiyo.conf import CONF_DIR

_MULTIRUN_FLAGS = ("-m", "--multirun")


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _keys(tree: dict, prefix: str = "") -> list[str]:
    """Every dotted key of a plain config tree, nested ones included."""
    keys = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys += _keys(value, f"{dotted}.")
    return keys


def _compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


def first_job(parsed: Sequence[Override]) -> list[str]:
    """The overrides of a multirun's first job, as Hydra's basic sweeper splits them (a plain command line: its
    overrides)."""
    return list(BasicSweeper.split_arguments(list(parsed), max_batch_size=None)[0][0]) if parsed else []


def check_overrides(config_name: str, args: Sequence[str]) -> None:
    """Compose `conf/<config_name>.yaml` with the command line's overrides (a sweep's first job) and refuse a
    composition error in one line. Command lines with Hydra's own flags (`--cfg`, `--info`, ...) and Hydra's own
    `hydra.*` overrides are left to Hydra."""
    if any(arg.startswith("-") and arg not in _MULTIRUN_FLAGS for arg in args):
        return
    overrides = [arg for arg in args if arg not in _MULTIRUN_FLAGS]
    parser, parsed = OverridesParser.create(), []
    for override in overrides:  # one at a time, so the refusal names the one that does not parse
        try:
            parsed += parser.parse_overrides([override])
        except OverrideParseException as error:
            _refuse(f"cannot parse {override}: {str(error).splitlines()[0]}")
    try:
        job = first_job(parsed)
    except Exception:  # noqa: BLE001 — sweeps only another sweeper expands (e.g. Optuna's interval()): Hydra's call
        return
    own = [o for o in job if not o.lstrip("+~").startswith("hydra")]
    try:
        _compose(config_name, own)
    except MissingConfigException as error:
        found = re.search(r"Could not find '([^']+)'", str(error))
        if found is None or "/" not in found.group(1):
            _refuse(str(error).splitlines()[0])
        group, option = found.group(1).rsplit("/", 1)
        options = list(error.options or [])
        close = difflib.get_close_matches(option, options, n=2)
        hint = f"did you mean {' or '.join(f'{group}={c}' for c in close)}? " if close else ""
        _refuse(f"{group}={option}: no such option; {hint}options: {', '.join(options)}")
    except ConfigCompositionException as error:
        merging = re.match(r"Error merging override (.+)", str(error))
        if merging is not None and error.__cause__ is not None:  # a value of the wrong type for a typed key
            _refuse(f"{merging.group(1)}: {str(error.__cause__).splitlines()[0]}")
        found = re.search(r"Could not override '([^']+)'", str(error))
        if found is None:
            _refuse(str(error).splitlines()[0])
        key = found.group(1)
        known = _keys(OmegaConf.to_container(_compose(config_name, []), resolve=False))
        close = difflib.get_close_matches(key, known, n=2, cutoff=0.75)
        hint = f"did you mean {' or '.join(close)}?" if close else "a key of a task's loader goes with '+'"
        _refuse(f"{key} is not a key of this config; {hint}")

