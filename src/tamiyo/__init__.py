"""tamiyo: learning morphogenetic training controllers with recurrent PPO."""

import gymnasium

__version__ = "0.1.0"

# `gymnasium.make("tamiyo/SeedLifecycle-v0", task="mnist1d", ...)` works once tamiyo is imported; the
# entry point is a string, so the environment module is only loaded when an env is made.
if "tamiyo/SeedLifecycle-v0" not in gymnasium.registry:
    gymnasium.register(id="tamiyo/SeedLifecycle-v0", entry_point="tamiyo.env.gym_env:SeedLifecycleEnv")
