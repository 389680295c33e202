"""The convolutional autoencoder with a classification head on its code (`build_autoencoder`)."""

from __future__ import annotations

import dataclasses

import keras
from keras import layers


@dataclasses.dataclass
class Autoencoder:
    """The model and the views of it the grids need (all share the same layers).

    Attributes:
        model: image -> {"class": class probabilities, "reconstruction": x_hat}.
        encoder: image -> {"z1": ..., "z2": ...}.
        decode_z1: z1 -> image (the last transposed convolution).
        decode_z2: z2 -> image (the whole decoder).
    """

    model: keras.Model
    encoder: keras.Model
    decode_z1: keras.Model
    decode_z2: keras.Model


def build_autoencoder(input_shape, num_classes: int = 10, channels=(6, 16), kernel_size: int = 5,
                      head_units=(120, 84)) -> Autoencoder:
    """The report-004 network with a decoder: two conv stages, a dense head, two deconvolutions.

    "same" padding keeps every spatial size a multiple of the pooling, so each transposed
    convolution (stride 2) exactly undoes one stage: z2 -> z1's shape -> the image's.

    Args:
        input_shape: (height, width, channels), height and width multiples of 4.
        num_classes: Width of the class probabilities.
        channels: Channels of z1 and z2.
        kernel_size: Side of every (transposed) convolution kernel.
        head_units: Dense layers of the classifier on z2.
    """
    image = keras.Input(shape=input_shape, name="image")
    z1 = layers.Conv2D(channels[0], kernel_size, padding="same", activation="relu",
                       name="conv1")(image)
    z1 = layers.MaxPooling2D(2, name="z1")(z1)
    z2 = layers.Conv2D(channels[1], kernel_size, padding="same", activation="relu",
                       name="conv2")(z1)
    z2 = layers.MaxPooling2D(2, name="z2")(z2)

    x = layers.Flatten(name="flatten")(z2)
    for index, units in enumerate(head_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{index}")(x)
    y = layers.Dense(num_classes, activation="softmax", name="class", dtype="float32")(x)

    deconv2 = layers.Conv2DTranspose(channels[0], kernel_size, strides=2, padding="same",
                                     activation="relu", name="deconv2")
    # A linear output: under the squared error a sigmoid saturates on MNIST's black background
    # and the reconstruction stops learning (it sits at the all-black image). Consumers clip
    # x_hat to [0, 1] before PSNR and SSIM.
    deconv1 = layers.Conv2DTranspose(input_shape[-1], kernel_size, strides=2, padding="same",
                                     name="reconstruction", dtype="float32")
    x_hat = deconv1(deconv2(z2))

    model = keras.Model(image, {"class": y, "reconstruction": x_hat}, name="autoencoder")
    encoder = keras.Model(image, {"z1": z1, "z2": z2}, name="encoder")
    z1_input = keras.Input(shape=z1.shape[1:], name="z1_code")
    z2_input = keras.Input(shape=z2.shape[1:], name="z2_code")
    return Autoencoder(model, encoder,
                       keras.Model(z1_input, deconv1(z1_input), name="decode_z1"),
                       keras.Model(z2_input, deconv1(deconv2(z2_input)), name="decode_z2"))
