"""The lab registry: name -> module. Each module defines NAME, DESCRIPTION, DATASETS (the tfds
names it loads, checked before a run starts), Config (a `LabConfig` dataclass), PRESETS
({name: Config}), DEFAULT_PRESET and `run(config, workdir)`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from keras_labs import ConfigError

# In tour order.
_MODULES = {
    "mnist-cnn": "keras_labs.labs.mnist_cnn",
    "cifar-cnn": "keras_labs.labs.cifar_cnn",
    "transfer": "keras_labs.labs.transfer",
    "embeddings": "keras_labs.labs.embeddings",
    "char-rnn": "keras_labs.labs.char_rnn",
    "word-rnn": "keras_labs.labs.word_rnn",
    "mnist-rnn": "keras_labs.labs.mnist_rnn",
    "gan": "keras_labs.labs.gan",
    "adversarial": "keras_labs.labs.adversarial",
    "deconvnet": "keras_labs.labs.deconvnet",
    "autoencoder": "keras_labs.labs.autoencoder",
}


def names() -> list[str]:
    """The labs, in tour order."""
    return list(_MODULES)


def get(name: str) -> ModuleType:
    """The lab module called `name`.

    Raises:
        ConfigError: No such lab (the message lists the valid ones).
    """
    available = names()
    if name not in available:
        raise ConfigError(f"unknown lab {name!r}; valid labs: {', '.join(available)}")
    return importlib.import_module(_MODULES[name])


def resolve_config(lab: ModuleType, preset: str | None = None, overrides=None, **flags):
    """The lab's preset with `--set` overrides and flags (`epochs=`, `seed=`...) applied, validated."""
    from keras_labs.config import apply_overrides, field_names

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
