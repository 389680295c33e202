"""Lab `deconvnet`: what do the feature maps of a small CIFAR-10 CNN respond to?

Seed report 002, task 2: train a two-stage CNN on CIFAR-10, then map activations back to pixel
space with a Zeiler-Fergus deconvnet (`keras_labs.deconvnet`): the switches of every max pool
are recorded on the way up; on the way down the signal is unpooled with them, rectified and
passed through the transposed convolution with the layer's own filters. The report's three
views:

1. all activations of conv block 1 and of conv block 2, projected for 5 test images;
2. only the strongest feature map of each block (every other activation set to zero);
3. for one feature map, the 9 examples that activate it most, each with the projection of its
   strongest activation (the paper's figure 2), here for both blocks.

The run leaves those grids (named in `figures_written`), the first-layer filters, training curves
on a seeded `validation_fraction` of the training split, validation and test accuracy (the test
split scored once, after training), the top-9 examples of each chosen map in metrics.json, and the
classifier as a SavedModel. The grids show test images, as the report's did: they pick nothing
that is scored.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from keras_labs import ConfigError, data, models
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
keras, tf = lazy_import("keras", "tensorflow")
deconv, export, training, visualization = lazy_import(
    "keras_labs.deconvnet", "keras_labs.export", "keras_labs.training", "keras_labs.visualization")

NAME = "deconvnet"
DESCRIPTION = ("Zeiler-Fergus deconvnet on a CIFAR-10 CNN (report 002, task 2): projections of "
               "conv blocks 1-2, strongest maps, top-9 grids")


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    dataset: str = option("cifar10", choices=("cifar10", "mnist"))
    epochs: int = common.epochs(8)
    batch_size: int = common.batch_size(64)
    learning_rate: float = common.learning_rate(1e-3)
    filters: tuple[int, ...] = option((32, 64), positive=True,
                                      help="conv widths, one per block (conv, relu, max pool)")
    dense_units: int = option(256, minimum=1)
    dropout: float = option(0.3, minimum=0.0, maximum=0.95)
    batch_norm: bool = option(False, help="batch norm after each conv (folded into the "
                                          "projection's filters)")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    images: int = option(5, minimum=1, maximum=64, help="test images for the projection grids")
    feature: int = option(-1, minimum=-1, help="feature map of the top-k grids (-1: the one with "
                                               "the largest activation on the searched examples)")
    top_k: int = option(9, minimum=1, maximum=64, help="examples per top-k grid")
    search_examples: int = option(0, minimum=0, help="test examples searched for the top-k grids "
                                                     "(0: the whole test split)")

    def check(self) -> None:
        if self.feature >= min(self.filters):
            raise ConfigError(f"feature={self.feature!r} is not valid; the narrowest block has "
                              f"{min(self.filters)} feature maps")


PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=1, train_examples=2000, search_examples=500),
}
DEFAULT_PRESET = "seed"

SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 002-t2-projections | seed | figures_written.projections | qualitative | Dconv1 and Dconv2 of 5 test images | all activations of conv blocks 1 and 2 projected back to input space, 5 test images | unit=% |
| 002-t2-strongest | seed | figures_written.strongest | qualitative | the highest activation map only | only the highest activation map of each block projected back | unit=% |
| 002-t2-top9 | seed | figures_written.top_k | qualitative | the top 9 activations | the top 9 activations of a feature map, each projected back | unit=% |
""")
# Estimated minutes on the 2-core CPU with the partial CIFAR-10: 8 epochs of ~15 s (measured
# at load 6), the grids and the top-9 search.
PRESET_MINUTES = {"seed": 4}


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the CNN, projects its feature maps to pixel space, and exports the classifier."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data(config.dataset)
    train_part, validation_part, split = data.split_validation(
        data.first(datasets["train"], config.train_examples), config.validation_fraction,
        seed=config.seed)
    train, test = data.train_and_test({"train": train_part, "test": datasets["test"]},
                                      batch_size=config.batch_size, seed=config.seed,
                                      test_batch_size=256)
    validation = data.evaluation_pipeline(validation_part, split, replicas=strategy.num_replicas_in_sync, batch_size=256)

    # The classic deconvnet network: per block a convolution, a ReLU and a max pool, then a
    # dense head the deconvnet never looks at.
    with strategy.scope():
        model = models.mnist_cnn(input_shape=tuple(train.element_spec[0].shape[1:]),
                                 filters=config.filters, dense_units=config.dense_units,
                                 dropout=config.dropout, batch_norm=config.batch_norm,
                                 name=f"{config.dataset}_cnn")
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary(print_fn=lambda line, **_: print(line))

    history = training.fit(run, model, train, epochs=config.epochs, validation_data=validation,
                           probe=data.probe_batch(
                               train_part if validation_part is None else validation_part))
    blocks = [f"pool{stage}" for stage in range(1, len(config.filters) + 1)][:2]
    # The test split, scored once now that training is done.
    metrics = training.classifier_scores(model, test, history, split)
    metrics["projected_layers"] = blocks

    projector = deconv.Deconvnet(model)
    names = data.class_names(config.dataset)
    images, image_labels = next(iter(test.unbatch().batch(config.images)))
    images = images.numpy()

    # 1. All activations of each block, projected together.
    all_maps = {block: projector.project(images, block) for block in blocks}
    _projection_table(images, all_maps, run.plot_path("projections_all"),
                      "all feature maps projected to pixels", image_labels.numpy(), names)

    # 2. Only each image's strongest map (the others zeroed before projecting).
    strongest, strongest_maps = {}, {}
    for block in blocks:
        strongest[block] = projector.strongest_features(images, block).tolist()
        strongest_maps[block] = projector.project(images, block, feature="strongest")
    _projection_table(images, strongest_maps, run.plot_path("projections_strongest"),
                      "strongest feature map only", image_labels.numpy(), names, strongest)
    metrics["strongest_features"] = strongest

    # 3. The top-k examples of one map per block, each with its strongest activation projected.
    searched = datasets["test"]
    if config.search_examples:
        searched = searched.take(config.search_examples)
    searched = data.image_pipeline(searched, batch_size=256, training=False)
    metrics["top_activations"] = {}
    for block in blocks:
        feature = config.feature if config.feature >= 0 else _most_active(projector, searched, block)
        top = projector.top_activations(searched, block, feature, k=config.top_k)
        _top_grid(top, names, run.plot_path(f"top{config.top_k}_{block}"))
        metrics["top_activations"][block] = {
            "feature": top.feature, "test_indices": top.indices.tolist(),
            "activations": [round(float(a), 4) for a in top.activations],
            "labels": [names[int(label)] for label in top.labels]}

    kernel = model.get_layer("conv1_1").kernel.numpy()  # (3, 3, channels, filters)
    visualization.image_grid(deconv.to_display(np.moveaxis(kernel, -1, 0)), run.plot_path("filters_conv1"),
                             columns=8, title="conv1 filters (0.5 = zero)")
    visualization.plot_run_history(run, title=f"{NAME} ({source.kind} data)")

    # How long one projection of a 64-image batch through both blocks takes, once traced
    # (scripts/benchmark_deconvnet.py measures it properly).
    batch = np.resize(images, (64, *images.shape[1:]))
    project = projector.projection_function(blocks[-1])
    project(batch, tf.constant(-1), tf.constant(False))
    start = time.perf_counter()
    project(batch, tf.constant(-1), tf.constant(False))[0].numpy()
    metrics["projection_64_images_s"] = round(time.perf_counter() - start, 4)

    metrics["epoch_time_s"] = [round(t, 2) for t in history.history["epoch_time_s"]]
    metrics["parameters"] = int(model.count_params())
    # The report's three views, each True once its grids are on disk.
    figures = {"projections": ["projections_all"], "strongest": ["projections_strongest"],
               "top_k": [f"top{config.top_k}_{block}" for block in blocks]}
    metrics["figures"] = {view: [str(run.plot_path(name).relative_to(run.workdir))
                                 for name in names] for view, names in figures.items()}
    metrics["figures_written"] = {view: all(run.plot_path(name).is_file() for name in names)
                                  for view, names in figures.items()}
    metrics["export"] = str(export.export_model(model, config.export_dir, NAME, run.run_id))
    print(f"{NAME}: test accuracy {metrics['test_accuracy']:.4f}; strongest maps {strongest}; "
          f"top-{config.top_k} maps " + ", ".join(
              f"{block} #{info['feature']}" for block, info in metrics["top_activations"].items()))
    return run.finish(metrics)


def _most_active(projector: deconv.Deconvnet, dataset: tf.data.Dataset, layer: str) -> int:
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
        row = [image, *(deconv.to_display(projections[block][index:index + 1])[0] for block in projections)]
        rows.append(np.stack(row))
        captions.append([names[int(labels[index])], *(
            f"{block}" + (f" map {features[block][index]}" if features else " all maps")
            for block in projections)])
    visualization.image_table(rows, path, cell_titles=captions, title=f"Deconvnet: {title}")


def _top_grid(top, names, path) -> None:
    """The paper's figure 2 for one feature map: per example, the image with the part its
    strongest activation sees outlined, that patch, and the projection of the activation over
    the same patch; three examples per row."""
    displayed = deconv.to_display(top.projections)
    rows, captions, boxes = [], [], []
    for index in range(len(top.images)):
        if index % 3 == 0:
            rows.append([])
            captions.append([])
            boxes.append([])
        upper, left, lower, right = deconv.support_box(top.projections[index])
        rows[-1] += [top.images[index], top.images[index][upper:lower, left:right],
                     displayed[index][upper:lower, left:right]]
        name = names[int(top.labels[index])] if top.labels is not None else ""
        captions[-1] += [f"{name} {top.activations[index]:.2f}", "patch", "projection"]
        boxes[-1] += [(upper, left, lower, right), None, None]
    visualization.image_table(
        rows, path, cell_titles=captions, boxes=boxes,
        title=f"Deconvnet: top {len(top.images)} test images of {top.layer} map {top.feature}")
