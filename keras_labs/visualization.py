"""Plots written as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(figure, path: str | os.PathLike, title: str = "", dpi: int = 110, *,
                title_size: float | None = None,
                rect: tuple[float, float, float, float] | None = None) -> str:
    """Titles, lays out, writes and closes a matplotlib figure; returns the path as a string.

    Args:
        figure: The matplotlib figure.
        path: The PNG to write.
        title: Figure title (none when empty).
        dpi: Resolution of the PNG.
        title_size: The title's font size; default: matplotlib's figure title size.
        rect: (left, bottom, right, top), in figure fractions, that the panels are laid out in
            (room for a legend beside them); default: the whole figure.
    """
    if title:
        # No fontsize at all unless given: an explicit None would mean the body text size.
        figure.suptitle(title, **({} if title_size is None else {"fontsize": title_size}))
    figure.tight_layout(rect=rect)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return str(path)


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Reads a Keras CSVLogger file into {column: values}.

    A column with no value in any row (CSVLogger writes "NA" for `val_*` when `fit` ran without
    validation data) is dropped; a missing value elsewhere reads as NaN.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys() if rows else []

    def number(text: str | None) -> float:
        return float("nan") if text in (None, "", "NA", "nan") else float(text)

    history = {column: [number(row[column]) for row in rows] for column in columns}
    return {column: values for column, values in history.items()
            if not all(value != value for value in values)}


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
    return save_figure(figure, path, title)


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
    return save_figure(figure, path)


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
    return save_figure(figure, path)


def plot_run_history(run, title: str) -> str:
    """A run's history.csv as `plots/curves.png` (loss and metrics per epoch)."""
    return plot_history(read_history(run.history_path), run.plot_path("curves"), title=title)


def plot_classifier(run, metrics: dict, class_names: Sequence[str], title: str) -> None:
    """A classifier run's curves, confusion matrix and per-class accuracy (from its metrics)."""
    plot_run_history(run, title)
    plot_confusion_matrix(metrics["confusion_matrix"], class_names,
                          run.plot_path("confusion_matrix"))
    plot_per_class_accuracy(metrics["per_class_accuracy"], class_names,
                            run.plot_path("per_class_accuracy"))


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
    return save_figure(figure, path, title)


def image_table(rows: Sequence[np.ndarray], path: str | os.PathLike,
                row_titles: Sequence[str] | None = None,
                column_titles: Sequence[str] | None = None,
                cell_titles: Sequence[Sequence[str]] | None = None,
                boxes: Sequence[Sequence[tuple[int, int, int, int] | None]] | None = None,
                title: str = "", cell_size: float = 1.6) -> str:
    """Saves rows of images (each (K, H, W[, C]) in [0, 1]) as a table with row and column labels.

    Args:
        rows: One array of images per row; rows may have different lengths.
        path: The PNG to write.
        row_titles: A label left of each row.
        column_titles: A label above each column (first row).
        cell_titles: Per-row, per-image captions.
        boxes: Per-row, per-image (top, left, bottom, right) rectangles to outline, or None.
        title: Figure title.
        cell_size: Inches per image.
    """
    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(len(rows), columns, squeeze=False,
                                figsize=(cell_size * columns + (1.2 if row_titles else 0),
                                         (cell_size + 0.25) * len(rows) + (0.4 if title else 0)))
    for row_index, images in enumerate(rows):
        for column_index, axis in enumerate(axes[row_index]):
            axis.set_xticks([])
            axis.set_yticks([])
            if column_index >= len(images):
                axis.axis("off")
                continue
            image = np.clip(np.asarray(images[column_index], dtype=np.float32), 0, 1)
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            box = boxes[row_index][column_index] if boxes is not None else None
            if box is not None:
                top, left, bottom, right = box
                axis.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                                             fill=False, edgecolor="yellow", linewidth=1.2))
            if cell_titles is not None:
                axis.set_title(cell_titles[row_index][column_index], fontsize=7)
            elif row_index == 0 and column_titles is not None and column_index < len(column_titles):
                axis.set_title(column_titles[column_index], fontsize=8)
            if column_index == 0 and row_titles is not None:
                axis.set_ylabel(row_titles[row_index], fontsize=8)
    return save_figure(figure, path, title, title_size=10)


