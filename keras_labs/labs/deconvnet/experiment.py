"""The deconvnet experiment: train the CNN, project its feature maps to pixels, export it."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from keras_labs import export, training, visualization
from keras_labs.data import loading
from keras_labs.labs.deconvnet import deconvolution
from keras_labs.labs.deconvnet.config import NAME, Config
from keras_labs.models import cnn


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the CNN, projects its feature maps to pixel space, and exports the classifier."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data(config.dataset)
    train_part, validation_part, split = run.held_out(datasets["train"])
    train, test = loading.train_and_test({"train": train_part, "test": datasets["test"]},
                                         batch_size=config.batch_size, seed=config.seed,
                                         test_batch_size=256)
    validation = loading.evaluation_pipeline(validation_part, split, batch_size=256,
                                             replicas=strategy.num_replicas_in_sync)

    model = _classifier(config, strategy, input_shape=tuple(train.element_spec[0].shape[1:]))
    history = training.fit(run, model, train, epochs=config.epochs, validation_data=validation,
                           probe=loading.probe_batch(
                               train_part if validation_part is None else validation_part))
    blocks = [f"pool{stage}" for stage in range(1, len(config.filters) + 1)][:2]
    # The test split, scored once now that training is done.
    metrics = training.classifier_scores(model, test, history, split)
    metrics["projected_layers"] = blocks

    projector = deconvolution.Deconvnet(model)
    names = loading.class_names(config.dataset)
    images, image_labels = next(iter(test.unbatch().batch(config.images)))
    images = images.numpy()
    metrics["strongest_features"] = _projection_grids(projector, images, image_labels.numpy(),
                                                      blocks, names, run)
    metrics["top_activations"] = _top_activation_grids(projector, datasets["test"], blocks,
                                                       names, config, run)

    kernel = model.get_layer("conv1_1").kernel.numpy()  # (3, 3, channels, filters)
    visualization.image_grid(deconvolution.to_display(np.moveaxis(kernel, -1, 0)),
                             run.plot_path("filters_conv1"), columns=8,
                             title="conv1 filters (0.5 = zero)")
    visualization.plot_run_history(run, title=f"{NAME} ({source.kind} data)")
    metrics["projection_64_images_s"] = _projection_time(projector, images, blocks[-1])

    metrics["epoch_time_s"] = [round(t, 2) for t in history.history["epoch_time_s"]]
    metrics["parameters"] = int(model.count_params())
    metrics.update(_figures(run, config, blocks))
    metrics["export"] = str(export.export_model(model, run, normalize="unit"))
    print(f"{NAME}: test accuracy {metrics['test_accuracy']:.4f}; strongest maps "
          f"{metrics['strongest_features']}; top-{config.top_k} maps " + ", ".join(
              f"{block} #{info['feature']}" for block, info in metrics["top_activations"].items()))
    return run.finish(metrics)


def _classifier(config: Config, strategy, input_shape: tuple) -> keras.Model:
    """The CNN of `config`, built and compiled in `strategy`'s scope; its summary printed."""
    # The classic deconvnet network: per block a convolution, a ReLU and a max pool, then a
    # dense head the deconvnet never looks at.
    with strategy.scope():
        model = cnn.mnist_cnn(input_shape=input_shape, filters=config.filters,
                              dense_units=config.dense_units, dropout=config.dropout,
                              batch_norm=config.batch_norm, name=f"{config.dataset}_cnn")
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary(print_fn=lambda line, **_: print(line))
    return model


def _projection_grids(projector: deconvolution.Deconvnet, images: np.ndarray,
                      labels: np.ndarray, blocks: list[str], names: list[str],
                      run) -> dict[str, list[int]]:
    """The report's views 1 and 2 for `images`: all maps of each block, then only each image's
    strongest map, projected to pixels and drawn.

    Returns:
        {block: the strongest feature map of each image}.
    """
    # 1. All activations of each block, projected together.
    all_maps = {block: projector.project(images, block) for block in blocks}
    _projection_table(images, all_maps, run.plot_path("projections_all"),
                      "all feature maps projected to pixels", labels, names)

    # 2. Only each image's strongest map (the others zeroed before projecting).
    strongest, strongest_maps = {}, {}
    for block in blocks:
        strongest[block] = projector.strongest_features(images, block).tolist()
        strongest_maps[block] = projector.project(images, block, feature="strongest")
    _projection_table(images, strongest_maps, run.plot_path("projections_strongest"),
                      "strongest feature map only", labels, names, strongest)
    return strongest


