"""Plots written as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Reads a Keras CSVLogger file into {column: values}."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys() if rows else []
    return {column: [float(row[column]) for row in rows] for column in columns}


def plot_history(history: dict[str, list[float]], path: str | os.PathLike,
                 title: str = "", x_label: str = "epoch") -> str:
    """One panel per metric (loss, accuracy, ...) with train and validation curves."""
    names = [key for key in history if key not in ("epoch", "step") and not key.startswith("val_")
             and key not in ("learning_rate", "epoch_time_s")]
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 3.6),
                                squeeze=False)
    x = history.get("epoch") or history.get("step")
    for axis, name in zip(axes[0], names, strict=False):
        values = history[name]
        xs = [v + 1 for v in x] if x is not None and "epoch" in history else range(1, len(values) + 1)
        axis.plot(xs, values, marker="o", label=f"train {name}")
        if f"val_{name}" in history:
            axis.plot(xs, history[f"val_{name}"], marker="o", label=f"validation {name}")
        axis.set_xlabel(x_label)
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str],
                          path: str | os.PathLike, title: str = "Confusion matrix") -> str:
    """Row-normalized confusion matrix with counts in the cells."""
    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = max(5, 0.55 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for row in range(len(class_names)):
        for column in range(len(class_names)):
            axis.text(column, row, int(confusion[row, column]), ha="center", va="center",
                      fontsize=7, color="white" if rates[row, column] > 0.5 else "black")
    figure.colorbar(image, fraction=0.046)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


def plot_per_class_accuracy(per_class: Sequence[float], class_names: Sequence[str],
                            path: str | os.PathLike, title: str = "Per-class accuracy") -> str:
    figure, axis = plt.subplots(figsize=(max(5, 0.6 * len(class_names)), 3.5))
    values = [0.0 if v is None else v for v in per_class]
    axis.bar(range(len(values)), values, color="tab:blue")
    axis.set_xticks(range(len(values)), class_names, rotation=45, ha="right")
    axis.set_ylim(0, 1)
    axis.set_ylabel("accuracy")
    axis.set_title(title)
    for index, value in enumerate(values):
        axis.text(index, value + 0.02, f"{value:.2f}", ha="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


def image_grid(images: np.ndarray, path: str | os.PathLike, titles: Sequence[str] | None = None,
               columns: int = 8, title: str = "", cmap: str | None = None) -> str:
    """Saves images (N, H, W[, C], values in [0, 1]) as a grid with optional captions."""
    images = np.asarray(images)
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= len(images):
            continue
        image = np.clip(images[index], 0, 1)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        axis.imshow(image, cmap=cmap or ("gray" if image.ndim == 2 else None), vmin=0, vmax=1)
        if titles is not None:
            axis.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)
