"""The lab registry: name -> lab package.

Each lab is a package `keras_labs/labs/<lab>/` that holds its whole story:

* `config.py`: NAME, DESCRIPTION, DATASETS (the tfds names it loads, checked before a run
  starts), Config (a `LabConfig` dataclass), PRESETS ({name: Config}) and DEFAULT_PRESET. It
  imports no TensorFlow, so `keras-labs list`, `--help` and config errors answer at once.
* `experiment.py`: `run(config, workdir, *, resume=False)`, the experiment; it imports
  TensorFlow and the core at its top.
* `seeds.md`: the seed reports' items the presets measure and the presets' estimated minutes,
  read by the results layer (`keras_labs.seeds`).
* anything else only this lab uses (its attacks, deconvnet, scoring...).

The registry imports a lab's `config` to describe it and its `experiment` only to run it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from keras_labs import ConfigError, seeds
from keras_labs.config import apply_overrides, field_names

# In tour order: lab name -> package under keras_labs/labs/.
_PACKAGES = {
    "mnist-cnn": "mnist_cnn",
    "cifar-cnn": "cifar_cnn",
    "transfer": "transfer",
    "embeddings": "embeddings",
    "char-rnn": "char_rnn",
    "word-rnn": "word_rnn",
    "mnist-rnn": "mnist_rnn",
    "gan": "gan",
    "adversarial": "adversarial",
    "deconvnet": "deconvnet",
    "autoencoder": "autoencoder",
}


def names() -> list[str]:
    """The labs, in tour order."""
    return list(_PACKAGES)


def _package(name: str) -> str:
    if name not in _PACKAGES:
        raise ConfigError(f"unknown lab {name!r}; valid labs: {', '.join(names())}")
    return f"{__name__}.{_PACKAGES[name]}"


def get(name: str) -> ModuleType:
    """The config module of the lab called `name` (NAME, DESCRIPTION, DATASETS, Config,
    PRESETS, DEFAULT_PRESET); importing it loads no TensorFlow.

    Raises:
        ConfigError: No such lab (the message lists the valid ones).
    """
    return importlib.import_module(_package(name) + ".config")


def experiment(name: str) -> ModuleType:
    """The module that holds the lab's `run(config, workdir, *, resume=False)`."""
    return importlib.import_module(_package(name) + ".experiment")


def run(name: str, config, workdir: str, *, resume: bool = False) -> dict:
    """Runs the lab `name` with `config` into `workdir`; returns its metrics."""
    return experiment(name).run(config, workdir, resume=resume)


def folder(name: str) -> Path:
    """The lab's package folder."""
    _package(name)  # refuses an unknown name
    return Path(__file__).resolve().parent / _PACKAGES[name]


def seed_items(name: str) -> seeds.LabSeeds:
    """The seed items and preset minutes the lab's `seeds.md` declares (none without one)."""
    path = folder(name) / seeds.SEEDS_FILE
    return seeds.read(path, lab=name) if path.is_file() else seeds.LabSeeds((), {})


def resolve_config(lab: ModuleType, preset: str | None = None, overrides=None, **flags):
    """The lab's preset with `--set` overrides and flags (`epochs=`, `seed=`...) applied, validated."""
    preset = preset or lab.DEFAULT_PRESET
    if preset not in lab.PRESETS:
        raise ConfigError(f"unknown preset {preset!r} for lab {lab.NAME}; valid presets: "
                          f"{', '.join(lab.PRESETS)}")
    config = lab.PRESETS[preset]
    if overrides:
        config = apply_overrides(config, overrides)
    flags = {key: value for key, value in flags.items() if value is not None}
    for key in flags:
        if key not in field_names(type(config)):
            raise ConfigError(f"lab {lab.NAME} has no {key!r} setting; valid keys: "
                              f"{', '.join(field_names(type(config)))}")
    if flags:
        config = apply_overrides(config, flags)
    return config.validate()
