"""Errors caused by what the user asked for; entry points report them as one line."""


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key."""


class FileWriteError(OSError):
    """A file of the run could not be written (full disk, quota, unwritable directory); the message names
    the path and the cause, and the previous version of the file is unchanged."""
