"""Lab `gan`: generative adversarial networks on MNIST, the two losses of the reports, measured.

Seed report 000, exercise 5, task 1 trains a GAN on MNIST with "the original loss as described
by Ian Goodfellow" and with "the logistic loss as described in Brandon Amos' blog", for 20k and
100k iterations, and compares the loss curves and samples. Report 001 (same exercise) saw the
Goodfellow loss favour some digits ("particularly 1s and 9s") and, after a while, "only produce
1s"; it suggests inputs in [-1, 1], a "spherical Z" instead of a uniform one, and a modified
loss. This lab runs all of that and measures what the reports only described by eye.

The two losses (config field `loss`), with D(x) = sigmoid(discriminator logit):

* `minimax`: the original loss of Goodfellow et al. (2014). The discriminator maximizes
  log D(x) + log(1 - D(G(z))); the generator minimizes log(1 - D(G(z))). Its gradient vanishes
  when D confidently rejects the samples, which is the case early in training.
* `non_saturating`: the "logistic" (non-saturating) loss, also from the paper and the one in
  Amos' blog. The discriminator is the same; the generator minimizes -log D(G(z)), which has
  the same fixed point but strong gradients exactly when D rejects the samples.

The improvements from the reports are flags: `inputs="symmetric"` (images in [-1, 1], tanh
output instead of sigmoid), `latent="gaussian"` (spherical z instead of uniform in [-1, 1]),
`label_smoothing` (one-sided: real targets 1 - s, fake targets stay 0), `conditional` (a
conditional GAN: the digit label goes into both networks) and `architecture` (`mlp`: fully
connected networks as in the original paper; `dcgan`: the convolutional DCGAN of Radford et al.).
The first two are on by default: with images in [0, 1] (the reports' setup, `--set inputs=unit
--set latent=uniform`, or `inputs=unit` alone) this MLP GAN trained with the non-saturating
loss collapses within 2,000 steps to one noisy pattern, while [-1, 1] alone avoids that; so
the presets compare the two losses with both improvements on.

The GAN is a `keras.Model` whose `train_step` takes one discriminator and one generator step
with `tf.GradientTape` and two Adam optimizers, so `fit`, callbacks, checkpoints and
`tf.distribute` (mirrored strategy included) all apply. Every random draw in `train_step`
comes from a `tf.random.Generator` owned by the model, seeded by `seed` and saved in the
checkpoints. One iteration is one generator step; `fit` runs `iterations / sample_every`
"epochs" of `sample_every` steps, and after each one the lab:

* draws a grid from the same fixed noise (a PNG, and an image in TensorBoard), which together
  make the contact sheet over training;
* scores `score_samples` generated digits with a trained MNIST classifier (`models.mnist_cnn`,
  trained at the start of the run on the same data or reused from
  `<export_dir>/_classifiers/`, see `training.mnist_classifier`): the class histogram, the share
  of the most frequent class (`largest_class_share`: 0.1 is a perfect spread over ten digits,
  1.0 is total mode collapse), the entropy of the histogram in bits (`class_entropy`, at most
  log2(10) = 3.32), and `classifier_fid`, the Frechet distance between the classifier's
  penultimate ("features") activations on generated and on real test digits;
* saves a checkpoint (`checkpoints/`: both networks, both optimizers, the random generator and
  the step), so a killed run continues where it stopped with `resume(run_folder)`
  (`keras-labs run gan --resume RUN_FOLDER`).

The run leaves history.csv (per interval: D and G loss, mean D(x) and D(G(z)), the scores),
losses.csv (D and G loss averaged over short windows), scores.json (the histograms), plots
(loss curves, scores over training, final histogram, sample grids, contact sheet), TensorBoard
logs and the generator as a SavedModel that maps z (and a label) to images in [0, 1].
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_labs import ConfigError, KerasLabsError, data, export, runs, training, visualization
from keras_labs.config import LabConfig, option

NAME = "gan"
DESCRIPTION = ("GAN on MNIST, minimax vs non-saturating loss (reports 000/001, ex. 5); mode "
               "collapse and classifier FID measured, resumable")
DATASETS = ("mnist",)

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
GRID_ROWS, GRID_COLUMNS = 8, 10


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    loss: str = option("non_saturating", choices=("minimax", "non_saturating"),
                       help="minimax: G minimizes log(1 - D(G(z))); non_saturating: -log D(G(z))")
    iterations: int = option(20000, minimum=1, help="generator steps (one D step before each)")
    sample_every: int = option(1000, minimum=1,
                               help="steps between sample grids, classifier scores, checkpoints")
    batch_size: int = option(64, minimum=1, maximum=65536, help="real (and fake) images per step")
    architecture: str = option("mlp", choices=("mlp", "dcgan"),
                               help="mlp: fully connected (original paper); dcgan: convolutional")
    inputs: str = option("symmetric", choices=("unit", "symmetric"),
                         help="pixel range: symmetric [-1, 1] (tanh G output), unit [0, 1] (sigmoid)")
    latent: str = option("gaussian", choices=("uniform", "gaussian"),
                         help="z distribution: spherical Gaussian or uniform in [-1, 1]")
    latent_dim: int = option(100, minimum=1)
    label_smoothing: float = option(0.0, minimum=0.0, maximum=0.5,
                                    help="one-sided label smoothing: real targets are 1 - value")
    conditional: bool = option(False, help="conditional GAN: the digit label goes into G and D")
    mlp_units: tuple[int, ...] = option((256, 512), positive=True,
                                        help="generator hidden widths (the discriminator reverses them)")
    dcgan_filters: tuple[int, ...] = option((64, 128), positive=True,
                                            help="discriminator conv widths (the generator reverses them)")
    discriminator_dropout: float = option(0.3, minimum=0.0, maximum=0.9)
    learning_rate: float = option(2e-4, positive=True, maximum=1.0, help="Adam, both networks")
    beta_1: float = option(0.5, minimum=0.0, maximum=0.999, help="Adam beta_1, both networks")
    train_examples: int = option(0, minimum=0, help="use only the first N training images (0: all)")
    score_samples: int = option(2000, minimum=10, help="generated digits scored per interval")
    classifier_epochs: int = option(2, minimum=1, help="epochs of the scoring classifier")
    classifier_examples: int = option(0, minimum=0,
                                      help="train the scoring classifier on the first N images (0: all)")
    steps_per_execution: int = option(10, minimum=1,
                                      help="train steps per tf.function call (same steps, less overhead)")

    def check(self) -> None:
        if self.iterations % self.sample_every:
            raise ConfigError(f"iterations={self.iterations} is not a multiple of "
                              f"sample_every={self.sample_every}")
        if self.sample_every % self.steps_per_execution:
            raise ConfigError(f"sample_every={self.sample_every} is not a multiple of "
                              f"steps_per_execution={self.steps_per_execution}")
        if self.architecture == "dcgan" and len(self.dcgan_filters) != 2:
            raise ConfigError(f"dcgan_filters={self.dcgan_filters!r} is not valid; the 28x28 "
                              "DCGAN has exactly two stride-2 stages, give two widths")


PRESETS = {
    # The reports' runs: 20k and 100k iterations of each loss, everything else equal.
    "minimax-20k": Config(loss="minimax"),
    "minimax-100k": Config(loss="minimax", iterations=100000, sample_every=5000),
    "non_saturating-20k": Config(loss="non_saturating"),
    "non_saturating-100k": Config(loss="non_saturating", iterations=100000, sample_every=5000),
    "quick": Config(iterations=900, sample_every=300, train_examples=10000, score_samples=500,
                    classifier_epochs=2, classifier_examples=8000),
}
DEFAULT_PRESET = "non_saturating-20k"


# --------------------------------------------------------------------------------------------
# The two networks


def build_generator(config: Config) -> keras.Model:
    """z (and a digit label) -> a 28x28x1 image in the configured pixel range."""
    noise = keras.Input(shape=(config.latent_dim,), name="z")
    inputs = [noise]
    x = noise
    if config.conditional:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        one_hot = layers.CategoryEncoding(NUM_CLASSES, output_mode="one_hot", name="label_one_hot")(label)
        x = layers.Concatenate(name="z_and_label")([noise, one_hot])
    output_activation = "tanh" if config.inputs == "symmetric" else "sigmoid"
    if config.architecture == "mlp":
        for index, units in enumerate(config.mlp_units, start=1):
            x = layers.Dense(units, name=f"dense{index}")(x)
            x = layers.LeakyReLU(0.2, name=f"leaky_relu{index}")(x)
        x = layers.Dense(int(np.prod(IMAGE_SHAPE)), activation=output_activation, name="pixels")(x)
        image = layers.Reshape(IMAGE_SHAPE, name="image")(x)
    else:
        narrow, wide = config.dcgan_filters
        # DCGAN: project and reshape, then fractionally strided convolutions with batch norm
        # and ReLU; no batch norm on the output layer (Radford et al., 2016).
        x = layers.Dense(7 * 7 * wide, use_bias=False, name="project")(x)
        x = layers.BatchNormalization(name="project_bn")(x)
        x = layers.ReLU(name="project_relu")(x)
        x = layers.Reshape((7, 7, wide), name="reshape")(x)
        x = layers.Conv2DTranspose(narrow, 5, strides=2, padding="same", use_bias=False,
                                   name="up1")(x)
        x = layers.BatchNormalization(name="up1_bn")(x)
        x = layers.ReLU(name="up1_relu")(x)
        image = layers.Conv2DTranspose(1, 5, strides=2, padding="same",
                                       activation=output_activation, name="image")(x)
    return keras.Model(inputs if config.conditional else noise, image, name="generator")


def build_discriminator(config: Config) -> keras.Model:
    """An image (and a digit label) -> one logit: log D / (1 - D) of "this image is real"."""
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    inputs = [image]
    if config.conditional:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        one_hot = layers.CategoryEncoding(NUM_CLASSES, output_mode="one_hot", name="label_one_hot")(label)
    if config.architecture == "mlp":
        x = layers.Flatten(name="flatten")(image)
        if config.conditional:
            x = layers.Concatenate(name="image_and_label")([x, one_hot])
        for index, units in enumerate(reversed(config.mlp_units), start=1):
            x = layers.Dense(units, name=f"dense{index}")(x)
            x = layers.LeakyReLU(0.2, name=f"leaky_relu{index}")(x)
            x = layers.Dropout(config.discriminator_dropout, name=f"dropout{index}")(x)
    else:
        x = image
        if config.conditional:
            # The label as ten constant feature maps next to the pixels.
            maps = layers.Reshape((1, 1, NUM_CLASSES), name="label_maps")(one_hot)
            maps = layers.UpSampling2D(IMAGE_SHAPE[:2], name="label_planes")(maps)
            x = layers.Concatenate(name="image_and_label")([x, maps])
        for index, filters in enumerate(config.dcgan_filters, start=1):
            x = layers.Conv2D(filters, 5, strides=2, padding="same", name=f"conv{index}")(x)
            x = layers.LeakyReLU(0.2, name=f"leaky_relu{index}")(x)
            x = layers.Dropout(config.discriminator_dropout, name=f"dropout{index}")(x)
        x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(inputs if config.conditional else image, logit, name="discriminator")


# --------------------------------------------------------------------------------------------
# The losses, on logits (log D = -softplus(-logit), log(1 - D) = -softplus(logit))


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
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *, loss: str,
                 latent: str, latent_dim: int, label_smoothing: float = 0.0,
                 conditional: bool = False, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if latent not in ("uniform", "gaussian"):
            raise ValueError(f"latent={latent!r} is not valid; valid values: uniform, gaussian")
        generator_loss(tf.zeros((1, 1)), loss)  # rejects an unknown loss name now
        self.generator = generator
        self.discriminator = discriminator
        self.loss_name = loss
        self.latent = latent
        self.latent_dim = latent_dim
        self.label_smoothing = label_smoothing
        self.conditional = conditional
        # Created in the strategy scope with the networks: under MirroredStrategy every replica
        # gets its own stream, and the state is a variable that checkpoints save and restore.
        self.rng = tf.random.Generator.from_seed(seed)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("d_loss", "g_loss", "d_real", "d_fake")}
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
        labels = self.rng.uniform(tf.reshape(count, [1]), minval=0, maxval=NUM_CLASSES,
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


# --------------------------------------------------------------------------------------------
# Scoring samples with a trained classifier


def frechet_distance(mean_a, covariance_a, mean_b, covariance_b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the distance between two Gaussians."""
    covariance_a = np.atleast_2d(np.asarray(covariance_a, dtype=np.float64))
    covariance_b = np.atleast_2d(np.asarray(covariance_b, dtype=np.float64))
    # Tr (S_a S_b)^(1/2) = Tr (S_a^(1/2) S_b S_a^(1/2))^(1/2): a symmetric matrix, so its
    # eigenvalues are real (clipped at 0 against round-off) and no complex sqrtm is needed.
    values, vectors = np.linalg.eigh(covariance_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = root_a @ covariance_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    difference = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    value = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b) - 2 * trace_root
    return float(max(value, 0.0))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