def _top_activation_grids(projector: deconvolution.Deconvnet, test: tf.data.Dataset,
                          blocks: list[str], names: list[str], config: Config, run) -> dict:
    """The report's view 3: the top-k test examples of one map per block, each with its
    strongest activation projected, drawn as the paper's figure 2.

    Returns:
        {block: the map, the examples' test indices, activations and labels}.
    """
    searched = test
    if config.search_examples:
        searched = searched.take(config.search_examples)
    searched = loading.image_pipeline(searched, batch_size=256, training=False)
    top_activations = {}
    for block in blocks:
        feature = config.feature if config.feature >= 0 else _most_active(projector, searched, block)
        top = projector.top_activations(searched, block, feature, k=config.top_k)
        _top_grid(top, names, run.plot_path(f"top{config.top_k}_{block}"))
        top_activations[block] = {
            "feature": top.feature, "test_indices": top.indices.tolist(),
            "activations": [round(float(a), 4) for a in top.activations],
            "labels": [names[int(label)] for label in top.labels]}
    return top_activations


def _projection_time(projector: deconvolution.Deconvnet, images: np.ndarray, layer: str) -> float:
    """Seconds one projection of a 64-image batch from `layer` down to pixels takes, once
    traced (scripts/benchmark_deconvnet.py measures it properly)."""
    batch = np.resize(images, (64, *images.shape[1:]))
    project = projector.projection_function(layer)
    project(batch, tf.constant(-1), tf.constant(False))
    start = time.perf_counter()
    project(batch, tf.constant(-1), tf.constant(False))[0].numpy()
    return round(time.perf_counter() - start, 4)


def _figures(run, config: Config, blocks: list[str]) -> dict:
    """The grids of each of the report's three views (`figures`, paths relative to the run
    folder) and whether they are on disk (`figures_written`)."""
    # The report's three views, each True once its grids are on disk.
    figures = {"projections": ["projections_all"], "strongest": ["projections_strongest"],
               "top_k": [f"top{config.top_k}_{block}" for block in blocks]}
    return {
        "figures": {view: [str(run.plot_path(name).relative_to(run.workdir)) for name in names]
                    for view, names in figures.items()},
        "figures_written": {view: all(run.plot_path(name).is_file() for name in names)
                            for view, names in figures.items()},
    }


def _most_active(projector: deconvolution.Deconvnet, dataset: tf.data.Dataset, layer: str) -> int:
    """The feature map of `layer` with the largest single activation over `dataset`."""
    peaks = None
    for images, _ in dataset:
        activations, _ = projector.forward(images, layer)
        batch_peaks = tf.reduce_max(activations, axis=(0, 1, 2)).numpy()
        peaks = batch_peaks if peaks is None else np.maximum(peaks, batch_peaks)
    return int(np.argmax(peaks))


def _projection_table(images, projections: dict[str, np.ndarray], path, title, labels, names,
                      features: dict[str, list[int]] | None = None) -> None:
    rows, captions = [], []
    for index, image in enumerate(images):
        row = [image, *(deconvolution.to_display(projections[block][index:index + 1])[0] for block in projections)]
        rows.append(np.stack(row))
        captions.append([names[int(labels[index])], *(
            f"{block}" + (f" map {features[block][index]}" if features else " all maps")
            for block in projections)])
    visualization.image_table(rows, path, cell_titles=captions, title=f"Deconvnet: {title}")


def _top_grid(top, names, path) -> None:
    """The paper's figure 2 for one feature map: per example, the image with the part its
    strongest activation sees outlined, that patch, and the projection of the activation over
    the same patch; three examples per row."""
    displayed = deconvolution.to_display(top.projections)
    rows, captions, boxes = [], [], []
    for index in range(len(top.images)):
        if index % 3 == 0:
            rows.append([])
            captions.append([])
            boxes.append([])
        upper, left, lower, right = deconvolution.support_box(top.projections[index])
        rows[-1] += [top.images[index], top.images[index][upper:lower, left:right],
                     displayed[index][upper:lower, left:right]]
        name = names[int(top.labels[index])] if top.labels is not None else ""
        captions[-1] += [f"{name} {top.activations[index]:.2f}", "patch", "projection"]
        boxes[-1] += [(upper, left, lower, right), None, None]
    visualization.image_table(
        rows, path, cell_titles=captions, boxes=boxes,
        title=f"Deconvnet: top {len(top.images)} test images of {top.layer} map {top.feature}")
