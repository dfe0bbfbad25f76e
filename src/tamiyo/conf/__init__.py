"""The packaged Hydra configs (`train.yaml`, `evaluate.yaml`, `compare.yaml` and their groups).

They ship inside the wheel, so an installed `tamiyo` finds them without a source checkout. The options and
defaults of the `env` group, the `ppo` group and the `imitation` and `validation` keys are dataclasses
(`tamiyo.env.config.EnvOptions`, `tamiyo.ppo.config.PPOOptions` and `ImitationOptions`,
`tamiyo.training.validation.ValidationOptions`), stored here as the configs `env_base`, `ppo_base`, `imitation_base`
and `validation_base` that `conf/env/<name>.yaml`, `conf/ppo/default.yaml` and `train.yaml` extend; those of each
reward and of each policy are dataclasses made from the reward's config and the policy's bundle
(`tamiyo.env.rewards.reward_options`, `tamiyo.policy.registry.policy_options`), stored as `reward_<name>_base` and
`policy_<name>_base` that the files of the `reward` and `policy` groups extend. So a key or a value of the wrong
type is refused when the config is composed.
"""

from pathlib import Path

from hydra.core.config_store import ConfigStore

from tamiyo.env.config import EnvOptions
from tamiyo.env.rewards import REWARDS, reward_options
from tamiyo.policy.registry import list_policies, policy_options
from tamiyo.ppo.config import ImitationOptions, PPOOptions
from tamiyo.training.validation import ValidationOptions

CONF_DIR = Path(__file__).resolve().parent

ConfigStore.instance().store(name="env_base", node=EnvOptions)
ConfigStore.instance().store(name="ppo_base", node=PPOOptions)
ConfigStore.instance().store(name="imitation_base", node=ImitationOptions)
ConfigStore.instance().store(name="validation_base", node=ValidationOptions)
for reward in REWARDS.names():
    ConfigStore.instance().store(name=f"reward_{reward}_base", node=reward_options(reward))
for policy in list_policies():
    ConfigStore.instance().store(name=f"policy_{policy}_base", node=policy_options(policy))
