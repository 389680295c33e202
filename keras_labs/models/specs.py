"""What the shared builders accept, importing no TensorFlow: the names of their choices and the
specs they build from, so that a lab's config can validate against them and be read by
`keras-labs list` without loading TensorFlow.
"""

from __future__ import annotations

import dataclasses

# models.optimization: optimizers and learning-rate schedules by name.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULES = ("constant", "cosine", "onecycle", "step")

# models.rnn: the recurrent cells a row RNN can use: name -> keras.layers class name.
CELLS = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

# models.gan: the objectives, latent draws and MLP activations.
GAN_LOSSES = ("minimax", "non_saturating")
LATENTS = ("uniform", "gaussian")
MLP_ACTIVATIONS = ("leaky_relu", "relu")

# models.cnn: the CIFAR-10 family.
CIFAR_ARCHITECTURES = ("tutorial", "deepdiva_basic", "deepdiva_basic_copy", "report002", "vgg",
                       "resnet")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu")
INITIALIZERS = ("default", "torch", "normal", "glorot_uniform", "he_normal")


@dataclasses.dataclass(frozen=True)
class CifarNetSpec:
    """One network of the CIFAR-10 family.

    Attributes:
        architecture: One of `CIFAR_ARCHITECTURES`: "tutorial" (report 004), "deepdiva_basic"
            and "deepdiva_basic_copy" (report 001), "report002", "vgg", "resnet" (a narrow
            ResNet-9).
        filters: Conv widths (per layer or stage); empty: the architecture's own.
        dense_units: Hidden dense widths; empty: the architecture's own.
        convs_per_stage: vgg: convolutions per stage.
        activation: Hidden-layer activation, one of `ACTIVATIONS`.
        initializer: Kernel initializer, one of `INITIALIZERS`; "default" is Keras's
            glorot_uniform, "torch" PyTorch's default (kernels and biases U(+-1/sqrt(fan_in))).
        init_stddev: Standard deviation of the "normal" initializer.
        batch_norm: Batch norm after every convolution.
        dropout: Dropout before the dense layers (0: none).
        l2: L2 penalty on kernels, added to the loss (0: none).
        num_classes: Width of the logits.
        input_shape: Image shape.
    """

    architecture: str = "tutorial"
    filters: tuple[int, ...] = ()
    dense_units: tuple[int, ...] = ()
    convs_per_stage: int = 2
    activation: str = "relu"
    initializer: str = "default"
    init_stddev: float = 0.05
    batch_norm: bool = False
    dropout: float = 0.0
    l2: float = 0.0
    num_classes: int = 10
    input_shape: tuple[int, ...] = (32, 32, 3)