def plot_tradeoff(points: Sequence[tuple[float, float]], labels: Sequence[str],
                  path: str | os.PathLike, x_label: str, y_label: str, title: str = "",
                  references: dict[str, float] | None = None) -> str:
    """One point per setting (x, y), joined in order and labelled: a trade-off curve.

    Args:
        points: (x, y) per setting, in the order of the swept value.
        labels: A caption per point (the setting).
        path: The PNG to write.
        x_label: The x axis label.
        y_label: The y axis label.
        title: Figure title.
        references: {label: y}: dotted horizontal lines (a reported figure to compare with).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    figure, axis = plt.subplots(figsize=(6, 4.2))
    axis.plot(points[:, 0], points[:, 1], color="tab:blue", alpha=0.5)
    axis.scatter(points[:, 0], points[:, 1], color="tab:blue", zorder=3)
    for (x, y), label in zip(points, labels, strict=True):
        axis.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    for label, value in (references or {}).items():
        axis.axhline(value, color="gray", linestyle=":", linewidth=1)
        axis.annotate(label, (0.99, value), xycoords=("axes fraction", "data"), fontsize=8,
                      color="gray", va="bottom", ha="right")
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)
    return save_figure(figure, path)


def plot_embeddings(panels: dict[str, np.ndarray], labels: np.ndarray,
                    class_names: Sequence[str], path: str | os.PathLike, columns: int = 2,
                    title: str = "", point_size: float | None = None) -> str:
    """2-D embeddings as scatter plots coloured by class, one panel per entry of `panels`.

    Args:
        panels: {panel title: (N, 2) points}, drawn row by row, `columns` panels per row.
        labels: (N,) integer classes, shared by every panel.
        class_names: Legend text per class.
        path: The PNG to write.
        columns: Panels per row.
        title: Figure title.
        point_size: Marker area of each point; default: smaller the more points there are.
    """
    labels = np.asarray(labels).astype(int)
    point_size = point_size or float(np.clip(6000 / max(len(labels), 1), 1.5, 20))
    rows = int(np.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.8 * rows), squeeze=False)
    colors = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for axis in axes.flat[len(panels):]:
        axis.axis("off")
    for axis, (name, points) in zip(axes.flat, panels.items(), strict=False):
        points = np.asarray(points)
        for index, class_name in enumerate(class_names):
            chosen = labels == index
            axis.scatter(points[chosen, 0], points[chosen, 1], s=point_size, color=colors(index),
                         label=class_name, alpha=0.7, linewidths=0, rasterized=True)
        axis.set_title(name, fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    handles, names = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="center right", markerscale=4, title="class")
    return save_figure(figure, path, title, rect=(0, 0, 0.93, 1))


def plot_learning_curves(panels: dict[str, dict[str, Sequence[float]]], path: str | os.PathLike,
                         marks: dict[str, float] | None = None,
                         references: dict[str, dict[str, float]] | None = None,
                         y_label: str = "validation accuracy", title: str = "") -> str:
    """Per-epoch curves of several runs side by side, one panel per entry of `panels`.

    Args:
        panels: {panel title: {series label: one value per epoch}}.
        path: The PNG to write.
        marks: {label: epoch}: a dashed vertical line in every panel after that many epochs
            (for example where fine-tuning starts).
        references: {panel title: {label: value}}: dotted horizontal lines (a baseline).
        y_label: The y axis label.
        title: Figure title.
    """
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.5 * max(len(panels), 1), 3.8),
                                squeeze=False)
    for axis, (name, series) in zip(axes[0], panels.items(), strict=False):
        for label, values in series.items():
            axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        for label, epoch in (marks or {}).items():
            axis.axvline(epoch + 0.5, color="gray", linestyle="--", linewidth=1)
            axis.annotate(label, (epoch + 0.5, 0.02), xycoords=("data", "axes fraction"),
                          rotation=90, fontsize=8, color="gray", ha="right", va="bottom")
        for label, value in (references or {}).get(name, {}).items():
            axis.axhline(value, color="black", linestyle=":", linewidth=1, label=label)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_ylabel(y_label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return save_figure(figure, path, title)


def sprite_image(images: np.ndarray, path: str | os.PathLike) -> tuple[int, int]:
    """Tiles images (N, H, W[, C], uint8 or [0, 1] floats) row by row into one square PNG.

    The layout is TensorBoard Projector's sprite format: image i at row i // n, column i % n
    of an n x n grid, n = ceil(sqrt(N)).

    Returns:
        (H, W) of one image, for the projector's `single_image_dim`.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255
    height, width = images.shape[1:3]
    side = int(np.ceil(np.sqrt(len(images))))
    # The Projector reads an n x n grid: blank tiles fill the last rows.
    blanks = np.zeros((side * side - len(images), *images.shape[1:]), images.dtype)
    canvas = (tile_images(np.concatenate([images, blanks]), columns=side, padding=0,
                          background=0.0) * 255).round()
    canvas = canvas.astype(np.uint8)
    plt.imsave(path, canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=255)
    return height, width


