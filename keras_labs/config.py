"""Typed lab configurations: dataclasses with named presets, validated `key=value` overrides.

Every lab defines a dataclass that extends `LabConfig` and declares its fields with `option()`,
which carries the constraints (`choices`, `minimum`, `maximum`, `positive`) that `validate()`
checks. The CLI's `--set key=value` goes through `apply_overrides()`, so a bad key or value is
rejected with a message that quotes it and lists what is valid, before anything runs.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from keras_labs import ConfigError


def option(default: Any, *, help: str = "", choices: tuple | None = None,
           minimum: float | None = None, maximum: float | None = None,
           positive: bool = False) -> Any:
    """Declares a config field with its constraints.

    Args:
        default: The default value (tuples for sequence fields, so configs stay hashable).
        help: One line shown by `keras-labs list --verbose`.
        choices: The only allowed values.
        minimum: Inclusive lower bound.
        maximum: Inclusive upper bound.
        positive: The value must be strictly greater than zero.
    """
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum,
                "positive": positive}
    return dataclasses.field(default=default, metadata=metadata)


class common:  # noqa: N801 (a namespace, read as `common.epochs(8)`)
    """Fields most labs declare, with their usual constraints and help."""

    @staticmethod
    def epochs(default: int, help: str = "passes over the training data") -> Any:
        return option(default, minimum=1, help=help)

    @staticmethod
    def batch_size(default: int, help: str = "examples per step") -> Any:
        return option(default, minimum=1, maximum=65536, help=help)

    @staticmethod
    def learning_rate(default: float, help: str = "Adam learning rate",
                      maximum: float = 10.0) -> Any:
        return option(default, positive=True, maximum=maximum, help=help)

    @staticmethod
    def validation_fraction(default: float = 0.1) -> Any:
        """Share of the training split held out (seeded) for curves and any selection."""
        return option(default, minimum=0.0, maximum=0.5,
                      help="share of the training data held out as a seeded validation split "
                           "(curves, selection); the test split is scored once, at the end")

    @staticmethod
    def examples(what: str = "training examples") -> Any:
        """Use only the first N examples of a split (0: all of them)."""
        return option(0, minimum=0, help=f"use only the first N {what} (0: all)")


@dataclasses.dataclass(frozen=True)
class LabConfig:
    """Fields every lab shares: reproducibility, data choice, distribution and export."""

    seed: int = option(0, help="global random seed", minimum=0)
    data: str = option("auto", choices=("auto", "sample", "full"),
                       help="full: prepared tfds data; sample: embedded sample; auto: full if prepared")
    data_dir: str = option("", help="tfds data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    deterministic: bool = option(False, help="enable TensorFlow op determinism")
    strategy: str = option("default", choices=("default", "mirrored", "multiworker"),
                           help="tf.distribute strategy")
    worker_timeout_s: float = option(
        600.0, minimum=0.0,
        help="strategy=multiworker: seconds a worker waits for the others, at the start and "
             "in every collective op, before it stops with one line (0: no limit)")
    mixed_precision: str = option(
        "off", choices=("off", "fp16", "bf16"),
        help="fp16: mixed_float16 on a GPU; bf16: mixed_bfloat16 on a GPU or a CPU with "
             "AVX512-BF16/AMX (else float32, said in one line); outputs and losses stay float32")
    threads: int = option(0, minimum=0,
                          help="threads of each of TensorFlow's CPU op pools (intra- and inter-op; "
                               "0: chosen from the batch size and the cores, recorded in env.json)")
    export_dir: str = option("saved_models", help="root folder of SavedModel exports")
    export_format: str = option("saved_model", choices=("saved_model", "onnx", "litert"),
                                help="saved_model; onnx or litert: also that file, beside the "
                                     "SavedModel in the same version folder")
    profile_batches: str = option("", help="profile these training batches for TensorBoard's "
                                           "Profile tab, e.g. '10,20' ('': off)")
    probe_every_steps: int = option(100, minimum=0,
                                    help="steps between TensorBoard probes of the activations, "
                                         "filters and hidden states (0: off)")

    def validate(self) -> LabConfig:
        """Checks every field against its declared type and constraints.

        Returns:
            The config itself, so calls chain.

        Raises:
            ConfigError: A value is out of range, not one of its choices, or of the wrong type.
        """
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            _check_type(field.name, value, hints[field.name])
            meta = field.metadata
            if meta.get("choices") is not None and value not in meta["choices"]:
                raise ConfigError(f"{field.name}={value!r} is not valid; valid values: "
                                  f"{', '.join(map(str, meta['choices']))}")
            numbers = value if isinstance(value, tuple) else (value,)
            for number in numbers:
                if isinstance(number, bool) or not isinstance(number, int | float):
                    continue
                if number != number:  # NaN
                    raise ConfigError(f"{field.name}={value!r} is not a number")
                if meta.get("positive") and number <= 0:
                    raise ConfigError(f"{field.name}={value!r} is not valid; it must be > 0")
                if meta.get("minimum") is not None and number < meta["minimum"]:
                    raise ConfigError(f"{field.name}={value!r} is not valid; it must be >= {meta['minimum']}")
                if meta.get("maximum") is not None and number > meta["maximum"]:
                    raise ConfigError(f"{field.name}={value!r} is not valid; it must be <= {meta['maximum']}")
        profile_batch_range(self.profile_batches)
        self.check()
        return self

    def check(self) -> None:
        """Cross-field checks; labs override this and raise `ConfigError`."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig(LabConfig):
    """The fields `char-rnn` and `word-rnn` share; each lab's Config extends it with its own
    defaults and its token-specific fields (`keras_labs.language_modeling` trains what they
    describe)."""

    steps: int = option(2000, minimum=1, help="training steps (the reports' 'epochs': one batch each)")
    log_every: int = option(100, minimum=1, help="steps between validation points of the curves")
    batch_size: int = option(32, minimum=1, maximum=65536, help="windows per step")
    sequence_length: int = option(50, minimum=2, help="tokens per training window")
    window_stride: int = option(0, minimum=0, help="tokens between window starts (0: a quarter window)")
    cell: str = option("gru", choices=("gru", "lstm"))
    implementation: str = option("keras", choices=("keras", "hoisted"),
                                 help="keras: keras.layers.GRU/LSTM (cuDNN on a GPU); hoisted: "
                                      "a GRU with the input projection out of the loop (CPU)")
    units: int = option(100, minimum=1, help="width of each recurrent layer")
    num_layers: int = option(2, minimum=1, maximum=8)
    embedding_dim: int = option(100, minimum=1)
    dropout: float = option(0.0, minimum=0.0, maximum=0.9, help="on the embedding and between layers")
    learning_rate: float = option(0.01, positive=True, maximum=1.0, help="peak Adam learning rate")
    warmup_steps: int = option(0, minimum=0, help="linear learning-rate warm-up")
    final_learning_rate: float = option(1.0, minimum=0.0, maximum=1.0,
                                        help="cosine decay to this fraction of the peak (1: constant)")
    clipnorm: float = option(1.0, minimum=0.0, help="gradient norm clip (0: off)")
    compute_dtype: str = option("float32", choices=("float32", "bfloat16"),
                                help="matrix products in bfloat16 (needs AVX512-BF16/AMX or a GPU)")
    steps_per_execution: int = option(1, minimum=1, help="train steps per tf.function call")
    max_minutes: float = option(0.0, minimum=0.0, help="stop training after this wall time (0: off)")
    validation_chars: int = option(0, minimum=0,
                                   help="score only the first N validation characters (0: all)")
    sample_length: int = option(80, minimum=0, help="tokens generated per prime")
    temperature: float = option(0.8, positive=True, maximum=10.0)
    top_k: int = option(0, minimum=0, help="sample among the k likeliest tokens (0: all)")

    def check(self) -> None:
        if self.log_every > self.steps:
            raise ConfigError(f"log_every={self.log_every} is not valid; it must be <= "
                              f"steps={self.steps}")
        if self.log_every % self.steps_per_execution:
            raise ConfigError(f"log_every={self.log_every} is not valid; it must be a multiple "
                              f"of steps_per_execution={self.steps_per_execution}")
        if self.implementation == "hoisted" and self.cell != "gru":
            raise ConfigError(f"implementation='hoisted' is a GRU; cell={self.cell!r} needs "
                              "implementation='keras'")
        if self.warmup_steps >= self.steps:
            raise ConfigError(f"warmup_steps={self.warmup_steps} is not valid; it must be < "
                              f"steps={self.steps}")
        if self.export_format != "saved_model":
            raise ConfigError(f"export_format={self.export_format!r} is not possible for a "
                              "language model: its generator turns a prime string into text "
                              "with TensorFlow string ops and a sampling loop, which neither "
                              "ONNX nor LiteRT converts; use export_format=saved_model")


