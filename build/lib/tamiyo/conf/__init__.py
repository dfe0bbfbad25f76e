"""The packaged Hydra configs (`train.yaml`, `evaluate.yaml`, `compare.yaml` and their groups).

They ship inside the wheel, so an installed `tamiyo` finds them without a source checkout.
"""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent
