"""The autoencoder experiment: train on loss = reconstruction + w * classification, score,
draw the grids, sweep w and export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_labs import export, runs, seeds, training, visualization
from keras_labs.data import loading
from keras_labs.labs.autoencoder.config import NAME, Config
from keras_labs.labs.autoencoder.model import Autoencoder, build_autoencoder

# The seed reports' figures, drawn as references on the sweep's plot.
SEEDS = seeds.read(Path(__file__).parent / seeds.SEEDS_FILE, lab=NAME)


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the autoencoder (and the w sweep), evaluates and draws the grids, exports it."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data(config.dataset)
    train_split, validation_split, split = run.held_out(datasets["train"])
    # The report's gradient steps on a smaller training set (equal_updates_examples).
    epochs_run = training.equal_update_epochs(config.epochs, config.equal_updates_examples,
                                              split["train_examples"])
    config = dataclasses.replace(config, epochs=epochs_run)

    def make_train():
        # A pipeline per model: every w sees the same shuffled epochs, and a resumed run gives
        # a model exactly the batches it would have had uninterrupted.
        return _with_targets(loading.image_pipeline(train_split, batch_size=config.batch_size,
                                                    training=True, seed=config.seed))

    validation = loading.evaluation_pipeline(validation_split, split, batch_size=256,
                                             replicas=strategy.num_replicas_in_sync)
    validation = None if validation is None else _with_targets(validation)
    test = _with_targets(loading.image_pipeline(datasets["test"], batch_size=256, training=False))
    input_shape = tuple(test.element_spec[0].shape[1:])

    probe = loading.probe_batch(train_split if validation_split is None else validation_split)
    parts, history = _train(config, config.w, strategy, input_shape, make_train, validation, run,
                            probe=probe)
    # The test split, scored once now that training is done.
    metrics = evaluate(parts.model, test, config.w)
    metrics.update(_training_record(config, parts, history.history, split, epochs_run))

    metrics["figures_written"] = _draw_grids(parts, test, train_split, datasets["test"], config,
                                             run)
    visualization.plot_run_history(run, title=f"{NAME} (w={config.w:g}, "
                                  f"{source.kind} data)")

    if config.w_sweep:
        metrics["w_sweep"] = _sweep(config, strategy, input_shape, make_train, validation, test,
                                    run, done={config.w: metrics}, probe=probe)

    metrics["export"] = str(export.export_model(parts.model, run, normalize="unit"))
    print(f"{NAME}: w={config.w:g}: test accuracy {metrics['test_accuracy']:.4f}, PSNR "
          f"{metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} on {source.describe()}")
    return run.finish(metrics)


def _training_record(config: Config, parts: Autoencoder, history: dict[str, list[float]],
                     split: dict, epochs_run: int) -> dict:
    """How the model trained: its w, the per-epoch losses, the last epoch's train and
    validation scores, the split, the epochs run, the time per epoch and the parameters."""
    record = {"w": config.w, "epochs": loss_table(history),
              "train_accuracy": float(history["class_accuracy"][-1])}
    record.update(validation_scores(history))
    record["validation_split"] = split
    record["epochs_run"] = epochs_run
    record["equal_updates_examples"] = config.equal_updates_examples
    record["epoch_time_s"] = [round(t, 2) for t in history["epoch_time_s"]]
    record["parameters"] = int(parts.model.count_params())
    return record


def _draw_grids(parts: Autoencoder, test: tf.data.Dataset, train_split: tf.data.Dataset,
                test_split: tf.data.Dataset, config: Config, run: runs.Run) -> dict[str, bool]:
    """Grids: originals over reconstructions of the first `test` images, then report 004's
    task 3 on the first image of `train_split` and of `test_split` (uint8 pairs); returns
    {grid name: written}."""
    images = next(iter(test.unbatch().batch(config.grid_images)))[0].numpy()
    reconstructions = np.clip(parts.decode_z2(parts.encoder(images)["z2"]).numpy(), 0, 1)
    visualization.image_table(
        [images, reconstructions], run.plot_path("reconstructions"),
        row_titles=["original", "reconstruction"],
        title=f"Autoencoder (w={config.w:g}): test images and reconstructions")
    examples = {"train": next(iter(train_split.take(1)))[0], "test": next(iter(test_split))[0]}
    examples = {name: tf.cast(image, tf.float32).numpy() / 255.0
                for name, image in examples.items()}
    return _channel_grids(parts, examples, config.group_size, run)


def _with_targets(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(image, label) batches -> (image, {"class": label, "reconstruction": image})."""
    return dataset.map(lambda image, label: (image, {"class": label, "reconstruction": image}),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _train(config: Config, w: float, strategy, input_shape, make_train, validation,
           run: runs.Run, *, history_path=None, log_dir=None, probe=None
           ) -> tuple[Autoencoder, keras.callbacks.History]:
    """Trains one autoencoder with loss weight `w`, its curves on `validation` (or none); logs
    to the run's history.csv and tb/ unless `history_path` and `log_dir` say otherwise (the
    sweep's extra models); `probe`: the fixed images of the TensorBoard probes
    (`training.fit`)."""
    # Every w starts from the same initial weights, so the sweep compares the loss alone.
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        parts = build_autoencoder(input_shape, channels=config.channels,
                                  kernel_size=config.kernel_size,
                                  head_units=config.head_units)
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


def channel_reconstructions(parts: Autoencoder, image: np.ndarray, group_size: int = 3
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


def _channel_grids(parts: Autoencoder, examples: dict[str, np.ndarray], group_size: int,
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
            rows, run.plot_path(f"{code}_channels"),
            row_titles=[f"{name} image" for name in examples],
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
                    for item in SEEDS.items if not item.qualitative and item.unit == "%"})
    return results
