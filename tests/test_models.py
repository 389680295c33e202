"""Tests of the `keras_labs.models` package: saved models keep loading, builders stand alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_labs.models import cnn, language, rnn, specs

DATA = Path(__file__).resolve().parent / "data"


def test_language_model_saved_before_the_move_still_loads():
    # Saved by the code before the builders moved into keras_labs.models (the layer's module was
    # keras_labs.text); it names the layer by its registered name only, which the layer's
    # module (keras_labs.models.language) registers when imported.
    hoisted = language.HoistedGRU
    assert keras.saving.get_registered_object("keras_labs>HoistedGRU") is hoisted
    model = keras.saving.load_model(DATA / "pre_move_language_model.keras", safe_mode=True)
    expected = np.load(DATA / "pre_move_language_model.npz")
    assert [type(layer) for layer in model.layers].count(language.HoistedGRU) == 2
    np.testing.assert_allclose(np.asarray(model(expected["ids"], training=False)),
                               expected["logits"], rtol=1e-5, atol=1e-6)


def test_hoisted_gru_keeps_its_registered_name():
    assert keras.saving.get_registered_name(language.HoistedGRU) == "keras_labs>HoistedGRU"


def test_models_import_no_lab():
    code = ("import sys, keras_labs.models; "
            "print(sorted(m for m in sys.modules if m.startswith(('keras_labs.labs', "
            "'keras_labs.language_modeling'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_cifar_spec_defaults_build_the_tutorial_network():
    model = cnn.cifar_cnn(specs.CifarNetSpec())
    assert model.name == "tutorial"
    assert tuple(model.output.shape) == (None, 10)
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [
        "conv1", "conv2"]


def test_builders_reject_unknown_names():
    with pytest.raises(ValueError, match="'lenet'"):
        cnn.cifar_cnn(specs.CifarNetSpec(architecture="lenet"))
    with pytest.raises(ValueError, match="'elman'"):
        rnn.build_row_rnn("elman", 4)


def test_row_rnn_reads_rows_of_any_image_shape():
    model = rnn.build_row_rnn("lstm", 3, unroll=False, input_shape=(8, 6, 2), num_classes=4)
    assert tuple(model.get_layer("rows").output.shape) == (None, 8, 12)
    assert tuple(model.output.shape) == (None, 4)
