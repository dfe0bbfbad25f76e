"""Entry points (`tamiyo-train`, `tamiyo-evaluate`, `tamiyo-compare`), config validation, sweep failure
isolation and launcher resources.

Importing this package registers the `${tamiyo.*:...}` resolvers (the launcher configs size their
resources with them; a resume's run dir comes from one) before any entry point composes a config.
"""

import warnings

from tamiyo.launch import resources, resume

resources.register_resolvers()
resume.register_resolvers()
# conf/hydra/launcher/{joblib,submitit_*}.yaml carry the plugins' names and list every field themselves;
# Hydra still matches them to the plugins' schemas of the same name and warns that this matching is
# deprecated, which they do not depend on.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")
