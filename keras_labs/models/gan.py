"""Generative adversarial networks on small images: the generator and discriminator builders
(fully connected or DCGAN), the two losses, and `GAN`, a `keras.Model` whose `train_step` takes
one discriminator and one generator step, so `fit`, callbacks and `tf.distribute` apply.

The losses work on logits, with D(x) = sigmoid(logit): log D = -softplus(-logit) and
log(1 - D) = -softplus(logit).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_labs.models.specs import LATENTS, MLP_ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class GanSpec:
    """One GAN: its two networks, its objective, its latent draws and its optimizers.

    Attributes:
        loss: The generator's objective, one of `GAN_LOSSES` (see `generator_loss`).
        architecture: "mlp" (fully connected, as in the original paper) or "dcgan"
            (convolutional, Radford et al.; a 28x28 image, two stride-2 stages).
        inputs: Pixel range of the images: "symmetric" ([-1, 1], tanh output) or "unit"
            ([0, 1], sigmoid output).
        latent: z distribution, one of `LATENTS`: "gaussian" (spherical) or "uniform" in [-1, 1].
        latent_dim: Size of z.
        label_smoothing: One-sided smoothing of the real targets (1 - value).
        conditional: Feed the digit label to both networks.
        mlp_units: mlp: the generator's hidden widths (the discriminator reverses them).
        mlp_activation: mlp: the hidden layers' activation, one of `MLP_ACTIVATIONS`
            ("leaky_relu" with slope 0.2, or "relu" as in the reports' course code).
        dcgan_filters: dcgan: the discriminator's two conv widths (the generator reverses them).
        discriminator_dropout: Dropout after every hidden discriminator layer (0: none).
        learning_rate: Adam's, both networks.
        beta_1: Adam's beta_1, both networks.
        seed: Seed of the model's random generator (every draw in `train_step`) and of
            `fixed_inputs`.
        image_shape: (height, width, channels) of the images.
        num_classes: Number of labels (conditional GAN).
    """

    loss: str = "non_saturating"
    architecture: str = "mlp"
    inputs: str = "symmetric"
    latent: str = "gaussian"
    latent_dim: int = 100
    label_smoothing: float = 0.0
    conditional: bool = False
    mlp_units: tuple[int, ...] = (256, 512)
    mlp_activation: str = "leaky_relu"
    dcgan_filters: tuple[int, ...] = (64, 128)
    discriminator_dropout: float = 0.3
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    seed: int = 0
    image_shape: tuple[int, int, int] = (28, 28, 1)
    num_classes: int = 10


def spec_from(options, **fixed) -> GanSpec:
    """A `GanSpec` whose fields are the same-named entries of `options` (a config's fields, as
    a mapping; other entries are ignored) or of `fixed`, which wins.

    Raises:
        ValueError: A spec field is in neither, so it would silently take its default.
    """
    names = [field.name for field in dataclasses.fields(GanSpec)]
    values = {name: options[name] for name in names if name in options} | fixed
    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(f"options={sorted(options)!r} lack the GanSpec fields {missing!r}")
    return GanSpec(**values)


# --------------------------------------------------------------------------------------------
# The two networks


def _mlp_activation(spec: GanSpec, index: int) -> layers.Layer:
    if spec.mlp_activation == "leaky_relu":
        return layers.LeakyReLU(0.2, name=f"leaky_relu{index}")
    if spec.mlp_activation == "relu":
        return layers.ReLU(name=f"relu{index}")
    raise ValueError(f"mlp_activation={spec.mlp_activation!r} is not valid; valid values: "
                     f"{', '.join(MLP_ACTIVATIONS)}")


def build_generator(spec: GanSpec) -> keras.Model:
    """z (and a digit label) -> an image in the spec's pixel range."""
    noise = keras.Input(shape=(spec.latent_dim,), name="z")
    inputs = [noise]
    x = noise
    if spec.conditional:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        one_hot = layers.CategoryEncoding(spec.num_classes, output_mode="one_hot",
                                          name="label_one_hot")(label)
        x = layers.Concatenate(name="z_and_label")([noise, one_hot])
    output_activation = "tanh" if spec.inputs == "symmetric" else "sigmoid"
    if spec.architecture == "mlp":
        for index, units in enumerate(spec.mlp_units, start=1):
            x = layers.Dense(units, name=f"dense{index}")(x)
            x = _mlp_activation(spec, index)(x)
        x = layers.Dense(int(np.prod(spec.image_shape)), activation=output_activation,
                         name="pixels")(x)
        image = layers.Reshape(spec.image_shape, name="image")(x)
    else:
        narrow, wide = spec.dcgan_filters
        # DCGAN: project and reshape, then fractionally strided convolutions with batch norm
        # and ReLU; no batch norm on the output layer (Radford et al., 2016).
        rows, columns = spec.image_shape[0] // 4, spec.image_shape[1] // 4
        x = layers.Dense(rows * columns * wide, use_bias=False, name="project")(x)
        x = layers.BatchNormalization(name="project_bn")(x)
        x = layers.ReLU(name="project_relu")(x)
        x = layers.Reshape((rows, columns, wide), name="reshape")(x)
        x = layers.Conv2DTranspose(narrow, 5, strides=2, padding="same", use_bias=False,
                                   name="up1")(x)
        x = layers.BatchNormalization(name="up1_bn")(x)
        x = layers.ReLU(name="up1_relu")(x)
        image = layers.Conv2DTranspose(spec.image_shape[-1], 5, strides=2, padding="same",
                                       activation=output_activation, name="image")(x)
    return keras.Model(inputs if spec.conditional else noise, image, name="generator")


def build_discriminator(spec: GanSpec) -> keras.Model:
    """An image (and a digit label) -> one logit: log D / (1 - D) of "this image is real"."""
    image = keras.Input(shape=spec.image_shape, name="image")
    inputs = [image]
    if spec.conditional:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        one_hot = layers.CategoryEncoding(spec.num_classes, output_mode="one_hot",
                                          name="label_one_hot")(label)
    if spec.architecture == "mlp":
        x = layers.Flatten(name="flatten")(image)
        if spec.conditional:
            x = layers.Concatenate(name="image_and_label")([x, one_hot])
        for index, units in enumerate(reversed(spec.mlp_units), start=1):
            x = layers.Dense(units, name=f"dense{index}")(x)
            x = _mlp_activation(spec, index)(x)
            if spec.discriminator_dropout:
                x = layers.Dropout(spec.discriminator_dropout, name=f"dropout{index}")(x)
    else:
        x = image
        if spec.conditional:
            # The label as constant feature maps next to the pixels, one per class.
            maps = layers.Reshape((1, 1, spec.num_classes), name="label_maps")(one_hot)
            maps = layers.UpSampling2D(spec.image_shape[:2], name="label_planes")(maps)
            x = layers.Concatenate(name="image_and_label")([x, maps])
        for index, filters in enumerate(spec.dcgan_filters, start=1):
            x = layers.Conv2D(filters, 5, strides=2, padding="same", name=f"conv{index}")(x)
            x = layers.LeakyReLU(0.2, name=f"leaky_relu{index}")(x)
            if spec.discriminator_dropout:
                x = layers.Dropout(spec.discriminator_dropout, name=f"dropout{index}")(x)
        x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(inputs if spec.conditional else image, logit, name="discriminator")


# --------------------------------------------------------------------------------------------
# The losses, on logits


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """-[log D(x) + log(1 - D(G(z)))], per example, averaged; the same for both losses.

    With one-sided label smoothing s the real targets are 1 - s (Salimans et al., 2016): the
    real term becomes the cross-entropy -[(1 - s) log D(x) + s log(1 - D(x))]; fake targets stay 0.
    """
    real_targets = tf.fill(tf.shape(real_logits), 1.0 - label_smoothing)
    real = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_targets, logits=real_logits)
    fake = tf.nn.softplus(fake_logits)  # -log(1 - D(G(z)))
    return tf.reduce_mean(real) + tf.reduce_mean(fake)


