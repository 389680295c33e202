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
the features, labels and a sprite for TensorBoard's Projector in tb/. The training curves are
scored on a seeded `validation_fraction` of the training split, never on the embedded test
images. The reports' claim, that the trained network's features cluster by class and the
untrained one's do not, is checked per map: `trained_beats_untrained_tsne` and
`trained_beats_untrained_pca` are True when training raised both the silhouette and the k-NN
accuracy of that map.
"""

from __future__ import annotations

import dataclasses
import time

from keras_labs import ConfigError, data, models, projection
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow, matplotlib, sklearn): NAME, Config and PRESETS read without them.
keras, sk_decomposition, training, visualization = lazy_import(
    "keras", "sklearn.decomposition", "keras_labs.training", "keras_labs.visualization")

NAME = "embeddings"
DESCRIPTION = ("untrained vs trained MNIST CNN features in PCA/t-SNE, silhouette and k-NN "
               "(report 000 ex. 3, 001 ex. 3); Projector files")

DATASETS = ("mnist",)


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    # What is embedded, and how it is mapped and scored.
    test_examples: int = option(10000, minimum=0,
                                help="embed the first N test images (0: the whole test split)")
    pca_components: int = option(50, minimum=2, help="PCA dimensions t-SNE starts from")
    perplexity: float = option(30.0, positive=True, help="t-SNE perplexity")
    tsne_iterations: int = option(750, minimum=projection.EARLY_EXAGGERATION_ITERATIONS + 1,
                                  help="t-SNE iterations, the first 250 with early exaggeration")
    tsne: str = option("auto", choices=projection.TSNE_IMPLEMENTATIONS,
                       help="t-SNE implementation; auto: openTSNE if installed, else scikit-learn")
    neighbors: int = option(10, minimum=1, help="k of the leave-one-out k-NN accuracy")
    threads: int = option(1, minimum=0, help="t-SNE threads (0: every CPU this process may use); "
                                             "on a shared CPU one thread is the fastest")
    # How the network is trained between the two embeddings.
    epochs: int = common.epochs(3)
    batch_size: int = common.batch_size(128)
    learning_rate: float = common.learning_rate(2e-3, "peak Adam learning rate (cosine decay to 0)")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()

    def check(self) -> None:
        if self.test_examples and self.test_examples <= 3 * self.perplexity:
            raise ConfigError(f"test_examples={self.test_examples} is too few for "
                              f"perplexity={self.perplexity}; use more than {3 * self.perplexity:g}")
        if self.tsne == "opentsne" and not projection.opentsne_available():
            raise ConfigError("tsne='opentsne' is not installed; pip install openTSNE, or use "
                              "tsne=sklearn")


PRESETS = {
    "seed": Config(),
    # Report 001, exercise 3: "a basic CNN model trained for 10 epochs on the MNIST dataset".
    "report001": Config(epochs=10),
    "quick": Config(epochs=1, train_examples=8000, test_examples=2000),
}
DEFAULT_PRESET = "seed"

SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 000-ex3-tsne | seed | trained_beats_untrained_tsne | qualitative | t-SNE pictures, untrained vs trained | t-SNE of the untrained and the trained network's features: the trained ones cluster by class | unit=% |
| 000-ex3-pca | seed | trained_beats_untrained_pca | qualitative | PCA pictures, untrained vs trained | PCA of the untrained and the trained network's features: the trained ones cluster by class | unit=% |
| 001-ex3-tsne-pca | report001 | trained_beats_untrained_tsne_and_pca | qualitative | PCA and t-SNE after 10 epochs | a basic CNN trained 10 epochs on MNIST, then PCA and t-SNE of its features | unit=% |
""", notes={
    '000-ex3-tsne':
        "the pictures scored: training must raise the t-SNE map's silhouette and 10-NN "
        'accuracy',
    '000-ex3-pca':
        "the pictures scored: training must raise the PCA map's silhouette and 10-NN "
        'accuracy',
})
# Estimated minutes on the 2-core CPU with full MNIST: training (~1 min per epoch) and two
# t-SNE maps of 10,000 points.
PRESET_MINUTES = {"seed": 7, "report001": 14}


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Embeds an MNIST CNN's features before and after training, and scores both embeddings.

    Returns:
        The metrics written to metrics.json: silhouette and k-NN accuracy per state and space.
    """
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    subset = data.first(datasets["test"], config.test_examples)
    images, labels = data.to_numpy(subset)
    train_part, validation_part, split = data.split_validation(
        data.first(datasets["train"], config.train_examples), config.validation_fraction,
        seed=config.seed)
    train = data.image_pipeline(train_part, batch_size=config.batch_size, training=True,
                                seed=config.seed)
    validation = data.evaluation_pipeline(validation_part, split, replicas=strategy.num_replicas_in_sync)
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
    history = training.fit(run, model, train, epochs=config.epochs, validation_data=validation,
                           probe=data.probe_batch(
                               train_part if validation_part is None else validation_part))
    features["trained"] = extractor.predict(test, verbose=0)
    _, predictions, _ = training.predict_labels(model, test)

    implementation = projection.resolve_tsne(config.tsne)
    metrics = {"examples": int(len(labels)), "feature_dimensions": int(features["trained"].shape[1]),
               # On the embedded test images, scored once, after training.
               "test_accuracy": float((predictions == labels).mean()),
               "validation_split": split, "tsne_implementation": implementation,
               "tsne_time_s": {}}
    if validation is not None:
        metrics["validation_accuracy"] = float(history.history["val_accuracy"][-1])
        metrics["validation_loss"] = float(history.history["val_loss"][-1])
    panels = {}
    for state, vectors in features.items():
        pca = sk_decomposition.PCA(n_components=2, random_state=config.seed).fit_transform(vectors)
        start = time.perf_counter()
        tsne = projection.tsne_2d(vectors, perplexity=config.perplexity, seed=config.seed,
                                  pca_components=config.pca_components,
                                  iterations=config.tsne_iterations,
                                  implementation=implementation, threads=config.threads or None)
        metrics["tsne_time_s"][state] = round(time.perf_counter() - start, 2)
        metrics[state] = projection.embedding_scores(
            {"features": vectors, "pca": pca, "tsne": tsne}, labels, neighbors=config.neighbors)
        panels[f"{state}: PCA (silhouette {metrics[state]['silhouette_pca']:.2f}, "
               f"{config.neighbors}-NN {metrics[state]['knn_accuracy_pca']:.1%})"] = pca
        panels[f"{state}: t-SNE (silhouette {metrics[state]['silhouette_tsne']:.2f}, "
               f"{config.neighbors}-NN {metrics[state]['knn_accuracy_tsne']:.1%})"] = tsne
    beats = {score: metrics["trained"][score] > metrics["untrained"][score]
             for score in metrics["trained"]}
    metrics["trained_beats_untrained"] = beats
    metrics["trained_beats_untrained_on_every_score"] = all(beats.values())
    for space in ("tsne", "pca"):
        metrics[f"trained_beats_untrained_{space}"] = (beats[f"silhouette_{space}"]
                                                       and beats[f"knn_accuracy_{space}"])
    metrics["trained_beats_untrained_tsne_and_pca"] = (metrics["trained_beats_untrained_tsne"]
                                                       and metrics["trained_beats_untrained_pca"])

    visualization.plot_embeddings(
        panels, labels, data.class_names("mnist"), run.plot_path("embeddings"),
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


# --------------------------------------------------------------------------------------------
# Embedding and scoring
