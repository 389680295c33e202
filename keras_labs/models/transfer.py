"""A new classification head on a (pretrained or fresh) base network (`transfer_model`)."""

from __future__ import annotations

import keras
from keras import layers


def transfer_model(base: keras.Model, preprocess: list[layers.Layer], *, pretrained: bool,
                   dropout: float, name: str, input_shape=(32, 32, 3),
                   num_classes: int = 10) -> keras.Model:
    """`base` with a new classification head.

    A pretrained base runs in inference mode (`training=False`) whether it is frozen or not,
    so its batch norm statistics stay those of the source data.

    Args:
        base: The network whose output the head reads (pooled first if it is a feature map).
        preprocess: Layers applied to the input before `base` (resizing, rescaling).
        pretrained: Whether `base` carries trained weights (then called with `training=False`).
        dropout: Dropout before the head.
        name: The model's name.
        input_shape: Shape of the images the model takes.
        num_classes: Width of the softmax.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for layer in preprocess:
        x = layer(x)
    x = base(x, training=False) if pretrained else base(x)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
