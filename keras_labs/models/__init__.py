"""Reusable functional-API model builders. A builder takes explicit arguments (shapes, widths,
or a small spec dataclass of its own), never a lab's config; nothing here imports a lab."""

from keras_labs.models.autoencoder import Autoencoder, build_autoencoder
from keras_labs.models.cnn import CifarNetSpec, cifar_cnn, mnist_cnn
from keras_labs.models.gan import GAN, GanSpec, build_gan
from keras_labs.models.language import HoistedGRU, build_language_model, zero_states
from keras_labs.models.rnn import build_row_rnn
from keras_labs.models.transfer import transfer_model

__all__ = ["mnist_cnn", "CifarNetSpec", "cifar_cnn", "Autoencoder", "build_autoencoder",
           "build_row_rnn", "HoistedGRU", "build_language_model", "zero_states",
           "transfer_model", "GAN", "GanSpec", "build_gan"]
