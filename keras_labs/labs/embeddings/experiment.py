"""The embeddings experiment: embed an MNIST CNN's features before and after training, map them
to 2-D, score the maps and write the Projector files."""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_labs import optimization, training, visualization
from keras_labs.data import loading
from keras_labs.labs.embeddings import projection
from keras_labs.labs.embeddings.config import NAME, Config, resolve_tsne
from keras_labs.models import cnn


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Embeds an MNIST CNN's features before and after training, and scores both embeddings.

    Returns:
        The metrics written to metrics.json: silhouette and k-NN accuracy per state and space.
    """
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    subset = loading.first(datasets["test"], config.test_examples)
    images, labels = loading.to_numpy(subset)
    train_part, validation_part, split = run.held_out(datasets["train"])
    train = loading.image_pipeline(train_part, batch_size=config.batch_size, training=True,
                                   seed=config.seed)
    validation = loading.evaluation_pipeline(validation_part, split,
                                             replicas=strategy.num_replicas_in_sync)
    test = loading.image_pipeline(subset, batch_size=512, training=False)

    steps = max(int(train.cardinality()), 1) * config.epochs
    with strategy.scope():
        model = _classifier(config, steps)
    # Shares its layers with `model`: the same extractor reads the untrained and trained weights.
    extractor = keras.Model(model.input, model.get_layer("features").output, name="extractor")

    features = {"untrained": extractor.predict(test, verbose=0)}
    history = training.fit(run, model, train, epochs=config.epochs, validation_data=validation,
                           probe=loading.probe_batch(
                               train_part if validation_part is None else validation_part))
    features["trained"] = extractor.predict(test, verbose=0)
    _, predictions, _ = training.predict_labels(model, test)

    implementation = resolve_tsne(config.tsne)
    scores, tsne_times, panels = _maps_and_scores(features, labels, config, implementation)
    metrics = {"examples": int(len(labels)), "feature_dimensions": int(features["trained"].shape[1]),
               # On the embedded test images, scored once, after training.
               "test_accuracy": float((predictions == labels).mean()),
               "validation_split": split, "tsne_implementation": implementation,
               "tsne_time_s": tsne_times}
    if validation is not None:
        metrics["validation_accuracy"] = float(history.history["val_accuracy"][-1])
        metrics["validation_loss"] = float(history.history["val_loss"][-1])
    metrics.update(scores)
    metrics.update(_claims(scores))

    visualization.plot_embeddings(
        panels, labels, loading.class_names("mnist"), run.plot_path("embeddings"),
        title=f"'features' layer of the MNIST CNN, {len(labels):,} test images "
              f"({source.kind} data, t-SNE: {implementation})")
    visualization.plot_run_history(run, title=f"{NAME} ({source.kind} data)")
    metrics["projector_config"] = visualization.write_projector(
        run.tb_dir, {f"{state}_features": vectors for state, vectors in features.items()},
        labels.tolist(), images)

    for state in features:
        print(f"{NAME}: {state:9s} " + "  ".join(f"{key} {value:.3f}"
                                                 for key, value in metrics[state].items()))
    return run.finish(metrics)


def _classifier(config: Config, steps: int) -> keras.Model:
    """The MNIST CNN, compiled with Adam on a cosine decay to 0 over `steps` steps (call it in
    the strategy's scope)."""
    model = cnn.mnist_cnn()
    schedule = optimization.learning_rate_schedule(config.learning_rate, steps, "cosine")
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _maps_and_scores(features: dict[str, np.ndarray], labels: np.ndarray, config: Config,
                     implementation: str) -> tuple[dict, dict, dict]:
    """Maps each state's features to 2-D with PCA and t-SNE, and scores the classes in the
    features and in both maps.

    Returns:
        ({state: scores}, {state: t-SNE seconds}, {panel title: 2-D map}), states in the order
        of `features`.
    """
    scores, tsne_times, panels = {}, {}, {}
    for state, vectors in features.items():
        pca = projection.pca_2d(vectors, seed=config.seed)
        start = time.perf_counter()
        tsne = projection.tsne_2d(vectors, perplexity=config.perplexity, seed=config.seed,
                                  pca_components=config.pca_components,
                                  iterations=config.tsne_iterations,
                                  implementation=implementation, threads=config.threads or None)
        tsne_times[state] = round(time.perf_counter() - start, 2)
        scores[state] = projection.embedding_scores(
            {"features": vectors, "pca": pca, "tsne": tsne}, labels, neighbors=config.neighbors)
        panels[f"{state}: PCA (silhouette {scores[state]['silhouette_pca']:.2f}, "
               f"{config.neighbors}-NN {scores[state]['knn_accuracy_pca']:.1%})"] = pca
        panels[f"{state}: t-SNE (silhouette {scores[state]['silhouette_tsne']:.2f}, "
               f"{config.neighbors}-NN {scores[state]['knn_accuracy_tsne']:.1%})"] = tsne
    return scores, tsne_times, panels


def _claims(scores: dict[str, dict[str, float]]) -> dict:
    """The reports' claim, checked: did training raise each score, and, per map, both its
    silhouette and its k-NN accuracy?"""
    beats = {score: scores["trained"][score] > scores["untrained"][score]
             for score in scores["trained"]}
    claims = {"trained_beats_untrained": beats,
              "trained_beats_untrained_on_every_score": all(beats.values())}
    for space in ("tsne", "pca"):
        claims[f"trained_beats_untrained_{space}"] = (beats[f"silhouette_{space}"]
                                                      and beats[f"knn_accuracy_{space}"])
    claims["trained_beats_untrained_tsne_and_pca"] = (claims["trained_beats_untrained_tsne"]
                                                      and claims["trained_beats_untrained_pca"])
    return claims
