import dataclasses
import re

import pytest

from keras_labs import ConfigError, labs
from keras_labs.config import LabConfig, apply_overrides, option


@dataclasses.dataclass(frozen=True)
class Toy(LabConfig):
    epochs: int = option(2, minimum=1)
    learning_rate: float = option(0.1, positive=True)
    widths: tuple[int, ...] = option((4, 8), positive=True)
    activation: str = option("relu", choices=("relu", "tanh"))
    flag: bool = option(False)


def test_overrides_parse_each_type():
    config = apply_overrides(Toy(), ["epochs=5", "learning_rate=0.01", "widths=1,2,3",
                                     "activation=tanh", "flag=true"]).validate()
    assert (config.epochs, config.learning_rate, config.widths) == (5, 0.01, (1, 2, 3))
    assert config.activation == "tanh" and config.flag is True


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'nope'; valid keys: .*learning_rate"):
        apply_overrides(Toy(), ["nope=1"])


@pytest.mark.parametrize("item, pattern", [
    ("epochs=two", r"epochs='two' is not a valid int"),
    ("flag=maybe", r"flag='maybe' is not a valid bool"),
    ("learning_rate=abc", r"learning_rate='abc' is not a valid float"),
    ("missing_equals", r"--set expects key=value, got 'missing_equals'"),
])
def test_unparsable_values_are_quoted(item, pattern):
    with pytest.raises(ConfigError, match=pattern):
        apply_overrides(Toy(), [item])


@pytest.mark.parametrize("changes, pattern", [
    ({"learning_rate": -1.0}, r"learning_rate=-1.0 is not valid; it must be > 0"),
    ({"epochs": 0}, r"epochs=0 is not valid; it must be >= 1"),
    ({"activation": "gelu"}, r"activation='gelu' is not valid; valid values: relu, tanh"),
    ({"widths": (4, 0)}, r"widths=\(4, 0\) is not valid; it must be > 0"),
    ({"learning_rate": float("nan")}, r"learning_rate=nan is not a number"),
    ({"strategy": "tpu"}, r"strategy='tpu' is not valid"),
])
def test_validate_rejects_out_of_range(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        dataclasses.replace(Toy(), **changes).validate()


def test_every_lab_preset_validates():
    for name in labs.names():
        lab = labs.get(name)
        assert "quick" in lab.PRESETS, name
        assert lab.DEFAULT_PRESET in lab.PRESETS, name
        for preset in lab.PRESETS.values():
            preset.validate()


def test_resolve_config_rejects_unknown_preset_and_flags():
    lab = labs.get("mnist-cnn")
    with pytest.raises(ConfigError, match=r"unknown preset 'nope' .* valid presets: seed, quick"):
        labs.resolve_config(lab, "nope")
    config = labs.resolve_config(lab, "quick", ["batch_size=32"], epochs=3, seed=7)
    assert (config.batch_size, config.epochs, config.seed) == (32, 3, 7)
    valid = re.escape(", ".join(labs.names()))
    with pytest.raises(ConfigError, match=rf"unknown lab 'nope'; valid labs: {valid}$"):
        labs.get("nope")
