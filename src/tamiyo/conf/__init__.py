"""The packaged Hydra configs (`train.yaml`, `evaluate.yaml`, `compare.yaml` and their groups).

They ship inside the wheel, so an installed `tamiyo` finds them without a source checkout. The `env` group's
options and defaults are the dataclass `tamiyo.env.config.EnvOptions`, stored here as the config `env_base` that
every `conf/env/<name>.yaml` extends (`defaults: [/env_base@_here_]`), so a key or a value of the wrong type is
refused when the config is composed.
"""

from pathlib import Path

from hydra.core.config_store import ConfigStore

from tamiyo.env.config import EnvOptions

CONF_DIR = Path(__file__).resolve().parent

ConfigStore.instance().store(name="env_base", node=EnvOptions)
