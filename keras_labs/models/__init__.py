"""Reusable functional-API model builders. A builder takes explicit arguments (shapes, widths,
or a small spec dataclass of its own), never a lab's config; nothing here imports a lab.

The builders are imported on first use (they load Keras), so a lab's config and presets can be
read without TensorFlow."""

from keras_labs.lazy import lazy_attributes

__all__ = ["mnist_cnn", "CifarNetSpec", "cifar_cnn", "Autoencoder", "build_autoencoder",
           "build_row_rnn", "HoistedGRU", "build_language_model", "zero_states",
           "transfer_model", "GAN", "GanSpec", "build_gan"]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "autoencoder": ("Autoencoder", "build_autoencoder"),
    "cnn": ("CifarNetSpec", "cifar_cnn", "mnist_cnn"),
    "gan": ("GAN", "GanSpec", "build_gan"),
    "language": ("HoistedGRU", "build_language_model", "zero_states"),
    "rnn": ("build_row_rnn",),
    "transfer": ("transfer_model",),
})
