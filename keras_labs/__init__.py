"""keras_labs: the classic deep-learning course labs as tested, reproducible Keras 3 experiments."""

__version__ = "0.1.0"


class KerasLabsError(Exception):
    """An error the user can fix (bad option, missing data); the CLI prints it as one line, exit 2."""


class ConfigError(KerasLabsError, ValueError):
    """A configuration value or name is not valid."""


class DataError(KerasLabsError):
    """A dataset is missing, not prepared, or its source files are corrupt."""