def write_projector(log_dir: str | os.PathLike, tensors: dict[str, np.ndarray],
                    labels: Sequence, images: np.ndarray | None = None) -> str:
    """Writes embeddings for TensorBoard's Projector: `<name>.tsv` per tensor, `metadata.tsv`
    (one label per line), `sprite.png` (when `images` are given) and `projector_config.pbtxt`.

    Args:
        log_dir: The TensorBoard log folder the Projector reads (`tensorboard --logdir`).
        tensors: {embedding name: (N, D) vectors}, all for the same N examples.
        labels: N labels, written to metadata.tsv.
        images: Optional (N, H, W[, C]) thumbnails for the sprite.

    Returns:
        The path of projector_config.pbtxt.
    """
    from tensorboard.plugins import projector

    log_dir = os.fspath(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    # One column of metadata: the Projector expects no header line then.
    with open(os.path.join(log_dir, "metadata.tsv"), "w") as handle:
        handle.writelines(f"{label}\n" for label in labels)
    sprite_size = (sprite_image(images, os.path.join(log_dir, "sprite.png"))
                   if images is not None else None)
    config = projector.ProjectorConfig()
    for name, vectors in tensors.items():
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) != len(labels):
            raise ValueError(f"tensor {name!r} has {len(vectors)} rows but there are "
                             f"{len(labels)} labels")
        np.savetxt(os.path.join(log_dir, f"{name}.tsv"), vectors, delimiter="\t", fmt="%.5g")
        embedding = config.embeddings.add()
        embedding.tensor_name = name
        embedding.tensor_path = f"{name}.tsv"
        embedding.tensor_shape.extend(vectors.shape)
        embedding.metadata_path = "metadata.tsv"
        if sprite_size is not None:
            embedding.sprite.image_path = "sprite.png"
            embedding.sprite.single_image_dim.extend(sprite_size[::-1])  # width, height
    projector.visualize_embeddings(log_dir, config)
    return os.path.join(log_dir, "projector_config.pbtxt")


def tile_images(images: np.ndarray, columns: int, padding: int = 2,
                background: float = 1.0) -> np.ndarray:
    """Tiles images (N, H, W[, C], values in [0, 1]) row by row into one array, `columns` per
    row, with `padding` pixels of `background` between them (for PNGs and TensorBoard images).
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    count, height, width = images.shape[:3]
    rows = int(np.ceil(count / columns))
    canvas = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding,
                      *images.shape[3:]), background, dtype=np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top:top + height, left:left + width] = image
    return canvas


def save_image(image: np.ndarray, path: str | os.PathLike, scale: int = 2) -> str:
    """Writes one (H, W[, C]) array in [0, 1] as a PNG, pixels enlarged `scale` times."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    plt.imsave(path, image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    return str(path)


