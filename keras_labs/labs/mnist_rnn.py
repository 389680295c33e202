"""Lab `mnist-rnn`: SimpleRNN, LSTM and GRU reading MNIST digits row by row, against the CNN.

Seed report 002, task 3: every 28x28 image is a sequence of 28 time steps of 28 pixels; one
recurrent layer reads it and a softmax on its last output names the digit. The report trained
SimpleRNN, LSTM and GRU cells with 20, 15, 10 and 5 hidden units and saw LSTM at ~95% (15-20
units), ~90% (10) and ~75% (5), GRU at ~95% / ~85% / ~65%, SimpleRNN lower. This lab trains all
twelve in one run, with train and validation accuracy and loss curves for each (the validation
part a seeded `validation_fraction` of the training split), one table of the twelve against the
report's figures (metrics.json, results.md), and, for the report's part C, the CNN of `mnist-cnn`
(`keras_labs.models.mnist_cnn`) trained on the same data and epochs: parameters, accuracy and
time per epoch side by side. Each model's test accuracy is scored once, after its training.
The report's three claims are checked as booleans in metrics.json: `simplernn_falls_with_units`,
`lstm_beats_gru_small` and `cnn_beats_every_rnn`.
"""

from __future__ import annotations

import dataclasses
import statistics

from keras_labs import ConfigError, data, models, runs
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import SeedItem, table

# Loaded on first use (TensorFlow): NAME, Config and PRESETS read without them.
keras, devices, training = lazy_import("keras", "keras_labs.devices", "keras_labs.training")

NAME = "mnist-rnn"
DESCRIPTION = ("SimpleRNN/LSTM/GRU x 20/15/10/5 units on MNIST rows (report 002 task 3, part C "
               "vs the CNN): 12-run table")

CELL_TITLES = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    epochs: int = common.epochs(8, "passes over the training data, every model")
    batch_size: int = common.batch_size(128)
    learning_rate: float = common.learning_rate(1e-2, "peak Adam learning rate (cosine decay to 0)",
                                                maximum=1.0)
    cells: tuple[str, ...] = option(("simple", "lstm", "gru"), help="simple, lstm and/or gru")
    hidden_sizes: tuple[int, ...] = option((20, 15, 10, 5), positive=True)
    clipnorm: float = option(1.0, minimum=0.0, help="gradient norm clip (0: off)")
    unroll: bool = option(True, help="unroll the 28 steps (faster under XLA)")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    test_examples: int = option(0, minimum=0, help="score only the first N test examples (0: all)")
    compare_cnn: bool = option(True, help="part C: also train the mnist-cnn CNN")
    steps_per_execution: int = option(1, minimum=1)

    def check(self) -> None:
        unknown = [cell for cell in self.cells if cell not in models.rnn.CELLS]
        if unknown or not self.cells:
            raise ConfigError(f"cells={self.cells!r} is not valid; choose from "
                              f"{', '.join(models.rnn.CELLS)}")


PRESETS = {
    "seed": Config(steps_per_execution=4),
    "quick": Config(epochs=1, train_examples=4000, test_examples=2000, batch_size=64,
                    unroll=False, steps_per_execution=8),
}
DEFAULT_PRESET = "seed"

