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

Two presets leave those defaults. `report-setup` is the reports' own set-up: the course's
"vanilla GAN" that both reports modified (one hidden layer of 128 ReLU units in each network,
no dropout, Adam at its defaults of 1e-3 and beta_1 0.9, batches of 128, images in [0, 1] with a
sigmoid output, z uniform in [-1, 1]) trained with the minimax loss; it is the run that shows
(or fails to show) report 001's mode collapse. `conditional` is report 000's "add labels":
the non-saturating 20k run with the digit label fed to both networks.

The GAN (`models.gan.GAN`) is a `keras.Model` whose `train_step` takes one discriminator and
one generator step with `tf.GradientTape` and two Adam optimizers, so `training.fit`, callbacks,
backups and `tf.distribute` (mirrored strategy included) all apply. Every random draw in
`train_step` comes from a `tf.random.Generator` owned by the model, seeded by `seed` and saved
in the backups. One iteration is one generator step; `fit` runs `iterations / sample_every`
"epochs" of `sample_every` steps, and after each one the lab:

* draws a grid from the same fixed noise (a PNG, and an image in TensorBoard), which together
  make the contact sheet over training;
* scores `score_samples` generated digits (`scoring.SampleScorer`) with a trained MNIST
  classifier (`models.mnist_cnn`, trained at the start of the run on the same data or reused
  from an earlier run, see `training.mnist_classifier`): the class histogram, the share
  of the most frequent class (`largest_class_share`: 0.1 is a perfect spread over ten digits,
  1.0 is total mode collapse), the entropy of the histogram in bits (`class_entropy`, at most
  log2(10) = 3.32), and `classifier_fid`, the Frechet distance between the classifier's
  penultimate ("features") activations on generated digits and on the reference test digits
  (those the floor below does not use);
* saves a backup (`training.Backup`: both networks, both optimizers, the dropout and random
  generator states, the step), so a killed run continues where it stopped with
  `resume(run_folder)` (`keras-labs run gan --resume RUN_FOLDER`).

The "floor" (`metrics["floor"]`) is what real digits score with the same instrument: the first
`score_samples` digits of the mnist TEST split (at most half of it), scored exactly as the
generated ones against a Frechet reference made of the remaining test digits, so the two sets
are disjoint and no training digit is used. The test split selects nothing: no preset, step or
setting is chosen by these scores, they are only reported.

Mode collapse is read from the final scores: `largest_class` (the digit generated most often),
`mode_collapse` (its share is at least `MODE_COLLAPSE_SHARE`, 0.5) and `no_mode_collapse` (at
most `SPREAD_SHARE`, 0.2); report 001's "affinity for 1s and 9s" is `favours_1s_and_9s`
(the generated share of 1s and 9s, `share_of_1s_and_9s`, is at least `AFFINITY_RATIO` times
theirs in the floor: 1 is MNIST's most frequent digit, so a largest class of 1 alone shows
nothing). Report 000's "higher highs and lower lows" of the original loss is
`generator_loss_range` (and `discriminator_loss_range`): max - min of the loss curve in
losses.csv (means over windows of `sample_every / 20` steps), leaving out the first 10% of the
steps, where both losses move fast for either objective.

The run leaves history.csv (per interval: D and G loss, mean D(x) and D(G(z)), the scores),
losses.csv (D and G loss averaged over short windows), scores.json (the histograms), plots
(loss curves, scores over training, final histogram, sample grids, contact sheet), TensorBoard
logs and the generator as a SavedModel that maps z (and a label) to images in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keras_labs import ConfigError, data, models, runs
from keras_labs.config import LabConfig, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
keras, tf = lazy_import("keras", "tensorflow")
shared_callbacks, export, scoring, training, visualization = lazy_import(
    "keras_labs.callbacks", "keras_labs.export", "keras_labs.scoring", "keras_labs.training",
    "keras_labs.visualization")