def generator_loss(fake_logits, loss: str):
    """`minimax`: mean log(1 - D(G(z))) (Goodfellow et al.); `non_saturating`: mean -log D(G(z))."""
    if loss == "minimax":
        return tf.reduce_mean(-tf.nn.softplus(fake_logits))
    if loss == "non_saturating":
        return tf.reduce_mean(tf.nn.softplus(-fake_logits))
    raise ValueError(f"loss={loss!r} is not valid; valid values: minimax, non_saturating")


# --------------------------------------------------------------------------------------------
# The model that trains both


class GAN(keras.Model):
    """A generator and a discriminator trained against each other by `fit`.

    Each `train_step` takes one discriminator step on a batch of real images and as many fresh
    fakes, then one generator step on fresh noise, each with its own optimizer. Losses are
    divided by the number of replicas inside the tape, so that under `tf.distribute` the
    summed replica gradients are the gradient of the global-batch mean.

    Args:
        generator: z (and a label) -> image.
        discriminator: image (and a label) -> logit.
        loss: "minimax" or "non_saturating" (the generator's objective, see `generator_loss`).
        latent: "uniform" (in [-1, 1]) or "gaussian".
        latent_dim: Size of z.
        label_smoothing: One-sided smoothing of the real targets.
        conditional: Feed digit labels to both networks (the real images' labels, and uniformly
            drawn labels for the fakes).
        seed: Seed of the model's `tf.random.Generator`, the source of every draw in `train_step`.
        num_classes: Number of labels the fakes' labels are drawn from (conditional).
    """

    METRIC_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *, loss: str,
                 latent: str, latent_dim: int, label_smoothing: float = 0.0,
                 conditional: bool = False, seed: int = 0, num_classes: int = 10, **kwargs):
        super().__init__(**kwargs)
        if latent not in LATENTS:
            raise ValueError(f"latent={latent!r} is not valid; valid values: uniform, gaussian")
        generator_loss(tf.zeros((1, 1)), loss)  # rejects an unknown loss name now
        self.generator = generator
        self.discriminator = discriminator
        self.loss_name = loss
        self.latent = latent
        self.latent_dim = latent_dim
        self.label_smoothing = label_smoothing
        self.conditional = conditional
        self.num_classes = num_classes
        # Created in the strategy scope with the networks: under MirroredStrategy every replica
        # gets its own stream, and the state is a variable that backups save and restore.
        self.rng = tf.random.Generator.from_seed(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.METRIC_NAMES}
        self.built = True  # both networks are built; there is no call() to trace

    def compile(self, d_optimizer: keras.optimizers.Optimizer,
                g_optimizer: keras.optimizers.Optimizer, **kwargs):
        # `optimizer` is the generator's, so that what Keras reads from `model.optimizer` (the
        # learning rate, the step count) is the generator's, and no third optimizer is made.
        super().compile(optimizer=g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        # Built here, in the strategy scope, not lazily inside a replica's first step.
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def probe_network(self) -> keras.Model:
        """The network `training.fit`'s probes read (`instrumentation.probe_callbacks`): the
        discriminator, on real images."""
        return self.discriminator

    @property
    def steps(self) -> int:
        """Generator steps taken so far (the generator optimizer's iteration count)."""
        return int(keras.ops.convert_to_numpy(self.g_optimizer.iterations))

    def sample_latent(self, count):
        """`count` latent vectors from the model's random generator."""
        shape = tf.stack([count, self.latent_dim])
        if self.latent == "gaussian":
            return self.rng.normal(shape)
        return self.rng.uniform(shape, minval=-1.0, maxval=1.0)

    def _generator_inputs(self, count):
        noise = self.sample_latent(count)
        if not self.conditional:
            return noise, None
        labels = self.rng.uniform(tf.reshape(count, [1]), minval=0, maxval=self.num_classes,
                                  dtype=tf.int32)
        return [noise, labels], labels

    def _discriminate(self, images, labels, training):
        inputs = [images, labels] if self.conditional else images
        return self.discriminator(inputs, training=training)

    def train_step(self, batch):
        real_images, real_labels = batch
        real_labels = tf.cast(real_labels, tf.int32)
        count = tf.shape(real_images)[0]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync

        generator_inputs, fake_labels = self._generator_inputs(count)
        with tf.GradientTape() as tape:
            fakes = self.generator(generator_inputs, training=True)
            real_logits = self._discriminate(real_images, real_labels, training=True)
            fake_logits = self._discriminate(fakes, fake_labels, training=True)
            d_loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
            scaled_d_loss = d_loss / replicas
        weights = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled_d_loss, weights), weights,
                                             strict=True))

        generator_inputs, fake_labels = self._generator_inputs(count)
        with tf.GradientTape() as tape:
            fakes = self.generator(generator_inputs, training=True)
            fake_logits_g = self._discriminate(fakes, fake_labels, training=True)
            g_loss = generator_loss(fake_logits_g, self.loss_name)
            scaled_g_loss = g_loss / replicas
        weights = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled_g_loss, weights), weights,
                                             strict=True))

        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["g_loss"].update_state(g_loss)
        self.trackers["d_real"].update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
        self.trackers["d_fake"].update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def build_gan(spec: GanSpec, *, steps_per_execution: int = 1) -> GAN:
    """Both networks and the `GAN` that trains them, compiled with one Adam per network.

    Call it in the strategy scope the model trains under.
    """
    generator = build_generator(spec)
    discriminator = build_discriminator(spec)
    gan = GAN(generator, discriminator, loss=spec.loss, latent=spec.latent,
              latent_dim=spec.latent_dim, label_smoothing=spec.label_smoothing,
              conditional=spec.conditional, seed=spec.seed, num_classes=spec.num_classes)
    gan.compile(d_optimizer=keras.optimizers.Adam(spec.learning_rate, beta_1=spec.beta_1),
                g_optimizer=keras.optimizers.Adam(spec.learning_rate, beta_1=spec.beta_1),
                steps_per_execution=steps_per_execution)
    return gan