def diverging_rgb(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Maps signed values (..., H, W[, 1]) to RGB in [0, 1]: blue negative, white 0, red positive.

    Args:
        values: The signed array (a perturbation, a gradient map).
        limit: The magnitude drawn fully saturated; default: the largest |value| (per call).
    """
    values = np.asarray(values, dtype=np.float32)
    if values.shape[-1] == 1:
        values = values[..., 0]
    limit = float(np.abs(values).max()) if limit is None else float(limit)
    scaled = 0.5 + 0.5 * values / max(limit, 1e-12)
    return plt.get_cmap("RdBu_r")(np.clip(scaled, 0, 1))[..., :3].astype(np.float32)


def plot_curves(panels: dict[str, dict[str, tuple[Sequence[float], Sequence[float]]]],
                path: str | os.PathLike, x_label: str = "step", title: str = "",
                references: dict[str, dict[str, float]] | None = None,
                log_y: Sequence[str] = (), markers: bool = True) -> str:
    """Curves over a shared x quantity (training step, epsilon), one panel per entry of `panels`.

    Args:
        panels: {panel title (also the y label): {series label: (xs, ys)}}.
        path: The PNG to write.
        x_label: The x axis label.
        title: Figure title.
        references: {panel title: {label: y}}: dotted horizontal lines (a target, a baseline).
        log_y: Panel titles drawn with a logarithmic y axis.
        markers: Draw a marker at every point (off for long, dense curves).
    """
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.2 * max(len(panels), 1), 3.8),
                                squeeze=False)
    for axis, (name, series) in zip(axes[0], panels.items(), strict=False):
        for label, (xs, ys) in series.items():
            axis.plot(xs, ys, marker="o" if markers else None, markersize=3, label=label,
                      linewidth=1.2)
        for label, value in (references or {}).get(name, {}).items():
            axis.axhline(value, color="black", linestyle=":", linewidth=1, label=label)
        if name in log_y:
            axis.set_yscale("log")
        axis.set_xlabel(x_label)
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        if len(series) > 1 or (references or {}).get(name):
            axis.legend(fontsize=8)
    return save_figure(figure, path, title)


def contact_sheet(frames: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike,
                  title: str = "") -> str:
    """One row of images per frame (a training step, say), labelled on the left: how the same
    inputs change over training.

    Args:
        frames: (label, images (K, H, W[, C]) in [0, 1]) per row, all with the same K.
        path: The PNG to write.
        title: Figure title.
    """
    strips = [tile_images(images, columns=len(images), padding=1) for _, images in frames]
    sheet = np.concatenate(strips, axis=0)
    strip_height = strips[0].shape[0]
    figure, axis = plt.subplots(figsize=(min(0.45 * sheet.shape[1] / 10 + 1.2, 16),
                                         0.45 * sheet.shape[0] / 10 + 0.6))
    axis.imshow(sheet, cmap="gray" if sheet.ndim == 2 else None, vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([strip_height * (index + 0.5) for index in range(len(frames))],
                    [label for label, _ in frames], fontsize=8)
    axis.tick_params(length=0)
    for spine in axis.spines.values():
        spine.set_visible(False)
    if title:
        axis.set_title(title, fontsize=10)
    return save_figure(figure, path)


def plot_bars(values: Sequence[float], labels: Sequence[str], path: str | os.PathLike,
              y_label: str, title: str = "", reference: float | None = None,
              reference_label: str = "") -> str:
    """A bar chart with the value above each bar and an optional dotted reference line."""
    values = [0.0 if value is None else float(value) for value in values]
    figure, axis = plt.subplots(figsize=(max(5, 0.6 * len(values)), 3.5))
    axis.bar(range(len(values)), values, color="tab:blue")
    axis.set_xticks(range(len(values)), labels)
    for index, value in enumerate(values):
        axis.text(index, value, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
    if reference is not None:
        axis.axhline(reference, color="black", linestyle=":", linewidth=1, label=reference_label)
        if reference_label:
            axis.legend(fontsize=8)
    axis.set_ylabel(y_label)
    if title:
        axis.set_title(title)
    return save_figure(figure, path)