class SampleScorer:
    """Scores generated digits with a trained classifier against real test digits.

    Args:
        classifier: Maps [0, 1] images (N, 28, 28, 1) to class probabilities and has a layer
            named "features" (its penultimate representation).
        real_images: Real test digits in [0, 1], the reference of the Frechet distance.
    """

    def __init__(self, classifier: keras.Model, real_images: np.ndarray):
        self.classifier = classifier
        self.features = keras.Model(classifier.input, [classifier.get_layer("features").output,
                                                       classifier.output])
        real_features, _ = self._run(real_images)
        self.reference = feature_statistics(real_features)

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, probabilities = [], []
        for start in range(0, len(images), 1000):
            batch_features, batch_probabilities = self.features(images[start:start + 1000],
                                                                training=False)
            features.append(np.asarray(batch_features))
            probabilities.append(np.asarray(batch_probabilities))
        return np.concatenate(features), np.concatenate(probabilities)

    def score(self, images: np.ndarray) -> dict:
        """`class_histogram` (fractions), `largest_class_share`, `class_entropy` (bits) and
        `classifier_fid` of [0, 1] images."""
        features, probabilities = self._run(np.asarray(images, dtype=np.float32))
        predicted = probabilities.argmax(axis=1)
        histogram = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
        nonzero = histogram[histogram > 0]
        return {
            "class_histogram": [round(float(share), 4) for share in histogram],
            "largest_class_share": float(histogram.max()),
            "class_entropy": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,  # never -0.0
            "classifier_fid": frechet_distance(*feature_statistics(features), *self.reference),
            "predicted": predicted,
        }


