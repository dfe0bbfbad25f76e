"""Errors caused by what the user asked for; entry points report them as one line."""


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key."""
