"""The mnist-cnn experiment: train, evaluate and export the MNIST CNN."""

from __future__ import annotations

import keras

from keras_labs import export, optimization, training, visualization
from keras_labs.data import loading
from keras_labs.labs.mnist_cnn.config import NAME, Config
from keras_labs.models import cnn


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains, evaluates and exports the MNIST CNN; returns the metrics written to metrics.json."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    # The validation part comes out of the (first `train_examples`) training examples; the test
    # split is only read once training is over.
    train_part, validation_part, split = run.held_out(datasets["train"])
    train, test = loading.train_and_test({"train": train_part, "test": datasets["test"]},
                                         batch_size=config.batch_size, seed=config.seed)
    validation = loading.evaluation_pipeline(validation_part, split,
                                             replicas=strategy.num_replicas_in_sync)

    steps = max(int(train.cardinality()), 1) * config.epochs
    with strategy.scope():
        model = build_model(config, steps)
    model.summary(print_fn=lambda line, **_: print(line))

    probe = loading.probe_batch(train_part if validation_part is None else validation_part)
    history = training.fit(run, model, train, epochs=config.epochs, validation_data=validation,
                           probe=probe)

    # The test split, scored once now that training is done.
    metrics = training.classifier_scores(model, test, history, split)
    metrics["epoch_time_s"] = [round(t, 2) for t in history.history["epoch_time_s"]]
    metrics["parameters"] = int(model.count_params())

    names = loading.class_names("mnist")
    visualization.plot_classifier(run, metrics, names, title=f"{NAME} ({source.kind} data)")

    metrics["export"] = str(export.export_model(model, run, normalize="unit"))
    print(f"{NAME}: test accuracy {metrics['test_accuracy']:.4f} on {source.describe()}")
    return run.finish(metrics)


def build_model(config: Config, steps: int) -> keras.Model:
    """The CNN of `config`, compiled with Adam on a cosine decay to 0 over `steps` steps (call
    it in the strategy's scope)."""
    model = cnn.mnist_cnn(filters=config.filters, convs_per_stage=config.convs_per_stage,
                          dense_units=config.dense_units, dropout=config.dropout,
                          batch_norm=config.batch_norm)
    schedule = optimization.learning_rate_schedule(config.learning_rate, steps, "cosine")
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=config.steps_per_execution)
    return model