# Report 002 read its figures off curves ("~95%"): hence the 2-point tolerance.
SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 002-t3-lstm-20 | seed | results.lstm.20.test_accuracy | 0.95 | ~95% | LSTM with 20 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-lstm-15 | seed | results.lstm.15.test_accuracy | 0.95 | ~95% | LSTM with 15 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-lstm-10 | seed | results.lstm.10.test_accuracy | 0.9 | ~90% | LSTM with 10 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-lstm-5 | seed | results.lstm.5.test_accuracy | 0.75 | ~75% | LSTM with 5 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-gru-20 | seed | results.gru.20.test_accuracy | 0.95 | ~95% | GRU with 20 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-gru-15 | seed | results.gru.15.test_accuracy | 0.95 | ~95% | GRU with 15 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-gru-10 | seed | results.gru.10.test_accuracy | 0.85 | ~85% | GRU with 10 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-gru-5 | seed | results.gru.5.test_accuracy | 0.65 | ~65% | GRU with 5 hidden units, test accuracy | tolerance=0.02 |
| 002-t3-simplernn-trend | seed | simplernn_falls_with_units | qualitative | accuracy falls as SimpleRNN units decrease | SimpleRNN test accuracy falls as its hidden units decrease (20-5) | unit=% |
| 002-t3-lstm-vs-gru | seed | lstm_beats_gru_small | qualitative | LSTM beats GRU at 10 and 5 units (~90/75% vs ~85/65%) | LSTM is more accurate than GRU at 10 and at 5 hidden units | unit=% |
| 002-t3-partc | seed | cnn_beats_every_rnn | qualitative | the CNN is more accurate than every RNN | part C: the CNN is more accurate than every row RNN | unit=% |
""")
# Estimated minutes on the 2-core CPU with full MNIST (README: 17 min 14 s for the thirteen
# models, contended).
PRESET_MINUTES = {"seed": 18}


def seed_figure(cell: str, units: int) -> SeedItem | None:
    """The report's figure for `cell` with `units` hidden units, if it gave one."""
    return next((item for item in SEED_ITEMS
                 if item.metric == f"results.{cell}.{units}.test_accuracy"), None)


def train_one(model, train, validation, test, config: Config, run: runs.Run, label: str,
              strategy, probe=None) -> dict:
    """Fits one model with its own curves on `validation` (history/<label>.csv, tb/<label>;
    hidden states or activations on the fixed `probe` images in tb/<label>/instrumentation),
    then scores it once on `test`; returns its row."""
    with strategy.scope():
        steps = max(int(train.cardinality()), 1) * config.epochs
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)
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


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the twelve row RNNs (and the CNN), writes the curves, the table and the metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    train_split, validation_split, split = data.split_validation(
        data.first(datasets["train"], config.train_examples), config.validation_fraction,
        seed=config.seed)

    def make_train():
        # A pipeline per model: each sees the same shuffled epochs, and a resumed run gives a
        # model exactly the batches it would have had uninterrupted.
        return data.image_pipeline(train_split, batch_size=config.batch_size, training=True,
                                   seed=config.seed)

    validation = data.evaluation_pipeline(validation_split, split, replicas=strategy.num_replicas_in_sync, batch_size=1024)
    test = data.image_pipeline(data.first(datasets["test"], config.test_examples),
                               batch_size=1024, training=False)

    probe = data.probe_batch(train_split if validation_split is None else validation_split)
    results: dict[str, dict[str, dict]] = {}
    for cell in config.cells:
        results[cell] = {}
        for units in config.hidden_sizes:
            keras.backend.clear_session(free_memory=False)
            keras.utils.set_random_seed(config.seed)
            with strategy.scope():
                model = models.build_row_rnn(cell, units, unroll=config.unroll)
            label = f"{cell}-{units}"
            print(f"=== {NAME}: {CELL_TITLES[cell]} with {units} hidden units", flush=True)
            results[cell][str(units)] = train_one(model, make_train(), validation, test, config,
                                                  run, label, strategy, probe)

    metrics = {"results": results, "validation_split": split}
    if config.compare_cnn:
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            cnn = models.mnist_cnn()
        print(f"=== {NAME}: part C, the mnist-cnn CNN", flush=True)
        metrics["cnn"] = train_one(cnn, make_train(), validation, test, config, run, "cnn",
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
    import matplotlib.pyplot as plt

    from keras_labs import visualization

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
                axis.plot(range(1, len(cnn["history"][metric]) + 1), cnn["history"][f"val_{metric}"],
                          color="tab:red", marker="s", label="CNN (validation)")
            axis.set_title(f"{CELL_TITLES[cell]}: {metric}")
            axis.set_xlabel("epoch")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    return visualization.save_figure(figure, path, title, dpi=100)
