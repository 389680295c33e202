"""How the transfer lab trains and compares its strategies: adapting a network in phases, such
as a warm-up of the new head first (`Phase`, `fit_phases`), a table of the strategies' results
(`strategy_table`, `markdown_table`) and their per-epoch histories in one CSV
(`write_history`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from collections.abc import Callable

import keras

from keras_labs.labs.transfer.backbones import unfreeze_except_batch_norm

# --------------------------------------------------------------------------------------------
# Training in phases


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of adapting a network (`fit_phases`).

    Attributes:
        name: What the phase is called: its logs', and the history's `phase` column.
        learning_rate: Adam learning rate of the phase.
        until_epoch: The epoch the phase ends at, counted from the start of the first phase.
        unfreeze: Unfreeze the base first, its batch norm kept in inference mode
            (`unfreeze_except_batch_norm`).
    """

    name: str
    learning_rate: float
    until_epoch: int
    unfreeze: bool = False


def fit_phases(model: keras.Model, base: keras.Model, phases: list[Phase], *, fit: Callable,
               scope: Callable = contextlib.nullcontext) -> dict[str, list]:
    """Trains `model` one phase after another, recompiled with Adam at each phase's rate.

    Args:
        model: A classifier of probabilities on integer labels (`backbones.transfer_model`).
        base: The network inside `model` that a phase may unfreeze.
        phases: In order; a phase whose `until_epoch` is already reached trains nothing.
        fit: `fit(phase_name, model, epochs=..., initial_epoch=...)` trains the compiled model
            and returns its `History`.
        scope: Returns the context `model` is compiled in (a `tf.distribute` strategy's
            `scope`).

    Returns:
        The per-epoch history of all the phases end to end, with a `phase` column.
    """
    history: dict[str, list] = {}
    for phase in phases:
        if phase.unfreeze:
            unfreeze_except_batch_norm(base)  # takes effect when recompiled below
        done = len(history.get("loss", []))
        if phase.until_epoch <= done:
            continue
        with scope():
            model.compile(optimizer=keras.optimizers.Adam(phase.learning_rate),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        result = fit(phase.name, model, epochs=phase.until_epoch, initial_epoch=done)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(float(value) for value in values)
        history.setdefault("phase", []).extend([phase.name] * len(result.history["loss"]))
    return history


# --------------------------------------------------------------------------------------------
# Comparing strategies: the table and the history


def strategy_table(metrics: dict, targets, strategies) -> list[dict]:
    """One row per target and strategy, zero-shot first where there is one.

    Args:
        metrics: {strategy: {target: results}} with each results' validation_accuracy,
            test_accuracy, trainable_parameters and time_s, and {"zero_shot": {target:
            {validation_accuracy, test_accuracy}}} for the targets the source scores as it is.
        targets: The targets, in row order.
        strategies: The strategies, in row order.
    """
    rows = []
    for target in targets:
        if target in metrics["zero_shot"]:
            rows.append({"target": target, "strategy": "zero_shot",
                         **metrics["zero_shot"][target], "trainable_parameters": 0,
                         "time_s": 0.0})
        for name in strategies:
            result = metrics[name][target]
            rows.append({"target": target, "strategy": name,
                         "validation_accuracy": result["validation_accuracy"],
                         "test_accuracy": result["test_accuracy"],
                         "trainable_parameters": result["trainable_parameters"],
                         "time_s": result["time_s"]})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """`strategy_table`'s rows as a Markdown table."""
    lines = ["| target | strategy | validation accuracy | test accuracy | trainable parameters "
             "| time (s) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {row['target']} | {row['strategy']} | {row['validation_accuracy']:.2%} | "
              f"{row['test_accuracy']:.2%} | {row['trainable_parameters']:,} | "
              f"{row['time_s']:.1f} |" for row in rows]
    return "\n".join(lines) + "\n"


def write_history(path, histories: dict[tuple[str, str], dict[str, list]]) -> None:
    """Every strategy's epochs in one long CSV: target, strategy, epoch, phase, the metrics.

    Args:
        path: The CSV file.
        histories: {(target, strategy): its per-epoch history (`fit_phases`)}, in row order.
    """
    rows = [{"target": target, "strategy": strategy, "epoch": epoch + 1,
             **{key: values[epoch] for key, values in history.items()}}
            for (target, strategy), history in histories.items()
            for epoch in range(len(history["val_accuracy"]))]
    columns = ["target", "strategy", "epoch", "phase"]
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