def to_unit(images, config: Config):
    """Generator output -> [0, 1] pixels."""
    images = np.asarray(images, dtype=np.float32)
    return (images + 1.0) / 2.0 if config.inputs == "symmetric" else images


def fixed_inputs(config: Config, count: int, salt: int) -> list[np.ndarray]:
    """The same generator inputs at every interval (and after a resume): seeded by `seed`."""
    rng = np.random.default_rng([config.seed, salt])
    if config.latent == "gaussian":
        noise = rng.standard_normal((count, config.latent_dim)).astype(np.float32)
    else:
        noise = rng.uniform(-1.0, 1.0, (count, config.latent_dim)).astype(np.float32)
    if not config.conditional:
        return [noise]
    return [noise, (np.arange(count) % NUM_CLASSES).astype(np.int32)]


def generate(generator: keras.Model, inputs: list[np.ndarray], config: Config) -> np.ndarray:
    images = []
    for start in range(0, len(inputs[0]), 1000):
        batch = [part[start:start + 1000] for part in inputs]
        images.append(generator(batch if len(batch) > 1 else batch[0], training=False))
    return to_unit(np.concatenate([np.asarray(image) for image in images]), config)


# --------------------------------------------------------------------------------------------
# Callbacks: monitoring, loss curves, checkpoints


