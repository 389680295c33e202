"""Lab `embeddings`: what a CNN's penultimate layer learns, seen in 2-D and measured.

Seed report 000, exercise 3 and report 001, exercise 3 trained a small CNN on MNIST and drew
PCA and t-SNE maps of its features before and after training. Pictures alone are easy to
over-read, so this lab also scores them: the silhouette of the classes and the leave-one-out
k-NN accuracy, in the raw feature space and in each 2-D map.

The same network (same architecture, same seed, so the same initial weights) is embedded twice:
untrained, then after training. Features come from the layer named "features" of
`models.mnist_cnn` on a fixed test subset (the first `test_examples` test images). t-SNE runs
on the first `pca_components` principal components, with openTSNE when it is installed (its
FFT-accelerated gradient maps 10,000 points in about half the CPU time scikit-learn's
Barnes-Hut needs; see scripts/benchmark_embeddings.py) and scikit-learn otherwise. The run
leaves one four-panel figure (untrained/trained x PCA/t-SNE), the scores in metrics.json, and
the features, labels and a sprite for TensorBoard's Projector in tb/.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import time

import keras
import numpy as np
import threadpoolctl
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from keras_labs import ConfigError, data, models, training, visualization
from keras_labs.config import LabConfig, option

NAME = "embeddings"
DESCRIPTION = ("untrained vs trained MNIST CNN features in PCA/t-SNE, silhouette and k-NN "
               "(report 000 ex. 3, 001 ex. 3); Projector files")

DATASETS = ("mnist",)
TSNE_IMPLEMENTATIONS = ("auto", "opentsne", "sklearn")
EARLY_EXAGGERATION_ITERATIONS = 250


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    epochs: int = option(3, minimum=1, help="passes over the training data")
    batch_size: int = option(128, minimum=1, maximum=65536, help="examples per step")
    learning_rate: float = option(2e-3, positive=True, maximum=10.0,
                                  help="peak Adam learning rate (cosine decay to 0)")
    train_examples: int = option(0, minimum=0, help="use only the first N training examples (0: all)")
    test_examples: int = option(10000, minimum=0,
                                help="embed the first N test images (0: the whole test split)")
    pca_components: int = option(50, minimum=2, help="PCA dimensions t-SNE starts from")
    perplexity: float = option(30.0, positive=True, help="t-SNE perplexity")
    tsne_iterations: int = option(750, minimum=EARLY_EXAGGERATION_ITERATIONS + 1,
                                  help="t-SNE iterations, the first 250 with early exaggeration")
    tsne: str = option("auto", choices=TSNE_IMPLEMENTATIONS,
                       help="t-SNE implementation; auto: openTSNE if installed, else scikit-learn")
    neighbors: int = option(10, minimum=1, help="k of the leave-one-out k-NN accuracy")
    threads: int = option(1, minimum=0, help="t-SNE threads (0: every CPU this process may use); "
                                             "on a shared CPU one thread is the fastest")

    def check(self) -> None:
        if self.test_examples and self.test_examples <= 3 * self.perplexity:
            raise ConfigError(f"test_examples={self.test_examples} is too few for "
                              f"perplexity={self.perplexity}; use more than {3 * self.perplexity:g}")
        if self.tsne == "opentsne" and not opentsne_available():
            raise ConfigError("tsne='opentsne' is not installed; pip install openTSNE, or use "
                              "tsne=sklearn")


PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=1, train_examples=8000, test_examples=2000),
}
DEFAULT_PRESET = "seed"


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Embeds an MNIST CNN's features before and after training; returns the metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    subset = data.first(datasets["test"], config.test_examples)
    images, labels = data.to_numpy(subset)
    train = data.image_pipeline(data.first(datasets["train"], config.train_examples),
                                batch_size=config.batch_size, training=True, seed=config.seed)
    test = data.image_pipeline(subset, batch_size=512, training=False)

    steps = max(int(train.cardinality()), 1) * config.epochs
    with strategy.scope():
        model = models.mnist_cnn()
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Shares its layers with `model`: the same extractor reads the untrained and trained weights.
    extractor = keras.Model(model.input, model.get_layer("features").output, name="extractor")

    features = {"untrained": extractor.predict(test, verbose=0)}
    # The embedded subset doubles as the per-epoch validation curve; nothing is selected on it.
    training.fit(run, model, train, epochs=config.epochs, validation_data=test)
    features["trained"] = extractor.predict(test, verbose=0)
    _, predictions, _ = training.predict_labels(model, test)

    implementation = resolve_tsne(config.tsne)
    metrics = {"examples": int(len(labels)), "feature_dimensions": int(features["trained"].shape[1]),
               "subset_test_accuracy": float((predictions == labels).mean()),
               "tsne_implementation": implementation, "tsne_time_s": {}}
    panels = {}
    for state, vectors in features.items():
        pca = PCA(n_components=2, random_state=config.seed).fit_transform(vectors)
        start = time.perf_counter()
        tsne = tsne_2d(vectors, perplexity=config.perplexity, seed=config.seed,
                       pca_components=config.pca_components, iterations=config.tsne_iterations,
                       implementation=implementation, threads=config.threads or None)
        metrics["tsne_time_s"][state] = round(time.perf_counter() - start, 2)
        metrics[state] = embedding_scores({"features": vectors, "pca": pca, "tsne": tsne}, labels,
                                          neighbors=config.neighbors)
        panels[f"{state}: PCA (silhouette {metrics[state]['silhouette_pca']:.2f}, "
               f"{config.neighbors}-NN {metrics[state]['knn_accuracy_pca']:.1%})"] = pca
        panels[f"{state}: t-SNE (silhouette {metrics[state]['silhouette_tsne']:.2f}, "
               f"{config.neighbors}-NN {metrics[state]['knn_accuracy_tsne']:.1%})"] = tsne
    beats = {score: metrics["trained"][score] > metrics["untrained"][score]
             for score in metrics["trained"]}
    metrics["trained_beats_untrained"] = beats
    metrics["trained_beats_untrained_on_every_score"] = all(beats.values())

    visualization.plot_embeddings(
        panels, labels, data.class_names("mnist"), run.plot_path("embeddings"),
        title=f"'features' layer of the MNIST CNN, {len(labels):,} test images "
              f"({source.kind} data, t-SNE: {implementation})")
    visualization.plot_history(visualization.read_history(run.history_path),
                               run.plot_path("curves"), title=f"{NAME} ({source.kind} data)")
    metrics["projector_config"] = visualization.write_projector(
        run.tb_dir, {f"{state}_features": vectors for state, vectors in features.items()},
        labels.tolist(), images)

    for state in features:
        print(f"{NAME}: {state:9s} " + "  ".join(f"{key} {value:.3f}"
                                                 for key, value in metrics[state].items()))
    return run.finish(metrics)


# --------------------------------------------------------------------------------------------
# Embedding and scoring


def opentsne_available() -> bool:
    return importlib.util.find_spec("openTSNE") is not None


def resolve_tsne(implementation: str) -> str:
    """The t-SNE implementation to use: `auto` picks openTSNE when it is installed."""
    if implementation not in TSNE_IMPLEMENTATIONS:
        raise ConfigError(f"tsne={implementation!r} is not valid; valid values: "
                          f"{', '.join(TSNE_IMPLEMENTATIONS)}")
    if implementation == "auto":
        return "opentsne" if opentsne_available() else "sklearn"
    return implementation


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def tsne_2d(vectors: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
            pca_components: int = 50, iterations: int = 750, implementation: str = "auto",
            threads: int | None = None) -> np.ndarray:
    """A 2-D t-SNE map of `vectors`, computed on their first `pca_components` principal components.

    Both implementations start from the PCA layout, use the same perplexity, learning rate
    (n / 12) and number of iterations (the first 250 with early exaggeration 12), so they
    differ only in how they approximate the gradient: scikit-learn always uses a Barnes-Hut
    tree; openTSNE does too below 10,000 points and from there on interpolates the repulsive
    forces on a grid with FFTs, whose cost grows linearly with the points.

    Args:
        vectors: (N, D) features.
        perplexity: The effective number of neighbours each point attends to.
        seed: Seeds PCA and t-SNE.
        pca_components: Dimensions kept before t-SNE (fewer when D or N is smaller).
        iterations: Total optimization iterations.
        implementation: "opentsne", "sklearn" or "auto".
        threads: CPU threads (default: every CPU this process may use). On a machine whose
            cores are busy with other work, more than one thread costs time: every iteration
            waits at a barrier for the slowest thread.

    Returns:
        (N, 2) float32 coordinates.
    """
    implementation = resolve_tsne(implementation)
    threads = threads or cpu_count()
    vectors = np.asarray(vectors, dtype=np.float32)
    components = min(pca_components, vectors.shape[1], len(vectors))
    if components < vectors.shape[1]:
        vectors = PCA(n_components=components, random_state=seed).fit_transform(vectors)
    learning_rate = max(len(vectors) / 12.0, 50.0)
    if implementation == "opentsne":
        import openTSNE

        embedding = openTSNE.TSNE(
            n_components=2, perplexity=perplexity, learning_rate=learning_rate,
            early_exaggeration_iter=EARLY_EXAGGERATION_ITERATIONS, early_exaggeration=12,
            n_iter=iterations - EARLY_EXAGGERATION_ITERATIONS, initialization="pca",
            negative_gradient_method="auto", n_jobs=threads, random_state=seed,
        ).fit(vectors)
        return np.asarray(embedding, dtype=np.float32)
    # n_jobs only reaches the neighbour search; the gradient runs on OpenMP threads.
    with threadpoolctl.threadpool_limits(limits=threads, user_api="openmp"):
        embedding = TSNE(n_components=2, perplexity=perplexity, learning_rate=learning_rate,
                         early_exaggeration=12.0, max_iter=iterations, init="pca",
                         method="barnes_hut", n_jobs=threads, random_state=seed).fit_transform(vectors)
    return embedding.astype(np.float32)


def knn_accuracy(vectors: np.ndarray, labels: np.ndarray, neighbors: int = 10) -> float:
    """Leave-one-out k-NN accuracy: each point's class voted by its k nearest other points.

    Ties go to the smallest class index.
    """
    labels = np.asarray(labels).astype(int)
    index = NearestNeighbors(n_neighbors=neighbors).fit(vectors)
    # Without a query, kneighbors leaves every point out of its own neighbour list.
    _, nearest = index.kneighbors()
    votes = np.zeros((len(labels), labels.max() + 1), dtype=np.int32)
    np.add.at(votes, (np.repeat(np.arange(len(labels)), neighbors), labels[nearest].ravel()), 1)
    return float((votes.argmax(axis=1) == labels).mean())


def embedding_scores(spaces: dict[str, np.ndarray], labels: np.ndarray,
                     neighbors: int = 10) -> dict[str, float]:
    """Silhouette (in [-1, 1]) and leave-one-out k-NN accuracy of the classes in each space.

    Returns:
        {"silhouette_<space>": ..., ..., "knn_accuracy_<space>": ...}.
    """
    scores = {}
    for name, vectors in spaces.items():
        scores[f"silhouette_{name}"] = float(silhouette_score(vectors, labels))
    for name, vectors in spaces.items():
        scores[f"knn_accuracy_{name}"] = knn_accuracy(vectors, labels, neighbors)
    return scores