def field_names(config_class: type[LabConfig]) -> list[str]:
    return [field.name for field in dataclasses.fields(config_class)]


def apply_overrides(config: LabConfig, overrides: dict[str, str] | list[str]) -> LabConfig:
    """Returns a copy of `config` with `key=value` strings (or a dict of strings) applied.

    Raises:
        ConfigError: Unknown key (the message lists the valid ones) or a value that does not parse.
    """
    if isinstance(overrides, list):
        pairs = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set expects key=value, got {item!r}")
            pairs[key.strip()] = value.strip()
        overrides = pairs
    hints = typing.get_type_hints(type(config))
    valid = field_names(type(config))
    changes = {}
    for key, text in overrides.items():
        if key not in valid:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(valid)}")
        changes[key] = parse_value(key, text, hints[key]) if isinstance(text, str) else text
    return dataclasses.replace(config, **changes)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(key: str, text: str, annotation: Any) -> Any:
    """Parses the string `text` as the type `annotation` of field `key`."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        items = [item for item in text.split(",") if item.strip()]
        return tuple(parse_value(key, item.strip(), item_type) for item in items)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if text.lower() in ("none", "null", ""):
            return None
        return parse_value(key, text, args[0])
    try:
        if annotation is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if annotation is int:
            return int(text)
        if annotation is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a valid {annotation.__name__}") from None
    return text


def _check_type(name: str, value: Any, annotation: Any) -> None:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        annotation = [arg for arg in typing.get_args(annotation) if arg is not type(None)][0]
        origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(f"{name}={value!r} is not valid; expected a tuple")
        return
    expected = {bool: bool, int: int, float: (int, float), str: str}.get(annotation)
    if expected is None:
        return
    if annotation is not bool and isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not a valid {annotation.__name__}")
    if not isinstance(value, expected):
        raise ConfigError(f"{name}={value!r} is not a valid {annotation.__name__}")


def profile_batch_range(text: str) -> tuple[int, int] | None:
    """The training batches a config's `profile_batches` asks the profiler to trace, as
    `keras.callbacks.TensorBoard`'s `profile_batch` takes them.

    Args:
        text: "A,B" (batches A to B, counted from 1 in each fit, A <= B), "N" (batch N alone)
            or "" (no profile).

    Returns:
        (A, B), or None for "".

    Raises:
        ConfigError: Anything else (the message quotes it).
    """
    if not text.strip():
        return None
    parts = [part.strip() for part in text.split(",")]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers *= 2
    if len(numbers) != 2 or not 1 <= numbers[0] <= numbers[1]:
        raise ConfigError(f"profile_batches={text!r} is not valid; give 'A,B' with 1 <= A <= B "
                          "(training batches, counted from 1 in each fit), e.g. '10,20', or '' "
                          "for no profile")
    return numbers[0], numbers[1]
