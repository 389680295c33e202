"""Recurrent classifiers that read an image row by row (`build_row_rnn`)."""

from __future__ import annotations

import keras
from keras import layers

from keras_labs.models.specs import CELLS


def build_row_rnn(cell: str, units: int, unroll: bool = True, *, input_shape=(28, 28, 1),
                  num_classes: int = 10) -> keras.Model:
    """An image's rows as a sequence through one recurrent layer; a softmax on its last output.

    Args:
        cell: A key of `CELLS`: "simple", "lstm" or "gru".
        units: Width of the recurrent layer.
        unroll: Unroll the time steps (faster under XLA).
        input_shape: (rows, columns, channels); each row is one time step of columns x
            channels values.
        num_classes: Width of the softmax.

    Raises:
        ValueError: `cell` is not a key of `CELLS`.
    """
    if cell not in CELLS:
        raise ValueError(f"cell={cell!r} is not valid; valid values: {', '.join(CELLS)}")
    rows, columns, channels = input_shape
    inputs = keras.Input(shape=input_shape, name="image")
    sequence = layers.Reshape((rows, columns * channels), name="rows")(inputs)
    features = getattr(layers, CELLS[cell])(units, unroll=unroll, name=cell)(sequence)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities",
                           dtype="float32")(features)
    return keras.Model(inputs, outputs, name=f"{cell}_{units}")
