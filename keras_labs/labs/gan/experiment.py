"""The gan experiment: train the GAN, score its samples after every interval, plot and export."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from keras_labs import ConfigError, cached_models, export, runs, training, visualization
from keras_labs.callbacks import LossRecorder
from keras_labs.data import loading
from keras_labs.labs.gan import scoring
from keras_labs.labs.gan.config import NAME, Config
from keras_labs.models import gan as gan_models
from keras_labs.run_folders import check_resumable, resumable_config

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


def model_spec(config: Config) -> gan_models.GanSpec:
    """The `models.gan.GanSpec` of this config's GAN (MNIST digits, ten labels): every
    other spec field is the config field of the same name."""
    return gan_models.spec_from(config.to_dict(), image_shape=IMAGE_SHAPE,
                                num_classes=NUM_CLASSES)


# --------------------------------------------------------------------------------------------
# Monitoring: sample grids and scores after every interval


class GanMonitor:
    """After every interval: the fixed-noise sample grid (PNG, TensorBoard) and the classifier
    scores, added to the epoch logs (so history.csv and TensorBoard have them) and kept in
    scores.json; the grids are kept in samples.npz for the contact sheet. Both files are
    reloaded when a run resumes.

    `callback()` is what `fit` takes.
    """

    def __init__(self, run: runs.Run, config: Config, scorer: scoring.SampleScorer, generator,
                 start_step: int = 0):
        self.run, self.config, self.scorer, self.generator = run, config, scorer, generator
        self.spec = model_spec(config)
        self.grid_inputs = gan_models.fixed_inputs(self.spec, GRID_ROWS * GRID_COLUMNS, salt=1)
        self.score_inputs = gan_models.fixed_inputs(self.spec, config.score_samples, salt=2)
        self.scores_path = run.workdir / "scores.json"
        self.frames_path = run.workdir / "samples.npz"
        self.writer = tf.summary.create_file_writer(str(run.tb_dir / "samples"))
        self.scores: list[dict] = []
        self.frames: dict[int, np.ndarray] = {}
        if start_step:  # resuming: keep what was recorded up to the backup, drop the rest
            self.scores = scoring.load_scores(self.scores_path, until_step=start_step)
            self.frames = gan_models.load_frames(self.frames_path, until_step=start_step)

    def callback(self):
        """The Keras callback that runs `on_epoch_end` (before the loggers, which then record
        the scores it adds to the logs)."""
        return keras.callbacks.LambdaCallback(on_epoch_end=self.on_epoch_end)

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.config.sample_every
        grid = gan_models.generate(self.generator, self.grid_inputs, self.spec)
        tiled = visualization.tile_images(grid, columns=GRID_COLUMNS)
        visualization.save_image(tiled, self.run.plot_path(f"samples_step{step:06d}"))
        with self.writer.as_default():
            tf.summary.image("fixed_noise_samples", tiled[None, :, :, None], step=step)
        self.frames[step] = (grid * 255).round().astype(np.uint8)
        gan_models.save_frames(self.frames_path, self.frames)

        score = self.scorer.score(
            gan_models.generate(self.generator, self.score_inputs, self.spec),
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
    start_step = _start_step(config, workdir, resume)
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"batch_size={config.batch_size} does not split evenly over "
                          f"{strategy.num_replicas_in_sync} replicas")
    datasets, source = run.load_data("mnist")
    train = _training_stream(config, datasets)
    scorer, floor, classifier_info = _scorer(config, datasets, source)

    with strategy.scope():
        gan_spec = model_spec(config)
        gan = gan_models.build_gan(gan_spec, steps_per_execution=config.steps_per_execution)
    gan.generator.summary(print_fn=lambda line, **_: print(line))
    gan.discriminator.summary(print_fn=lambda line, **_: print(line))
    if resume:
        print(f"{NAME}: resuming {run.workdir} at step {start_step} of {config.iterations}",
              flush=True)

    monitor = GanMonitor(run, config, scorer, gan.generator, start_step=start_step)
    losses = _loss_recorder(run, config, start_step)
    # The discriminator's conv activations (dcgan) on real digits, in TensorBoard.
    probe = loading.probe_batch(datasets["train"], with_labels=True, normalize=config.inputs)
    history = training.fit(run, gan, train, epochs=config.iterations // config.sample_every,
                           steps_per_epoch=config.sample_every,
                           callbacks=[monitor.callback(), losses, *callbacks],
                           state=[gan.rng.state], loss_keys=("d_loss", "g_loss"),
                           probe=list(probe) if config.conditional else probe[0])

    metrics = {
        **_sample_scores(monitor.scores, floor),
        **scoring.curve_ranges(run.workdir / "losses.csv", LOSS_RANGES,
                               after_step=LOSS_RANGE_SKIP * config.iterations),
        **_training_record(config, gan, history, start_step),
        "classifier": {key: classifier_info[key] for key in ("path", "reused", "test_accuracy")},
        "generator_parameters": int(gan.generator.count_params()),
        "discriminator_parameters": int(gan.discriminator.count_params()),
        "replicas": strategy.num_replicas_in_sync,
    }
    if config.conditional:
        metrics["label_agreement"] = monitor.scores[-1]["label_agreement"]

    _plots(run, config, monitor, source, floor)
    sampler = gan_models.unit_sampler(gan.generator, gan_spec)  # noise (and labels) in, no images
    metrics["export"] = str(export.export_model(sampler, run))
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
    config = resumable_config(workdir, NAME, Config)
    return run(config, workdir, callbacks, resume=True)


def _start_step(config: Config, workdir: str, resume: bool) -> int:
    """The step a resumed run continues from (0 for a new run).

    Raises:
        ConfigError: `resume` and the folder is not a GAN run or has no backup to resume from.
    """
    start_step = training.backed_up_epochs(workdir) * config.sample_every if resume else 0
    if resume and not start_step:
        check_resumable(workdir, NAME)
        raise ConfigError(f"run {str(workdir)!r} has no checkpoint to resume from")
    return start_step


def _training_stream(config: Config, datasets: dict) -> tf.data.Dataset:
    """An endless stream of shuffled batches: fit's "epochs" are monitoring intervals."""
    return loading.image_pipeline(
        loading.first(datasets["train"], config.train_examples), batch_size=config.batch_size,
        training=True, seed=config.seed, normalize=config.inputs,  # "symmetric" or "unit"
        drop_remainder=True).repeat()