# --------------------------------------------------------------------------------------------
# Drawing samples


def fixed_inputs(spec: GanSpec, count: int, salt: int) -> list[np.ndarray]:
    """Generator inputs that are the same on every call (and after a resume): seeded by the
    spec's seed and `salt`; the labels, when conditional, cycle through the classes."""
    rng = np.random.default_rng([spec.seed, salt])
    if spec.latent == "gaussian":
        noise = rng.standard_normal((count, spec.latent_dim)).astype(np.float32)
    else:
        noise = rng.uniform(-1.0, 1.0, (count, spec.latent_dim)).astype(np.float32)
    if not spec.conditional:
        return [noise]
    return [noise, (np.arange(count) % spec.num_classes).astype(np.int32)]


def to_unit(images, spec: GanSpec) -> np.ndarray:
    """Generator output -> [0, 1] pixels."""
    images = np.asarray(images, dtype=np.float32)
    return (images + 1.0) / 2.0 if spec.inputs == "symmetric" else images


def generate(generator: keras.Model, inputs: list[np.ndarray], spec: GanSpec) -> np.ndarray:
    """The generator's images for `inputs` (as from `fixed_inputs`), in [0, 1]."""
    images = []
    for start in range(0, len(inputs[0]), 1000):
        batch = [part[start:start + 1000] for part in inputs]
        images.append(generator(batch if len(batch) > 1 else batch[0], training=False))
    return to_unit(np.concatenate([np.asarray(image) for image in images]), spec)


def unit_sampler(generator: keras.Model, spec: GanSpec) -> keras.Model:
    """The generator with its output mapped to [0, 1] (itself when that is its range), for
    export."""
    if spec.inputs != "symmetric":
        return generator
    images = layers.Rescaling(0.5, offset=0.5, name="to_unit_range")(generator.output)
    return keras.Model(generator.input, images, name="sampler")


def save_frames(path, frames: dict[int, np.ndarray]) -> None:
    """Sample grids by step (uint8 images, as kept over training) into one .npz file."""
    np.savez_compressed(path, **{f"step_{step:06d}": grid for step, grid in sorted(frames.items())})


def load_frames(path, until_step: int) -> dict[int, np.ndarray]:
    """The grids `save_frames` saved at steps up to `until_step` ({} without the file)."""
    if not Path(path).exists():
        return {}
    with np.load(path) as saved:
        return {int(key.split("_")[1]): saved[key] for key in saved.files
                if int(key.split("_")[1]) <= until_step}
