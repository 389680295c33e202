"""keras_labs: the classic deep-learning course labs as tested, reproducible Keras 3 experiments."""

__version__ = "0.1.0"


class KerasLabsError(Exception):
    """A failure the user can act on (missing or damaged data, unwritable output, diverged
    training); the CLI prints it as one line and exits with code 1."""


class ConfigError(KerasLabsError, ValueError):
    """A configuration value, name or argument is not valid; the CLI exits with code 2, as for
    any usage error."""


class DataError(KerasLabsError):
    """A dataset is missing, not prepared, damaged, or its source files are corrupt."""


class Terminated(BaseException):
    """The process was sent SIGTERM; the CLI raises it from its signal handler and handles it as
    it handles Ctrl-C (one line, FAILED.txt, the backup kept), with exit code 143.

    A `BaseException`, like `KeyboardInterrupt`, so that no `except Exception` swallows it.
    """


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