def _loss_recorder(run: runs.Run, config: Config, start_step: int) -> LossRecorder:
    """Records the D and G losses in losses.csv, averaged over windows of about a twentieth of
    an interval (a whole number of `steps_per_execution`)."""
    window = max(config.steps_per_execution, config.sample_every // 20)
    window -= window % config.steps_per_execution
    return LossRecorder(run.workdir / "losses.csv", gan_models.GAN.METRIC_NAMES, window,
                        start_step)


def _scorer(config: Config, datasets: dict, source) -> tuple[scoring.SampleScorer, dict, dict]:
    """The scorer of generated digits, the floor and the classifier's info.

    The test split is cut in two: its first digits (as many as the scored samples, at most
    half of it) are the floor, scored like generated digits; the rest are the reference of the
    Frechet distance. No training digit is scored, and the two parts are disjoint.
    """
    classifier, classifier_info = cached_models.mnist_classifier(
        datasets, source, config.export_dir, epochs=config.classifier_epochs,
        train_examples=config.classifier_examples, seed=config.seed)
    real_test, _ = loading.to_numpy(datasets["test"].take(10000))
    scorer, floor = scoring.split_floor(classifier, real_test.astype(np.float32) / 255.0,
                                        config.score_samples, NUM_CLASSES, split="test")
    return scorer, floor, classifier_info


def _sample_scores(scores: list[dict], floor: dict) -> dict:
    """The metrics of the generated digits: the final scores with their mode collapse verdicts
    and affinity for 1s and 9s (against the floor's), and the scores over training."""
    final = scores[-1]
    affinity = final["class_histogram"][1] + final["class_histogram"][9]
    real_affinity = floor["class_histogram"][1] + floor["class_histogram"][9]
    return {
        **scoring.mode_collapse(final, collapse_share=MODE_COLLAPSE_SHARE,
                                spread_share=SPREAD_SHARE),
        "share_of_1s_and_9s": round(affinity, 4),
        "favours_1s_and_9s": affinity >= AFFINITY_RATIO * real_affinity,
        "class_entropy": final["class_entropy"],
        "classifier_fid": final["classifier_fid"],
        "class_histogram": final["class_histogram"],
        "floor": floor,
        "over_training": {key: [entry[key] for entry in scores] for key in
                          ("step", "largest_class", *scoring.SUMMARY_KEYS)},
    }


def _training_record(config: Config, gan: gan_models.GAN, history, start_step: int) -> dict:
    """The final losses and D outputs, the steps taken and the training speed (of the steps
    after `start_step`, where a resumed run continued; 0 for a new run)."""
    # Training time alone: `epoch_time_s` leaves out the monitoring and the backups.
    train_seconds = sum(history.history["epoch_time_s"][start_step // config.sample_every:])
    return {
        **{key: float(history.history[key][-1]) for key in gan_models.GAN.METRIC_NAMES},
        "loss": config.loss,
        "iterations": gan.steps,
        "resumed_from_step": start_step or None,  # a resumed run starts after step 0
        "train_steps_per_second": round((config.iterations - start_step)
                                        / max(train_seconds, 1e-9), 2),
    }


def _plots(run: runs.Run, config: Config, monitor: GanMonitor, source, real: dict) -> None:
    """Loss curves, scores over training (`real`: the floor), the final class histogram,
    the contact sheet and the final sample grid."""
    label = f"{NAME}, {config.loss} loss, {config.architecture} ({source.kind} data)"
    series = scoring.read_curves(run.workdir / "losses.csv", gan_models.GAN.METRIC_NAMES)
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
    visualization.plot_bars(monitor.scores[-1]["class_histogram"], loading.class_names("mnist"),
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
