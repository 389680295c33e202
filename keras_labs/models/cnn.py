"""Convolutional classifiers: the MNIST family (`mnist_cnn`)."""

from __future__ import annotations

import keras
from keras import layers


def mnist_cnn(input_shape=(28, 28, 1), num_classes: int = 10, filters: tuple[int, ...] = (32, 64),
              convs_per_stage: int = 1, dense_units: int = 128, dropout: float = 0.3,
              batch_norm: bool = True, name: str = "mnist_cnn") -> keras.Model:
    """A small VGG-style CNN: per stage 3x3 convolutions and a 2x2 max pool, then a dense head.

    The layer named "features" is the penultimate representation (used by the embedding and GAN
    labs to score what the network has learned).
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for stage, width in enumerate(filters, start=1):
        for index in range(1, convs_per_stage + 1):
            x = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm,
                              name=f"conv{stage}_{index}")(x)
            if batch_norm:
                # momentum 0.9: moving statistics settle within the few hundred steps of a short run
                x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage}_{index}")(x)
            x = layers.Activation("relu", name=f"relu{stage}_{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout_conv")(x)
    x = layers.Dense(dense_units, activation="relu", name="features")(x)
    x = layers.Dropout(dropout, name="dropout_dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
