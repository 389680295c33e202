"""Reusable functional-API model builders. A builder takes explicit arguments (shapes, widths,
or a small spec dataclass of its own), never a lab's config; nothing here imports a lab."""

from keras_labs.models.cnn import mnist_cnn

__all__ = ["mnist_cnn"]
