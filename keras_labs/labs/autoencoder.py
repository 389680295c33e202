"""Lab `autoencoder`: a convolutional autoencoder with a classification head on its code.

Seed report 004, tasks 2-3, and report 003, question 2. The encoder has two conv stages (6 then
16 channels, each a 5x5 convolution, a ReLU and a 2x2 max pool: the codes z1 and z2 of report
004); a classifier (the report's 120-84-10 dense head) reads z2, and a decoder of two
transposed convolutions rebuilds the image from z2. The model outputs (y, x_hat) and trains on

    loss = reconstruction (mean squared error) + w * classification (cross-entropy)

with `w` a config field (report 003 used 0.1). The run leaves the per-epoch reconstruction,
classification and total losses (train, and validation on a seeded `validation_fraction` of the
training split) in history.csv and metrics.json, test accuracy, scored once after training
(report 004: 56.15%; report 003 set its autoencoder against a plain CNN's 82%), image quality as
PSNR and SSIM (instead of report 003's "reconstruction accuracy"), and the grids:
originals over reconstructions, and report 004's task 3, the reconstructions of a training and a
test image from a single channel of z1 (the other 5 zeroed) and from groups of 3 channels of z2
(the others zeroed). With `w_sweep` (preset `w-sweep`) it also trains one model per `w` and plots
test accuracy against PSNR: how much image quality the classification term costs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_labs import ConfigError, data, models, runs
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
keras, tf = lazy_import("keras", "tensorflow")
export, training, visualization = lazy_import(
    "keras_labs.export", "keras_labs.training", "keras_labs.visualization")

NAME = "autoencoder"
DESCRIPTION = ("conv autoencoder + classifier, loss = recon + w * class (reports 003 q2, 004 "
               "tasks 2-3): PSNR/SSIM, z1/z2 channel grids, w sweep")


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    dataset: str = option("cifar10", choices=("cifar10", "mnist"))
    epochs: int = common.epochs(10, "passes over the training data (report 003: 10)")
    batch_size: int = common.batch_size(32)
    learning_rate: float = common.learning_rate(1e-3)
    w: float = option(0.1, minimum=0.0, help="weight of the classification loss (report 003: 0.1)")
    w_sweep: tuple[float, ...] = option((), minimum=0.0,
                                        help="also train one model per w and plot accuracy vs PSNR")
    channels: tuple[int, ...] = option((6, 16), positive=True,
                                       help="channels of z1 and z2 (report 004: 6, 16)")
    kernel_size: int = option(5, minimum=1, maximum=11)
    head_units: tuple[int, ...] = option((120, 84), positive=True, help="dense layers of the classifier")
    group_size: int = option(3, minimum=1, help="z2 channels kept together in the channel grid")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    equal_updates_examples: int = option(
        0, minimum=0, help="train for the gradient steps of `epochs` epochs over this many images "
                           "(a report's training set) when ours is smaller (0: off)")
    grid_images: int = option(8, minimum=1, maximum=32, help="test images in the reconstruction grid")

    def check(self) -> None:
        if len(self.channels) != 2:
            raise ConfigError(f"channels={self.channels!r} is not valid; the lab's encoder has "
                              "exactly two stages (z1, z2)")
        if self.group_size > self.channels[1]:
            raise ConfigError(f"group_size={self.group_size!r} is not valid; z2 has "
                              f"{self.channels[1]} channels")


PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=2, train_examples=2000),
    "w-sweep": Config(w_sweep=(0.0, 0.1, 1.0, 10.0)),
    # report 004 trained on CIFAR-10's 50,000 images; ours is the partial copy
    "seed-equal-updates": Config(equal_updates_examples=50000),
}
DEFAULT_PRESET = "seed"

SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 004-t2-accuracy | seed | test_accuracy | 0.5615 | 56.15% | test accuracy of the autoencoder's classification head | equal_updates=seed-equal-updates |
| 003-q2-losses | seed | epochs | qualitative | a table of the three losses, epochs 1-10 | reconstruction, classification and total loss per epoch (w=0.1, 10 epochs) | unit=% |
| 003-q2-cnn-vs-autoencoder | seed | test_accuracy | qualitative | the CNN (82%) is more accurate than the autoencoder (15.74%) | the CNN is more accurate than the autoencoder | direction=lower, unit=%, versus=cifar-cnn/minor-10ep:test_accuracy |
| 004-t3-z1 | seed | figures_written.z1_channels | qualitative | 6 single-channel reconstructions per image | a training and a test image decoded from single channels of z1 (the other 5 zeroed) | unit=% |
| 004-t3-z2 | seed | figures_written.z2_channels | qualitative | reconstructions from 3 channels of z2 | the same images decoded from groups of 3 channels of z2 (the other 13 zeroed) | unit=% |
""", notes={
    '004-t2-accuracy':
        "report 004 did not state its weight w; the seed preset uses report 003's w=0.1",
    '003-q2-losses':
        "metrics.json 'epochs': one row per epoch, train and validation",
    '003-q2-cnn-vs-autoencoder':
        "report 003's 15.74% is a 'reconstruction accuracy', which we replace by "
        'PSNR/SSIM; the claim is compared on classification accuracy',
})
# Estimated minutes on the 2-core CPU with the partial CIFAR-10: 10 epochs per model of ~20 s
# (measured at load 6), four models in the sweep.
PRESET_MINUTES = {"seed": 4, "w-sweep": 12, "seed-equal-updates": 8}


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the autoencoder (and the w sweep), evaluates and draws the grids, exports it."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data(config.dataset)
    train_split, validation_split, split = data.split_validation(
        data.first(datasets["train"], config.train_examples), config.validation_fraction,
        seed=config.seed)
    # The report's gradient steps on a smaller training set (equal_updates_examples).
    epochs_run = training.equal_update_epochs(config.epochs, config.equal_updates_examples,
                                              split["train_examples"])
    config = dataclasses.replace(config, epochs=epochs_run)

    def make_train():
        # A pipeline per model: every w sees the same shuffled epochs, and a resumed run gives
        # a model exactly the batches it would have had uninterrupted.
        return _with_targets(data.image_pipeline(train_split, batch_size=config.batch_size,
                                                 training=True, seed=config.seed))

    validation = data.evaluation_pipeline(validation_split, split, replicas=strategy.num_replicas_in_sync, batch_size=256)
    validation = None if validation is None else _with_targets(validation)
    test = _with_targets(data.image_pipeline(datasets["test"], batch_size=256, training=False))
    input_shape = tuple(test.element_spec[0].shape[1:])

    probe = data.probe_batch(train_split if validation_split is None else validation_split)
    parts, history = _train(config, config.w, strategy, input_shape, make_train, validation, run,
                            probe=probe)
    # The test split, scored once now that training is done.
    metrics = evaluate(parts.model, test, config.w)
    metrics["w"] = config.w
    metrics["epochs"] = loss_table(history.history)
    metrics["train_accuracy"] = float(history.history["class_accuracy"][-1])
    metrics.update(validation_scores(history.history))
    metrics["validation_split"] = split
    metrics["epochs_run"] = epochs_run
    metrics["equal_updates_examples"] = config.equal_updates_examples
    metrics["epoch_time_s"] = [round(t, 2) for t in history.history["epoch_time_s"]]
    metrics["parameters"] = int(parts.model.count_params())

    # Grids: originals over reconstructions, then report 004's task 3 on a training and a test
    # image.
    images = next(iter(test.unbatch().batch(config.grid_images)))[0].numpy()
    reconstructions = np.clip(parts.decode_z2(parts.encoder(images)["z2"]).numpy(), 0, 1)
    visualization.image_table([images, reconstructions], run.plot_path("reconstructions"),
                              row_titles=["original", "reconstruction"],
                              title=f"Autoencoder (w={config.w:g}): test images and reconstructions")
    examples = {"train": next(iter(train_split.take(1)))[0], "test": next(iter(datasets["test"]))[0]}
    examples = {name: tf.cast(image, tf.float32).numpy() / 255.0 for name, image in examples.items()}
    metrics["figures_written"] = _channel_grids(parts, examples, config.group_size, run)
    visualization.plot_run_history(run, title=f"{NAME} (w={config.w:g}, "
                                  f"{source.kind} data)")

    if config.w_sweep:
        metrics["w_sweep"] = _sweep(config, strategy, input_shape, make_train, validation, test,
                                    run, done={config.w: metrics}, probe=probe)

    metrics["export"] = str(export.export_model(parts.model, config.export_dir, NAME, run.run_id))
    print(f"{NAME}: w={config.w:g}: test accuracy {metrics['test_accuracy']:.4f}, PSNR "
          f"{metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} on {source.describe()}")
    return run.finish(metrics)