NAME = "gan"
DESCRIPTION = ("GAN on MNIST, minimax vs non-saturating loss (reports 000/001, ex. 5); mode "
               "collapse and classifier FID measured, resumable")
DATASETS = ("mnist",)

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
GRID_ROWS, GRID_COLUMNS = 8, 10
# The final largest class share at or above which a run counts as collapsed onto one digit,
# and at or below which its digits count as spread (a perfect spread is 0.1).
MODE_COLLAPSE_SHARE = 0.5
SPREAD_SHARE = 0.2
# The loss ranges leave out the first tenth of the steps (the fast start of either loss).
LOSS_RANGE_SKIP = 0.1
# The range, not the standard deviation: report 000 compared the curves' highs and lows.
LOSS_RANGES = {"g_loss": "generator_loss_range", "d_loss": "discriminator_loss_range"}
# `favours_1s_and_9s`: the generated share of 1s and 9s is at least this many times that of
# real test digits (about 0.21 in MNIST, where 1 is the most frequent digit).
AFFINITY_RATIO = 1.5


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
    mlp_activation: str = option("leaky_relu", choices=("leaky_relu", "relu"),
                                 help="mlp hidden activation: leaky_relu (slope 0.2) or relu")
    dcgan_filters: tuple[int, ...] = option((64, 128), positive=True,
                                            help="discriminator conv widths (the generator reverses them)")
    discriminator_dropout: float = option(0.3, minimum=0.0, maximum=0.9,
                                          help="dropout after each hidden D layer (0: none)")
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

    def model_spec(self) -> models.GanSpec:
        """The `models.gan.GanSpec` of this config's GAN (MNIST digits, ten labels): every
        other spec field is the config field of the same name."""
        return models.gan.spec_from(self.to_dict(), image_shape=IMAGE_SHAPE,
                                    num_classes=NUM_CLASSES)


PRESETS = {
    # The reports' runs: 20k and 100k iterations of each loss, everything else equal.
    "minimax-20k": Config(loss="minimax"),
    "minimax-100k": Config(loss="minimax", iterations=100000, sample_every=5000),
    "non_saturating-20k": Config(loss="non_saturating"),
    "non_saturating-100k": Config(loss="non_saturating", iterations=100000, sample_every=5000),
    # The reports' own set-up (the course's vanilla GAN, minimax loss, [0, 1], uniform z), the
    # run that measures report 001's mode collapse; see the module docstring. 20k steps, as the
    # reports' shorter runs (about 5 CPU minutes; 100k would take about 20).
    "report-setup": Config(loss="minimax", inputs="unit", latent="uniform", mlp_units=(128,),
                           mlp_activation="relu", discriminator_dropout=0.0,
                           learning_rate=1e-3, beta_1=0.9, batch_size=128, iterations=20000),
    # Report 000's "add labels": the logistic-loss run with the digit label in G and D.
    "conditional": Config(loss="non_saturating", conditional=True),
    "quick": Config(iterations=900, sample_every=300, train_examples=10000, score_samples=500,
                    classifier_epochs=2, classifier_examples=8000),
}
DEFAULT_PRESET = "non_saturating-20k"

_LOSS_RANGE_NOTE = ("generator_loss_range: max - min of the G loss curve (window means) after "
                    "the first 10% of steps; the report showed the curves as plots")
SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 000-ex5-minimax-20k | minimax-20k | generator_loss_range | qualitative | loss plot | original (Goodfellow) loss curves for 20k iterations |  |
| 000-ex5-logistic-20k | non_saturating-20k | generator_loss_range | qualitative | loss plot | logistic (non-saturating) loss curves for 20k iterations |  |
| 000-ex5-minimax-100k | minimax-100k | generator_loss_range | qualitative | loss plot | original (Goodfellow) loss curves for 100k iterations |  |
| 000-ex5-logistic-100k | non_saturating-100k | generator_loss_range | qualitative | loss plot | logistic (non-saturating) loss curves for 100k iterations |  |
| 000-ex5-swings | minimax-20k | generator_loss_range | qualitative | higher highs and lower lows | the original loss has higher highs and lower lows than the logistic loss | direction=higher, versus=gan/non_saturating-20k:generator_loss_range |
| 000-ex5-labels | conditional | no_mode_collapse | qualitative | add labels | "add labels" improves the results (a conditional GAN) |  |
| 001-ex5-collapse | report-setup | mode_collapse | qualitative | only produces 1s | after a while the Goodfellow loss only produces 1s (mode collapse) |  |
| 001-ex5-affinity | report-setup | favours_1s_and_9s | qualitative | particularly 1s and 9s | the Goodfellow loss has an affinity for certain digits (1s and 9s) |  |
""", notes={
    **dict.fromkeys(('000-ex5-minimax-20k', '000-ex5-logistic-20k', '000-ex5-minimax-100k', '000-ex5-logistic-100k', '000-ex5-swings'), _LOSS_RANGE_NOTE),
    '000-ex5-labels':
        'no_mode_collapse: the final largest class share is <= 0.2',
    '001-ex5-collapse':
        'mode_collapse: the final largest class share is >= 0.5; the digit it collapsed '
        'onto is largest_class',
    '001-ex5-affinity':
        'favours_1s_and_9s: generated 1s and 9s are >= 1.5x their share among real test '
        "digits (1 is MNIST's most frequent digit); largest_class names the top digit",
})
# Estimated minutes on the 2-core CPU with full MNIST and the scoring classifier cached
# (training it first adds about 3). From 600-step runs at load ~7 (other jobs running): the
# (256, 512) MLP, plain or conditional, 62 steps/s; report-setup's 128-unit nets 105 steps/s;
# about 1.5 s of scoring per interval and 30 s of start-up, tracing and export; rounded up.
PRESET_MINUTES = {
    "minimax-20k": 10, "non_saturating-20k": 10, "conditional": 10,
    "minimax-100k": 35, "non_saturating-100k": 35, "report-setup": 5,
}


# --------------------------------------------------------------------------------------------
# Monitoring: sample grids and scores after every interval


class GanMonitor:
    """After every interval: the fixed-noise sample grid (PNG, TensorBoard) and the classifier
    scores, added to the epoch logs (so history.csv and TensorBoard have them) and kept in
    scores.json; the grids are kept in samples.npz for the contact sheet. Both files are
    reloaded when a run resumes.

    A plain object, so that this module imports without Keras; `callback()` is what `fit` takes.
    """

    def __init__(self, run: runs.Run, config: Config, scorer: scoring.SampleScorer, generator,
                 start_step: int = 0):
        self.run, self.config, self.scorer, self.generator = run, config, scorer, generator
        self.spec = config.model_spec()
        self.grid_inputs = models.gan.fixed_inputs(self.spec, GRID_ROWS * GRID_COLUMNS, salt=1)
        self.score_inputs = models.gan.fixed_inputs(self.spec, config.score_samples, salt=2)
        self.scores_path = run.workdir / "scores.json"
        self.frames_path = run.workdir / "samples.npz"
        self.writer = tf.summary.create_file_writer(str(run.tb_dir / "samples"))
        self.scores: list[dict] = []
        self.frames: dict[int, np.ndarray] = {}
        if start_step:  # resuming: keep what was recorded up to the backup, drop the rest
            self.scores = scoring.load_scores(self.scores_path, until_step=start_step)
            self.frames = models.gan.load_frames(self.frames_path, until_step=start_step)

    def callback(self):
        """The Keras callback that runs `on_epoch_end` (before the loggers, which then record
        the scores it adds to the logs)."""
        return keras.callbacks.LambdaCallback(on_epoch_end=self.on_epoch_end)

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.config.sample_every
        grid = models.gan.generate(self.generator, self.grid_inputs, self.spec)
        tiled = visualization.tile_images(grid, columns=GRID_COLUMNS)
        visualization.save_image(tiled, self.run.plot_path(f"samples_step{step:06d}"))
        with self.writer.as_default():
            tf.summary.image("fixed_noise_samples", tiled[None, :, :, None], step=step)
        self.frames[step] = (grid * 255).round().astype(np.uint8)
        models.gan.save_frames(self.frames_path, self.frames)

        score = self.scorer.score(
            models.gan.generate(self.generator, self.score_inputs, self.spec),
            labels=self.score_inputs[1] if self.config.conditional else None)
        del score["predicted"]  # per image: not kept in scores.json
        score["step"] = step
        self.scores.append(score)
        self.run.write_json("scores.json", self.scores)
        with self.writer.as_default():
            for key in scoring.SUMMARY_KEYS:
                tf.summary.scalar(key, score[key], step=step)
        self.writer.flush()
        if logs is not None:
            logs.update({key: score[key] for key in scoring.SUMMARY_KEYS})
        print(f"step {step}: largest class share {score['largest_class_share']:.3f}, class "
              f"entropy {score['class_entropy']:.2f} bits, classifier FID "
              f"{score['classifier_fid']:.2f}", flush=True)


# --------------------------------------------------------------------------------------------
# The run


def run(config: Config, workdir: str, callbacks=(), *, resume: bool = False) -> dict:
    """Trains the GAN into a new run folder; returns the metrics (metrics.json).

    Args:
        config: The validated config.
        workdir: The run folder (must not exist or be empty, unless `resume`).
        callbacks: Extra Keras callbacks (the tests use one to interrupt a run).
        resume: Continue the interrupted run in `workdir` from its last backup.
    """
    start_step = training.backed_up_epochs(workdir) * config.sample_every if resume else 0
    if resume and not start_step:
        runs.check_resumable(workdir, NAME)
        raise ConfigError(f"run {str(workdir)!r} has no checkpoint to resume from")
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"batch_size={config.batch_size} does not split evenly over "
                          f"{strategy.num_replicas_in_sync} replicas")
    datasets, source = run.load_data("mnist")
    # An endless stream of shuffled batches: fit's "epochs" are monitoring intervals.
    train = data.image_pipeline(
        data.first(datasets["train"], config.train_examples), batch_size=config.batch_size,
        training=True, seed=config.seed, normalize=config.inputs,  # "symmetric" or "unit"
        drop_remainder=True).repeat()
    scorer, floor, classifier_info = _scorer(config, datasets, source)

    with strategy.scope():
        gan_spec = config.model_spec()
        gan = models.build_gan(gan_spec, steps_per_execution=config.steps_per_execution)
    gan.generator.summary(print_fn=lambda line, **_: print(line))
    gan.discriminator.summary(print_fn=lambda line, **_: print(line))
    if resume:
        print(f"{NAME}: resuming {run.workdir} at step {start_step} of {config.iterations}",
              flush=True)

    monitor = GanMonitor(run, config, scorer, gan.generator, start_step=start_step)
    window = max(config.steps_per_execution, config.sample_every // 20)
    window -= window % config.steps_per_execution
    losses = shared_callbacks.LossRecorder(run.workdir / "losses.csv", models.GAN.METRIC_NAMES,
                                           window, start_step)
    # The discriminator's conv activations (dcgan) on real digits, in TensorBoard.
    probe = data.probe_batch(datasets["train"], with_labels=True, normalize=config.inputs)
    history = training.fit(run, gan, train, epochs=config.iterations // config.sample_every,
                           steps_per_epoch=config.sample_every,
                           callbacks=[monitor.callback(), losses, *callbacks],
                           state=[gan.rng.state], loss_keys=("d_loss", "g_loss"),
                           probe=list(probe) if config.conditional else probe[0])

    final = monitor.scores[-1]
    affinity = final["class_histogram"][1] + final["class_histogram"][9]
    real_affinity = floor["class_histogram"][1] + floor["class_histogram"][9]
    # Training time alone: `epoch_time_s` leaves out the monitoring and the backups.
    train_seconds = sum(history.history["epoch_time_s"][start_step // config.sample_every:])
    metrics = {
        **scoring.mode_collapse(final, collapse_share=MODE_COLLAPSE_SHARE,
                                spread_share=SPREAD_SHARE),
        "share_of_1s_and_9s": round(affinity, 4),
        "favours_1s_and_9s": affinity >= AFFINITY_RATIO * real_affinity,
        "class_entropy": final["class_entropy"],
        "classifier_fid": final["classifier_fid"],
        "class_histogram": final["class_histogram"],
        "floor": floor,
        "over_training": {key: [entry[key] for entry in monitor.scores] for key in
                          ("step", "largest_class", *scoring.SUMMARY_KEYS)},
        **scoring.curve_ranges(run.workdir / "losses.csv", LOSS_RANGES,
                               after_step=LOSS_RANGE_SKIP * config.iterations),
        **{key: float(history.history[key][-1]) for key in models.GAN.METRIC_NAMES},
        "loss": config.loss,
        "iterations": gan.steps,
        "resumed_from_step": start_step if resume else None,
        "train_steps_per_second": round((config.iterations - start_step)
                                        / max(train_seconds, 1e-9), 2),
        "classifier": {key: classifier_info[key] for key in ("path", "reused", "test_accuracy")},
        "generator_parameters": int(gan.generator.count_params()),
        "discriminator_parameters": int(gan.discriminator.count_params()),
        "replicas": strategy.num_replicas_in_sync,
    }
    if config.conditional:
        metrics["label_agreement"] = final["label_agreement"]

    _plots(run, config, monitor, source, floor)
    metrics["export"] = str(export.export_model(models.gan.unit_sampler(gan.generator, gan_spec),
                                                config.export_dir, NAME, run.run_id))
    print(f"{NAME} ({config.loss}): largest class share {metrics['largest_class_share']:.3f}, "
          f"class entropy {metrics['class_entropy']:.2f} bits, classifier FID "
          f"{metrics['classifier_fid']:.2f} (real test digits: {floor['classifier_fid']:.2f}); "
          f"largest class {metrics['largest_class']}, generator loss range "
          f"{metrics['generator_loss_range']:.3f} on {source.describe()}")
    return run.finish(metrics)


def resume(workdir: str, callbacks=()) -> dict:
    """Continues a GAN run folder from its last backup, with the config it was started with.

    Raises:
        ConfigError: The folder is not a GAN run, has finished already, or has no backup.
    """
    config = runs.resumable_config(workdir, NAME, Config)
    return run(config, workdir, callbacks, resume=True)


def _scorer(config: Config, datasets: dict, source) -> tuple[scoring.SampleScorer, dict, dict]:
    """The scorer of generated digits, the floor and the classifier's info.

    The test split is cut in two: its first digits (as many as the scored samples, at most
    half of it) are the floor, scored like generated digits; the rest are the reference of the
    Frechet distance. No training digit is scored, and the two parts are disjoint.
    """
    classifier, classifier_info = training.mnist_classifier(
        datasets, source, config.export_dir, epochs=config.classifier_epochs,
        train_examples=config.classifier_examples, seed=config.seed)
    real_test, _ = data.to_numpy(datasets["test"].take(10000))
    scorer, floor = scoring.split_floor(classifier, real_test.astype(np.float32) / 255.0,
                                        config.score_samples, NUM_CLASSES, split="test")
    return scorer, floor, classifier_info


def _plots(run: runs.Run, config: Config, monitor: GanMonitor, source, real: dict) -> None:
    """Loss curves, scores over training (`real`: the floor), the final class histogram,
    the contact sheet and the final sample grid."""
    label = f"{NAME}, {config.loss} loss, {config.architecture} ({source.kind} data)"
    series = scoring.read_curves(run.workdir / "losses.csv", models.GAN.METRIC_NAMES)
    if series["d_loss"][0]:  # no rows before the first loss window
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
                    "classifier FID": {"real test digits (floor)": real["classifier_fid"]}},
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