class GanMonitor(keras.callbacks.Callback):
    """After every interval: the fixed-noise sample grid (PNG, TensorBoard) and the classifier
    scores, added to the epoch logs (so history.csv and TensorBoard have them) and kept in
    scores.json; the grids are kept in samples.npz for the contact sheet. Both files are
    reloaded when a run resumes.
    """

    def __init__(self, run: runs.Run, config: Config, scorer: SampleScorer, start_step: int = 0):
        super().__init__()
        self.run, self.config, self.scorer = run, config, scorer
        self.grid_inputs = fixed_inputs(config, GRID_ROWS * GRID_COLUMNS, salt=1)
        self.score_inputs = fixed_inputs(config, config.score_samples, salt=2)
        self.scores_path = run.workdir / "scores.json"
        self.frames_path = run.workdir / "samples.npz"
        self.writer = tf.summary.create_file_writer(str(run.tb_dir / "samples"))
        self.scores: list[dict] = []
        self.frames: dict[int, np.ndarray] = {}
        self.seconds = 0.0
        if start_step:  # resuming: keep what was recorded up to the checkpoint, drop the rest
            if self.scores_path.exists():
                self.scores = [entry for entry in json.loads(self.scores_path.read_text())
                               if entry["step"] <= start_step]
            if self.frames_path.exists():
                with np.load(self.frames_path) as saved:
                    self.frames = {int(key.split("_")[1]): saved[key] for key in saved.files
                                   if int(key.split("_")[1]) <= start_step}

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        step = (epoch + 1) * self.config.sample_every
        generator = self.model.generator
        grid = generate(generator, self.grid_inputs, self.config)
        tiled = visualization.tile_images(grid, columns=GRID_COLUMNS)
        visualization.save_image(tiled, self.run.plot_path(f"samples_step{step:06d}"))
        with self.writer.as_default():
            tf.summary.image("fixed_noise_samples", tiled[None, :, :, None], step=step)
        self.frames[step] = (grid * 255).round().astype(np.uint8)
        np.savez_compressed(self.frames_path, **{f"step_{key:06d}": value
                                                  for key, value in sorted(self.frames.items())})

        score = self.scorer.score(generate(generator, self.score_inputs, self.config))
        predicted = score.pop("predicted")
        if self.config.conditional:
            score["label_agreement"] = float((predicted == self.score_inputs[1]).mean())
        score["step"] = step
        self.scores.append(score)
        self.run.write_json("scores.json", self.scores)
        with self.writer.as_default():
            for key in ("largest_class_share", "class_entropy", "classifier_fid"):
                tf.summary.scalar(key, score[key], step=step)
        self.writer.flush()
        if logs is not None:
            logs.update({key: score[key] for key in
                         ("largest_class_share", "class_entropy", "classifier_fid")})
        self.seconds += time.perf_counter() - started
        print(f"step {step}: largest class share {score['largest_class_share']:.3f}, class "
              f"entropy {score['class_entropy']:.2f} bits, classifier FID "
              f"{score['classifier_fid']:.2f}", flush=True)


