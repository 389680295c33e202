"""keras_labs: the classic deep-learning course labs as tested, reproducible Keras 3 experiments."""

__version__ = "0.1.0"


class KerasLabsError(Exception):
    """An error the user can fix (bad option, missing data); the CLI prints it as one line, exit 2."""


class ConfigError(KerasLabsError, ValueError):
    """A configuration value or name is not valid."""


class DataError(KerasLabsError):
    """A dataset is missing, not prepared, or its source files are corrupt."""


def check_tensorflow_install() -> None:
    """Raises KerasLabsError when two TensorFlow distributions share one `tensorflow/` folder.

    `tensorflow-cpu` and `tensorflow` install the same files; with both, whichever came last
    wins file by file and TensorFlow fails in odd ways (the GPU recipe in the README avoids it).
    """
    from importlib import metadata

    installed = []
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    if len(installed) > 1:
        raise KerasLabsError(
            f"two TensorFlow distributions are installed into one tensorflow/ folder "
            f"({', '.join(installed)}); keep one: pip uninstall -y tensorflow-cpu && pip "
            f"install --force-reinstall --no-deps \"tensorflow=={installed[0].split()[1]}\"")