def _with_targets(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(image, label) batches -> (image, {"class": label, "reconstruction": image})."""
    return dataset.map(lambda image, label: (image, {"class": label, "reconstruction": image}),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _train(config: Config, w: float, strategy, input_shape, make_train, validation,
           run: runs.Run, *, history_path=None, log_dir=None, probe=None
           ) -> tuple[models.Autoencoder, keras.callbacks.History]:
    """Trains one autoencoder with loss weight `w`, its curves on `validation` (or none); logs
    to the run's history.csv and tb/ unless `history_path` and `log_dir` say otherwise (the
    sweep's extra models); `probe`: the fixed images of the TensorBoard probes
    (`training.fit`)."""
    # Every w starts from the same initial weights, so the sweep compares the loss alone.
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        parts = models.build_autoencoder(input_shape, channels=config.channels,
                                  kernel_size=config.kernel_size, head_units=config.head_units)
        parts.model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss={"class": keras.losses.SparseCategoricalCrossentropy(),
                  "reconstruction": keras.losses.MeanSquaredError()},
            loss_weights={"class": w, "reconstruction": 1.0},
            metrics={"class": ["accuracy"]})
    print(f"training the autoencoder with w={w:g}", flush=True)
    # One fit name per w: a resumed sweep restores the finished models without training them.
    history = training.fit(run, parts.model, make_train(), epochs=config.epochs,
                           validation_data=validation, name=f"w{w:g}",
                           histogram_freq=0 if log_dir else 1, history_path=history_path,
                           log_dir=log_dir, probe=probe)
    return parts, history


def evaluate(model: keras.Model, test: tf.data.Dataset, w: float) -> dict:
    """Test accuracy (and per-class, confusion), the losses as training computes them (total:
    reconstruction + `w` * classification), and mean PSNR and SSIM of the reconstructions
    clipped to [0, 1] (max value 1), in one pass over `test`."""
    labels, predictions, psnr, ssim, squared_errors, cross_entropies = [], [], [], [], [], []
    for images, targets in test:
        outputs = model(images, training=False)
        reconstructions = tf.clip_by_value(outputs["reconstruction"], 0.0, 1.0)
        labels.append(targets["class"].numpy())
        predictions.append(np.argmax(outputs["class"], axis=-1))
        psnr.append(tf.image.psnr(images, reconstructions, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(images, reconstructions, max_val=1.0).numpy())
        squared_errors.append(keras.losses.mean_squared_error(
            images, outputs["reconstruction"]).numpy().ravel())
        cross_entropies.append(keras.losses.sparse_categorical_crossentropy(
            targets["class"], outputs["class"]).numpy())
    metrics = training.classification_metrics(np.concatenate(labels), np.concatenate(predictions),
                                              num_classes=10)
    reconstruction = float(np.mean(np.concatenate(squared_errors)))
    classification = float(np.mean(np.concatenate(cross_entropies)))
    metrics.update(psnr=float(np.mean(np.concatenate(psnr))),
                   ssim=float(np.mean(np.concatenate(ssim))),
                   test_reconstruction_loss=reconstruction,
                   test_classification_loss=classification,
                   test_total_loss=reconstruction + w * classification)
    return metrics


def validation_scores(history: dict[str, list[float]]) -> dict:
    """The last epoch's validation accuracy and losses (empty without a validation part)."""
    keys = {"validation_accuracy": "val_class_accuracy",
            "validation_reconstruction_loss": "val_reconstruction_loss",
            "validation_classification_loss": "val_class_loss", "validation_total_loss": "val_loss"}
    return {name: float(history[key][-1]) for name, key in keys.items() if key in history}


def loss_table(history: dict[str, list[float]]) -> list[dict]:
    """One row per epoch: reconstruction, classification and total loss, train and validation."""
    columns = {"reconstruction": "reconstruction_loss", "classification": "class_loss",
               "total": "loss", "accuracy": "class_accuracy"}
    rows = []
    for epoch in range(len(history["loss"])):
        row = {"epoch": epoch + 1}
        for prefix in ("", "val_"):
            for name, key in columns.items():
                if prefix + key in history:
                    row[f"{prefix}{name}"] = round(float(history[prefix + key][epoch]), 5)
        rows.append(row)
    return rows


def channel_reconstructions(parts: models.Autoencoder, image: np.ndarray, group_size: int = 3
                            ) -> dict[str, np.ndarray]:
    """Reconstructions of one image from parts of its code (report 004, task 3).

    Returns:
        {"full": (1, H, W, C) from the whole code,
         "z1": (channels of z1, H, W, C), row i decoded from z1 with only channel i kept,
         "z2": (groups, H, W, C), row g decoded from z2 with only channels
               [g * group_size, (g + 1) * group_size) kept (the last group may be smaller)}.
    """
    codes = parts.encoder(np.asarray(image, np.float32)[None], training=False)
    z1, z2 = codes["z1"], codes["z2"]
    z1_channels, z2_channels = z1.shape[-1], z2.shape[-1]
    keep_one = tf.eye(z1_channels)[:, None, None, :]  # (channels, 1, 1, channels)
    starts = range(0, z2_channels, group_size)
    keep_group = tf.constant([[start <= channel < start + group_size
                               for channel in range(z2_channels)] for start in starts],
                             dtype=tf.float32)[:, None, None, :]
    return {"full": parts.decode_z2(z2).numpy(),
            "z1": parts.decode_z1(z1 * keep_one).numpy(),
            "z2": parts.decode_z2(z2 * keep_group).numpy()}


def _stretch(images: np.ndarray) -> np.ndarray:
    """Per-image min-max contrast stretch: one channel's reconstruction is faint otherwise."""
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    return (images - low) / np.maximum(high - low, 1e-6)


def _channel_grids(parts: models.Autoencoder, examples: dict[str, np.ndarray], group_size: int,
                   run) -> dict[str, bool]:
    """Draws report 004's task 3 grids; returns {grid name: written}."""
    reconstructed = {name: channel_reconstructions(parts, image, group_size)
                     for name, image in examples.items()}
    z1_channels, z2_channels = (int(parts.encoder.get_layer(code).output.shape[-1])
                                for code in ("z1", "z2"))
    for code, captions in (
            ("z1", [f"z1[{c}] only" for c in range(z1_channels)]),
            ("z2", [f"z2[{s}:{min(s + group_size, z2_channels)}] only"
                    for s in range(0, z2_channels, group_size)])):
        rows = [np.concatenate([image[None], reconstructed[name]["full"],
                                _stretch(reconstructed[name][code])])
                for name, image in examples.items()]
        visualization.image_table(
            rows, run.plot_path(f"{code}_channels"), row_titles=[f"{name} image" for name in examples],
            column_titles=["original", "whole code", *captions],
            title=f"Reconstructions from parts of {code}, the rest zeroed (contrast-stretched)")
    return {f"{code}_channels": run.plot_path(f"{code}_channels").is_file()
            for code in ("z1", "z2")}


def _sweep(config: Config, strategy, input_shape, make_train, validation, test, run,
           done: dict, probe=None) -> list[dict]:
    """Trains one model per w of `config.w_sweep` (curves on `validation`), scores each once
    on `test`, and plots test accuracy against PSNR (nothing is chosen from the sweep)."""
    results = []
    for w in sorted(set(config.w_sweep)):
        if w in done:
            metrics = done[w]
        else:
            parts, history = _train(config, w, strategy, input_shape, make_train, validation,
                                    run, history_path=run.workdir / f"history_w{w:g}.csv",
                                    log_dir=run.tb_dir / f"w{w:g}", probe=probe)
            metrics = evaluate(parts.model, test, w)
            metrics["epochs"] = loss_table(history.history)
            metrics.update(validation_scores(history.history))
        results.append({"w": w, "validation_accuracy": metrics.get("validation_accuracy"),
                        "test_accuracy": metrics["test_accuracy"], "psnr": metrics["psnr"],
                        "ssim": metrics["ssim"],
                        "test_reconstruction_loss": metrics["test_reconstruction_loss"],
                        "test_classification_loss": metrics["test_classification_loss"]})
        print(f"w={w:g}: test accuracy {metrics['test_accuracy']:.4f}, PSNR "
              f"{metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}", flush=True)
    visualization.plot_tradeoff(
        [(row["psnr"], 100 * row["test_accuracy"]) for row in results],
        [f"w={row['w']:g}" for row in results], run.plot_path("w_tradeoff"),
        x_label="test PSNR (dB)", y_label="test accuracy (%)",
        title=f"Test accuracy vs PSNR, loss = MSE + w * cross-entropy ({config.epochs} epochs)"
              + ("\nw=0: the classifier gets no gradient (chance accuracy)" if 0.0 in config.w_sweep
                 else ""),
        references={f"report {item.report}: {item.seed_text}": 100 * item.seed
                    for item in SEED_ITEMS if not item.qualitative and item.unit == "%"})
    return results