class LossRecorder(keras.callbacks.Callback):
    """D and G loss averaged over windows of `window` steps, appended to losses.csv.

    The epoch logs hold running means since the epoch began; the mean of one window is the
    difference of two running sums divided by its length.
    """

    KEYS = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, path: Path, window: int, start_step: int = 0):
        super().__init__()
        self.path, self.window, self.start_step = path, window, start_step
        if start_step and path.exists():  # resuming: drop windows after the checkpoint
            with open(path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= start_step]
            self._write(rows, mode="w")
        else:
            self._write([], mode="w")

    def _write(self, rows, mode):
        with open(self.path, mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=("step", *self.KEYS))
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.model.steps
        self.last_count, self.last_sums = 0, dict.fromkeys(self.KEYS, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        step = self.model.steps
        if step % self.window or not logs:
            return
        count = step - self.epoch_start
        sums = {key: count * float(logs[key]) for key in self.KEYS}
        length = count - self.last_count
        if length > 0:
            row = {"step": step, **{key: round((sums[key] - self.last_sums[key]) / length, 5)
                                    for key in self.KEYS}}
            self._write([row], mode="a")
        self.last_count, self.last_sums = count, sums


class Checkpointer(keras.callbacks.Callback):
    """Saves the training state after every interval (last in the callback list, so the records
    of that interval are on disk before the checkpoint that says it is done)."""

    def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable, steps_per_epoch: int):
        super().__init__()
        self.manager, self.epoch, self.steps_per_epoch = manager, epoch, steps_per_epoch
        self.seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=(epoch + 1) * self.steps_per_epoch)
        self.seconds += time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# The run


def run(config: Config, workdir: str, callbacks=(), *, resume: bool = False) -> dict:
    """Trains the GAN into a new run folder; returns the metrics (metrics.json).

    Args:
        config: The validated config.
        workdir: The run folder (must not exist or be empty, unless `resume`).
        callbacks: Extra Keras callbacks (the tests use one to interrupt a run).
        resume: Continue the interrupted run in `workdir` from its last checkpoint.
    """
    if resume and tf.train.latest_checkpoint(str(Path(workdir) / "checkpoints")) is None:
        runs.check_resumable(workdir, NAME)
        raise ConfigError(f"run {str(workdir)!r} has no checkpoint to resume from")
    run = runs.Run(NAME, config, workdir, resume=resume)
    return _train(config, run, resumed_from=run.workdir if resume else None, callbacks=callbacks)


