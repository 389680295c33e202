"""2-D maps of feature vectors (PCA; t-SNE with openTSNE or scikit-learn) and how well they
keep classes apart (silhouette, leave-one-out k-NN accuracy)."""

from __future__ import annotations

import os

import numpy as np
import sklearn.decomposition
import sklearn.manifold
import sklearn.metrics
import sklearn.neighbors
import threadpoolctl

from keras_labs.labs.embeddings.config import EARLY_EXAGGERATION_ITERATIONS, resolve_tsne


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pca_2d(vectors: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The first two principal components of `vectors` ((N, D) features): an (N, 2) map."""
    return sklearn.decomposition.PCA(n_components=2, random_state=seed).fit_transform(vectors)


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
        pca = sklearn.decomposition.PCA(n_components=components, random_state=seed)
        vectors = pca.fit_transform(vectors)
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
        tsne = sklearn.manifold.TSNE(n_components=2, perplexity=perplexity,
                                     learning_rate=learning_rate, early_exaggeration=12.0,
                                     max_iter=iterations, init="pca", method="barnes_hut",
                                     n_jobs=threads, random_state=seed)
        embedding = tsne.fit_transform(vectors)
    return embedding.astype(np.float32)


def knn_accuracy(vectors: np.ndarray, labels: np.ndarray, neighbors: int = 10) -> float:
    """Leave-one-out k-NN accuracy: each point's class voted by its k nearest other points.

    Ties go to the smallest class index.
    """
    labels = np.asarray(labels).astype(int)
    index = sklearn.neighbors.NearestNeighbors(n_neighbors=neighbors).fit(vectors)
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
        scores[f"silhouette_{name}"] = float(sklearn.metrics.silhouette_score(vectors, labels))
    for name, vectors in spaces.items():
        scores[f"knn_accuracy_{name}"] = knn_accuracy(vectors, labels, neighbors)
    return scores
