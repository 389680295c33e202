"""The mnist-rnn experiment: the twelve row RNNs and the CNN, their curves, table and claims."""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from pathlib import Path

import keras
import matplotlib.pyplot as plt

from keras_labs import devices, optimization, runs, seeds, training, visualization
from keras_labs.data import loading
from keras_labs.labs.mnist_rnn.config import NAME, Config
from keras_labs.models import cnn, rnn

CELL_TITLES = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
# Report 002's figures, which the table and the claims compare against.
SEEDS = seeds.read(Path(__file__).parent / seeds.SEEDS_FILE, lab=NAME)


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the twelve row RNNs (and the CNN), writes the curves, the table and the metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    train_split, validation_split, split = run.held_out(datasets["train"])

    def make_train():
        # A pipeline per model: each sees the same shuffled epochs, and a resumed run gives a
        # model exactly the batches it would have had uninterrupted.
        return loading.image_pipeline(train_split, batch_size=config.batch_size, training=True,
                                      seed=config.seed)

    validation = loading.evaluation_pipeline(validation_split, split, batch_size=1024,
                                             replicas=strategy.num_replicas_in_sync)
    test = loading.image_pipeline(loading.first(datasets["test"], config.test_examples),
                                  batch_size=1024, training=False)

    probe = loading.probe_batch(train_split if validation_split is None else validation_split)
    results: dict[str, dict[str, dict]] = {}
    for cell in config.cells:
        results[cell] = {}
        for units in config.hidden_sizes:
            model = fresh_model(functools.partial(rnn.build_row_rnn, cell, units,
                                                  unroll=config.unroll), config.seed, strategy)
            label = f"{cell}-{units}"
            print(f"=== {NAME}: {CELL_TITLES[cell]} with {units} hidden units", flush=True)
            results[cell][str(units)] = train_one(model, make_train(), validation, test, config,
                                                  run, label, strategy, probe)

    metrics = {"results": results, "validation_split": split}
    if config.compare_cnn:
        model = fresh_model(cnn.mnist_cnn, config.seed, strategy)
        print(f"=== {NAME}: part C, the mnist-cnn CNN", flush=True)
        metrics["cnn"] = train_one(model, make_train(), validation, test, config, run, "cnn",
                                   strategy, probe)

    plot_curves(results, metrics.get("cnn"), run.plot_path("curves"),
                title=f"{NAME}: MNIST rows as sequences ({source.kind} data)")
    table = results_table(results, metrics.get("cnn"), config)
    (run.workdir / "results.md").write_text(table)
    print(table)
    metrics.update(report_claims(results, metrics.get("cnn")))
    for cell in results.values():  # the per-epoch curves live in history/*.csv and the plot
        for row in cell.values():
            row.pop("history")
    if "cnn" in metrics:
        metrics["cnn"].pop("history")
    metrics["table"] = "results.md"
    return run.finish(metrics)


def fresh_model(build: Callable[[], keras.Model], seed: int, strategy) -> keras.Model:
    """`build()` in `strategy`'s scope on a cleared session with the global seeds reset to
    `seed`: every model starts the same way, whatever was trained before it."""
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        return build()


def train_one(model, train, validation, test, config: Config, run: runs.Run, label: str,
              strategy, probe=None) -> dict:
    """Fits one model with its own curves on `validation` (history/<label>.csv, tb/<label>;
    hidden states or activations on the fixed `probe` images in tb/<label>/instrumentation),
    then scores it once on `test`; returns its row."""
    with strategy.scope():
        steps = max(int(train.cardinality()), 1) * config.epochs
        schedule = optimization.learning_rate_schedule(config.learning_rate, steps, "cosine")
        model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=config.clipnorm or None),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      steps_per_execution=devices.steps_per_execution(
                          config.steps_per_execution, strategy))
    history_dir = run.workdir / "history"
    history_dir.mkdir(exist_ok=True)
    # One fit name per model: a resumed run restores the finished models without training them.
    history = training.fit(run, model, train, epochs=config.epochs, validation_data=validation,
                           name=label, histogram_freq=0,
                           history_path=history_dir / f"{label}.csv", log_dir=run.tb_dir / label,
                           probe=probe)
    labels, predictions, probabilities = training.predict_labels(model, test)
    times = history.history["epoch_time_s"]
    row = {"test_accuracy": float((predictions == labels).mean()),
           "test_loss": training.cross_entropy(labels, probabilities)}
    if validation is not None:
        row.update(validation_accuracy=float(history.history["val_accuracy"][-1]),
                   validation_loss=float(history.history["val_loss"][-1]))
    return {
        **row,
        "train_accuracy": float(history.history["accuracy"][-1]),
        "train_loss": float(history.history["loss"][-1]),
        "parameters": int(model.count_params()),
        # The first epoch also compiles; the median is the steady per-epoch time.
        "epoch_time_s": round(statistics.median(times[1:] or times), 2),
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }


def seed_figure(cell: str, units: int) -> seeds.SeedItem | None:
    """The report's figure for `cell` with `units` hidden units, if it gave one."""
    return SEEDS.figure(f"results.{cell}.{units}.test_accuracy")


