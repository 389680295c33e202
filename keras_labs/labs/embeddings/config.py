"""The embeddings lab's name, config and presets, and the t-SNE implementations it may use
(no TensorFlow, no scikit-learn)."""

from __future__ import annotations

import dataclasses
import importlib.util

from keras_labs import ConfigError
from keras_labs.config import LabConfig, common, option

NAME = "embeddings"
DESCRIPTION = ("untrained vs trained MNIST CNN features in PCA/t-SNE, silhouette and k-NN "
               "(report 000 ex. 3, 001 ex. 3); Projector files")

DATASETS = ("mnist",)

TSNE_IMPLEMENTATIONS = ("auto", "opentsne", "sklearn")
EARLY_EXAGGERATION_ITERATIONS = 250


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


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    # What is embedded, and how it is mapped and scored.
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
        if self.tsne == "opentsne" and not opentsne_available():
            raise ConfigError("tsne='opentsne' is not installed; pip install openTSNE, or use "
                              "tsne=sklearn")


PRESETS = {
    "seed": Config(),
    # Report 001, exercise 3: "a basic CNN model trained for 10 epochs on the MNIST dataset".
    "report001": Config(epochs=10),
    "quick": Config(epochs=1, train_examples=8000, test_examples=2000),
}
DEFAULT_PRESET = "seed"
