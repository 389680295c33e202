"""Trained models kept across runs: `cached_model` trains a recipe once and reuses it, and
`mnist_classifier` is the MNIST CNN that two labs use as an instrument (the GAN lab scores its
samples with it, the adversarial lab attacks it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keras
import tensorflow as tf

from keras_labs import KerasLabsError, multiworker, training
from keras_labs.data import loading
from keras_labs.files import staged_folder
from keras_labs.models import cnn
from keras_labs.optimization import learning_rate_schedule
from keras_labs.run_folders import plain_name


def cached_model(export_root: str | os.PathLike, name: str, recipe: dict, train, *,
                 strategy: tf.distribute.Strategy | None = None) -> tuple[keras.Model, dict]:
    """A trained model built once per recipe and reused by later runs.

    It is kept in `<export_root>/_models/<name>-<digest of recipe>/` (`model.keras` and
    `info.json`), written to a staging folder renamed into place, so a half-written model is
    never picked up and two runs racing to train the same recipe keep the first one's files.
    Under `--strategy multiworker` it is trained in every run and not kept (`path` None).

    Args:
        export_root: The root of exports (`config.export_dir`).
        name: A plain name for the kind of model (the folder's prefix).
        recipe: Everything that shapes the trained model (JSON types); its digest is the key.
        train: `train()` -> (the trained model, a dict of facts about it for `info.json`),
            called only when no model of this recipe is kept yet.
        strategy: Load a kept model in this strategy's scope.

    Returns:
        (the model, its facts plus `recipe`, `path` and `reused`).

    Raises:
        KerasLabsError: The model cannot be kept under `export_root`.
    """
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(export_root).expanduser() / "_models" / f"{plain_name(name, 'model name')}-{digest}"
    path = folder / "model.keras"
    if multiworker.started():
        # Every worker must train it alike (its steps are collective); a kept copy would exist
        # on the chief only, so under several workers it is trained afresh and not kept.
        model, info = train()
        return model, {**info, "recipe": recipe, "path": None, "reused": False}
    if path.is_file():
        with (strategy or tf.distribute.get_strategy()).scope():
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        info = json.loads((folder / "info.json").read_text())
        print(f"{name}: reusing {path}", flush=True)
        return model, {**info, "path": str(path), "reused": True}
    model, info = train()
    info = {**info, "recipe": recipe}
    try:
        with staged_folder(folder) as staging:
            model.save(staging / "model.keras")
            (staging / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    except FileExistsError:
        pass  # a concurrent run kept the same recipe first
    except OSError as error:
        raise KerasLabsError(f"cannot keep the trained model under {str(folder.parent)!r}: "
                             f"{error.strerror}") from None
    print(f"{name}: kept in {path}", flush=True)
    return model, {**info, "path": str(path), "reused": False}


def mnist_classifier(datasets: dict[str, tf.data.Dataset], source, export_root, *,
                     epochs: int = 2, train_examples: int = 0, seed: int = 0,
                     batch_size: int = 128, strategy: tf.distribute.Strategy | None = None
                     ) -> tuple[keras.Model, dict]:
    """A trained MNIST CNN (`models.mnist_cnn`) used as an instrument by other labs: the GAN
    lab scores its samples with it, the adversarial lab attacks it.

    It is trained on the lab's own data (`datasets["train"]`, the first `train_examples` when
    > 0), evaluated on `datasets["test"]`, and kept by `cached_model` for later runs with the
    same data and settings. The global seeds are reset to `seed` afterwards, so what the lab
    does next is the same whether the classifier was trained or reused.

    Args:
        datasets: {"train": ..., "test": ...} (uint8 image, label) datasets from `data.load`.
        source: Their `data.DataSource` (its kind and sizes are part of the recipe).
        export_root: The root of exports (`config.export_dir`).
        epochs: Passes over the training examples.
        train_examples: Train on the first N examples only (0: all).
        seed: Seed of the initialization and the shuffle.
        batch_size: Examples per step.
        strategy: Build (or load) and train the model in this strategy's scope.

    Returns:
        (the model, taking [0, 1] images of shape (28, 28, 1) and returning class
        probabilities, with a penultimate layer named "features"; a dict with `path`, `reused`,
        `test_accuracy`, `epochs`, `train_examples`).
    """
    strategy = strategy or tf.distribute.get_strategy()
    recipe = {"architecture": "models.mnist_cnn", "data": source.kind, "partial": source.partial,
              "splits": source.splits, "train_examples": train_examples, "epochs": epochs,
              "seed": seed, "batch_size": batch_size}

    def train():
        keras.utils.set_random_seed(seed)
        train = loading.image_pipeline(loading.first(datasets["train"], train_examples),
                                    batch_size=batch_size, training=True, seed=seed)
        test = loading.image_pipeline(datasets["test"], batch_size=512, training=False)
        steps = max(int(train.cardinality()), 1) * epochs
        with strategy.scope():
            model = cnn.mnist_cnn(name="mnist_classifier")
            model.compile(optimizer=keras.optimizers.Adam(
                learning_rate_schedule(2e-3, steps, "cosine")),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        print(f"classifier: training models.mnist_cnn for {epochs} epoch(s) on "
              f"{train_examples or 'all'} {source.kind} training examples", flush=True)
        model.fit(train, epochs=epochs, shuffle=False, verbose=training.verbosity())
        labels, predictions, _ = training.predict_labels(model, test)
        accuracy = float((labels == predictions).mean())
        print(f"classifier: test accuracy {accuracy:.4f}", flush=True)
        return model, {"test_accuracy": accuracy, "epochs": epochs,
                       "train_examples": train_examples, "seed": seed}

    model, info = cached_model(export_root, "mnist_classifier", recipe, train, strategy=strategy)
    keras.utils.set_random_seed(seed)
    return model, info