def meets_seed(cell: str, units: int, accuracy: float) -> bool | None:
    """Whether `accuracy` meets or beats the report's figure for the cell (within the item's
    tolerance); None where the report gave none."""
    item = seed_figure(cell, units)
    return None if item is None else accuracy >= item.seed - item.tolerance


def report_claims(results: dict, cnn: dict | None) -> dict:
    """Report 002's claims on test accuracy, each True, False or None (not measured here):
    `simplernn_falls_with_units` (never more accurate with fewer units),
    `lstm_beats_gru_small` (LSTM above GRU at 10 and at 5 units), `cnn_beats_every_rnn`, and
    `all_meet_report_002` (every cell with a report figure meets it)."""
    def accuracy(cell, units):
        return results.get(cell, {}).get(str(units), {}).get("test_accuracy")

    simple = [row["test_accuracy"] for _, row in sorted(
        results.get("simple", {}).items(), key=lambda item: -int(item[0]))]
    pairs = [(accuracy("lstm", units), accuracy("gru", units)) for units in (10, 5)]
    rnns = [row["test_accuracy"] for rows in results.values() for row in rows.values()]
    met = [meets_seed(cell, int(units), row["test_accuracy"])
           for cell, rows in results.items() for units, row in rows.items()]
    met = [value for value in met if value is not None]
    return {
        "simplernn_falls_with_units": (all(smaller <= larger for larger, smaller
                                           in zip(simple, simple[1:], strict=False))
                                       if len(simple) >= 2 else None),
        "lstm_beats_gru_small": (all(lstm > gru for lstm, gru in pairs)
                                 if all(None not in pair for pair in pairs) else None),
        "cnn_beats_every_rnn": (cnn["test_accuracy"] > max(rnns)
                                if cnn is not None and rnns else None),
        "all_meet_report_002": all(met) if met else None,
    }


def results_table(results: dict, cnn: dict | None, config: Config) -> str:
    """The twelve runs (and the CNN) as one Markdown table, with report 002's figures."""
    lines = [f"Test accuracy on MNIST ({config.epochs} epochs each, batch {config.batch_size}, "
             f"Adam {config.learning_rate:g} with cosine decay); validation: "
             f"{config.validation_fraction:.0%} of the training split.", "",
             "| model | hidden units | parameters | train accuracy | validation accuracy | "
             "test accuracy | report 002 | time per epoch (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def validation(row):
        return f"{row['validation_accuracy']:.2%}" if "validation_accuracy" in row else "-"

    for cell, rows in results.items():
        for units, row in rows.items():
            item = seed_figure(cell, int(units))
            report = "lower" if cell == "simple" else (item.seed_text if item else "-")
            mark = {True: " (met)", False: " (NOT met)", None: ""}[
                meets_seed(cell, int(units), row["test_accuracy"])]
            lines.append(f"| {CELL_TITLES[cell]} | {units} | {row['parameters']:,} | "
                         f"{row['train_accuracy']:.2%} | {validation(row)} | "
                         f"{row['test_accuracy']:.2%} | {report}{mark} | "
                         f"{row['epoch_time_s']:.1f} |")
    if cnn is not None:
        lines.append(f"| CNN (mnist-cnn) | - | {cnn['parameters']:,} | {cnn['train_accuracy']:.2%} "
                     f"| {validation(cnn)} | {cnn['test_accuracy']:.2%} | - | "
                     f"{cnn['epoch_time_s']:.1f} |")
    return "\n".join(lines) + "\n"


def plot_curves(results: dict, cnn: dict | None, path, title: str = "") -> str:
    """One row per cell: validation accuracy and loss per epoch, one line per hidden size
    (train dashed)."""
    figure, axes = plt.subplots(len(results), 2, figsize=(11, 3.2 * len(results)), squeeze=False)
    for row_axes, (cell, rows) in zip(axes, results.items(), strict=True):
        for column, metric in enumerate(("accuracy", "loss")):
            axis = row_axes[column]
            for color, (units, row) in zip(plt.cm.viridis_r([0.2, 0.4, 0.6, 0.8, 1.0]),
                                           rows.items(), strict=False):
                epochs = range(1, len(row["history"][metric]) + 1)
                if f"val_{metric}" in row["history"]:
                    axis.plot(epochs, row["history"][f"val_{metric}"], color=color, marker="o",
                              label=f"{units} units (validation)")
                axis.plot(epochs, row["history"][metric], color=color, linestyle="--",
                          label=f"{units} units (train)")
            if cnn is not None and f"val_{metric}" in cnn["history"]:
                axis.plot(range(1, len(cnn["history"][metric]) + 1),
                          cnn["history"][f"val_{metric}"],
                          color="tab:red", marker="s", label="CNN (validation)")
            axis.set_title(f"{CELL_TITLES[cell]}: {metric}")
            axis.set_xlabel("epoch")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    return visualization.save_figure(figure, path, title, dpi=100)