def resume(workdir: str, callbacks=()) -> dict:
    """Continues a GAN run folder from its last checkpoint, with the config it was started with.

    Raises:
        ConfigError: The folder is not a GAN run, has finished already, or has no checkpoint.
    """
    config = runs.resumable_config(workdir, NAME, Config)
    return run(config, workdir, callbacks, resume=True)


def _train(config: Config, run: runs.Run, resumed_from, callbacks) -> dict:
    strategy = training.setup(config, run)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"batch_size={config.batch_size} does not split evenly over "
                          f"{strategy.num_replicas_in_sync} replicas")

    datasets, source = data.load("mnist", ("train", "test"), data=config.data,
                                 data_dir=config.data_dir)
    run.record_data(source)
    train_split = datasets["train"]
    if config.train_examples:
        train_split = train_split.take(config.train_examples)
    # An endless stream of shuffled batches: fit's "epochs" are monitoring intervals.
    train = data.image_pipeline(
        train_split, batch_size=config.batch_size, training=True, seed=config.seed,
        normalize="symmetric" if config.inputs == "symmetric" else "unit",
        drop_remainder=True).repeat()

    classifier, classifier_info = training.mnist_classifier(
        datasets, source, config.export_dir, epochs=config.classifier_epochs,
        train_examples=config.classifier_examples, seed=config.seed)
    real_test, _ = data.to_numpy(datasets["test"].take(10000))
    real_test = real_test.astype(np.float32) / 255.0
    real_train, _ = data.to_numpy(datasets["train"].take(min(config.score_samples, 10000)))
    scorer = SampleScorer(classifier, real_test)
    # The floor of the Frechet distance: real training digits, as many as the scored samples.
    real_baseline = scorer.score(real_train.astype(np.float32) / 255.0)

    with strategy.scope():
        generator = build_generator(config)
        discriminator = build_discriminator(config)
        gan = GAN(generator, discriminator, loss=config.loss, latent=config.latent,
                  latent_dim=config.latent_dim, label_smoothing=config.label_smoothing,
                  conditional=config.conditional, seed=config.seed)
        gan.compile(d_optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1),
                    g_optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1),
                    steps_per_execution=config.steps_per_execution)
    generator.summary(print_fn=lambda line, **_: print(line))
    discriminator.summary(print_fn=lambda line, **_: print(line))

    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_intervals")
    checkpoint = tf.train.Checkpoint(generator=generator, discriminator=discriminator,
                                     d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer,
                                     rng=gan.rng, completed_intervals=epoch)
    manager = tf.train.CheckpointManager(checkpoint, str(run.workdir / "checkpoints"),
                                         max_to_keep=2)
    start_step = 0
    if resumed_from is not None:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start_step = int(epoch) * config.sample_every
        print(f"{NAME}: resumed {run.workdir} at step {start_step} of {config.iterations} "
              f"(generator optimizer at {gan.steps})", flush=True)
        training.keep_history_rows(run.history_path, int(epoch))

    monitor = GanMonitor(run, config, scorer, start_step=start_step)
    window = max(config.steps_per_execution, config.sample_every // 20)
    window -= window % config.steps_per_execution
    checkpointer = Checkpointer(manager, epoch, config.sample_every)
    standard = training.standard_callbacks(run)
    for callback in standard:
        if isinstance(callback, keras.callbacks.CSVLogger):
            callback.append = resumed_from is not None
    started = time.perf_counter()
    history = gan.fit(train, epochs=config.iterations // config.sample_every,
                      steps_per_epoch=config.sample_every, initial_epoch=int(epoch),
                      callbacks=[monitor, *standard,
                                 LossRecorder(run.workdir / "losses.csv", window, start_step),
                                 *callbacks, checkpointer],
                      verbose=training.verbosity())
    fit_seconds = time.perf_counter() - started
    losses = history.history.get("d_loss", []) + history.history.get("g_loss", [])
    if any(not math.isfinite(value) for value in losses):
        raise KerasLabsError("training diverged: a GAN loss became NaN or infinite; lower the "
                             "learning_rate (nothing was exported)")

    final = monitor.scores[-1]
    steps_run = config.iterations - start_step
    train_seconds = fit_seconds - monitor.seconds - checkpointer.seconds
    metrics = {
        "largest_class_share": final["largest_class_share"],
        "class_entropy": final["class_entropy"],
        "classifier_fid": final["classifier_fid"],
        "class_histogram": final["class_histogram"],
        "real_data_reference": {key: real_baseline[key] for key in
                                ("largest_class_share", "class_entropy", "classifier_fid")},
        "over_training": {key: [entry[key] for entry in monitor.scores] for key in
                          ("step", "largest_class_share", "class_entropy", "classifier_fid")},
        "d_loss": float(history.history["d_loss"][-1]),
        "g_loss": float(history.history["g_loss"][-1]),
        "d_real": float(history.history["d_real"][-1]),
        "d_fake": float(history.history["d_fake"][-1]),
        "loss": config.loss,
        "iterations": gan.steps,
        "resumed_from_step": start_step if resumed_from is not None else None,
        "train_steps_per_second": round(steps_run / max(train_seconds, 1e-9), 2),
        "classifier": {key: classifier_info[key] for key in ("path", "reused", "test_accuracy")},
        "generator_parameters": int(generator.count_params()),
        "discriminator_parameters": int(discriminator.count_params()),
        "replicas": strategy.num_replicas_in_sync,
    }
    if config.conditional:
        metrics["label_agreement"] = final["label_agreement"]

    _plots(run, config, monitor, source, metrics["real_data_reference"])
    metrics["export"] = str(export.export_model(_sampler(generator, config), config.export_dir,
                                                NAME, run.run_id))
    print(f"{NAME} ({config.loss}): largest class share {metrics['largest_class_share']:.3f}, "
          f"class entropy {metrics['class_entropy']:.2f} bits, classifier FID "
          f"{metrics['classifier_fid']:.2f} (real digits: "
          f"{metrics['real_data_reference']['classifier_fid']:.2f}) on {source.describe()}")
    return run.finish(metrics)


def _sampler(generator: keras.Model, config: Config) -> keras.Model:
    """The generator with its output mapped to [0, 1], for export."""
    if config.inputs != "symmetric":
        return generator
    images = layers.Rescaling(0.5, offset=0.5, name="to_unit_range")(generator.output)
    return keras.Model(generator.input, images, name="sampler")


def _plots(run: runs.Run, config: Config, monitor: GanMonitor, source, real: dict) -> None:
    label = f"{NAME}, {config.loss} loss, {config.architecture} ({source.kind} data)"
    with open(run.workdir / "losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows:
        steps = [int(row["step"]) for row in rows]
        series = {key: (steps, [float(row[key]) for row in rows]) for key in LossRecorder.KEYS}
        visualization.plot_curves(
            {"loss": {"discriminator": series["d_loss"], "generator": series["g_loss"]},
             "discriminator output": {"mean D(x), real": series["d_real"],
                                      "mean D(G(z)), fake": series["d_fake"]}},
            run.plot_path("losses"), title=label, markers=False)
    steps = [entry["step"] for entry in monitor.scores]
    visualization.plot_curves(
        {"largest class share": {"generated": (steps, [e["largest_class_share"] for e in monitor.scores])},
         "class entropy (bits)": {"generated": (steps, [e["class_entropy"] for e in monitor.scores])},
         "classifier FID": {"generated": (steps, [e["classifier_fid"] for e in monitor.scores])}},
        run.plot_path("scores"), title=label,
        references={"largest class share": {"uniform (0.1)": 0.1, "target (0.2)": 0.2},
                    "class entropy (bits)": {"uniform (log2 10)": math.log2(NUM_CLASSES)},
                    "classifier FID": {"real training digits": real["classifier_fid"]}},
        log_y=("classifier FID",))
    visualization.plot_bars(monitor.scores[-1]["class_histogram"], data.class_names("mnist"),
                            run.plot_path("class_histogram"), y_label="share of generated digits",
                            title=f"{label}: classes at step {steps[-1]}", reference=0.1,
                            reference_label="uniform")
    # The contact sheet: the first ten fixed-noise samples, at up to 12 steps over training.
    keys = sorted(monitor.frames)
    chosen = [keys[round(i)] for i in np.linspace(0, len(keys) - 1, min(len(keys), 12))]
    visualization.contact_sheet(
        [(f"step {key}", monitor.frames[key][:GRID_COLUMNS].astype(np.float32) / 255.0)
         for key in dict.fromkeys(chosen)],
        run.plot_path("contact_sheet"), title=f"{label}: the same z over training")
    final = visualization.tile_images(monitor.frames[keys[-1]].astype(np.float32) / 255.0,
                                      columns=GRID_COLUMNS)
    visualization.save_image(final, run.plot_path("samples_final"))
