"""The embeddings lab: four-panel figure, silhouette and k-NN scores, Projector files, and the
t-SNE and scoring helpers."""

import dataclasses
import json

import matplotlib.image
import numpy as np
import pytest
from conftest import tiny, tiny_run_fixture
from google.protobuf import text_format
from tensorboard.plugins import projector

from keras_labs import ConfigError
from keras_labs.labs.embeddings import config as lab_config
from keras_labs.labs.embeddings import experiment, projection

TINY = tiny("embeddings")
SPACES = ("features", "pca", "tsne")


tiny_run = tiny_run_fixture("embeddings")


def test_scores_for_both_networks_in_every_space(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    for state in ("untrained", "trained"):
        scores = on_disk[state]
        assert set(scores) == {f"{kind}_{space}" for kind in ("silhouette", "knn_accuracy")
                               for space in SPACES}
        assert all(-1.0 <= scores[f"silhouette_{space}"] <= 1.0 for space in SPACES)
        assert all(0.0 <= scores[f"knn_accuracy_{space}"] <= 1.0 for space in SPACES)
    assert set(on_disk["trained_beats_untrained"]) == set(on_disk["trained"])
    assert on_disk["examples"] == 300 and on_disk["feature_dimensions"] == 128
    assert on_disk["tsne_implementation"] in ("opentsne", "sklearn")
    assert on_disk["data"]["mnist"]["kind"] == "sample"


def test_curves_are_on_validation_and_the_claims_are_booleans(tiny_run):
    workdir, metrics = tiny_run
    # 512 training examples: a seeded 10% held out for the curves, apart from the 300 embedded
    # test images (accuracy on 51 examples: a multiple of 1/51).
    assert metrics["validation_split"] == {"fraction": 0.1, "seed": 0, "train_examples": 461,
                                           "validation_examples": 51}
    header, *rows = (workdir / "history.csv").read_text().splitlines()
    last = dict(zip(header.split(","), rows[-1].split(","), strict=True))
    assert metrics["validation_accuracy"] == pytest.approx(float(last["val_accuracy"]))
    assert round(metrics["validation_accuracy"] * 51, 4).is_integer()
    assert round(metrics["test_accuracy"] * 300, 4).is_integer()
    beats = metrics["trained_beats_untrained"]
    for space in ("tsne", "pca"):
        assert metrics[f"trained_beats_untrained_{space}"] == (
            beats[f"silhouette_{space}"] and beats[f"knn_accuracy_{space}"])
    assert metrics["trained_beats_untrained_tsne_and_pca"] == (
        metrics["trained_beats_untrained_tsne"] and metrics["trained_beats_untrained_pca"])
    assert lab_config.PRESETS["report001"].epochs == 10


def test_four_panel_figure_and_curves(tiny_run):
    workdir, _ = tiny_run
    figure = matplotlib.image.imread(workdir / "plots" / "embeddings.png")
    # plot_embeddings draws 5.2 x 4.8 inches per panel at 110 dpi: 2 x 2 panels.
    assert figure.shape[:2] == (round(2 * 4.8 * 110), round(2 * 5.2 * 110))
    assert (workdir / "plots" / "curves.png").is_file()


def test_projector_files(tiny_run):
    workdir, metrics = tiny_run
    tb = workdir / "tb"
    config = text_format.Parse((tb / "projector_config.pbtxt").read_text(),
                               projector.ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == ["untrained_features", "trained_features"]
    labels = (tb / "metadata.tsv").read_text().splitlines()
    assert len(labels) == 300 and set(labels) <= set("0123456789")
    for embedding in config.embeddings:
        vectors = np.loadtxt(tb / embedding.tensor_path, delimiter="\t")
        assert vectors.shape == (300, 128) == tuple(embedding.tensor_shape)
        assert embedding.metadata_path == "metadata.tsv"
        assert list(embedding.sprite.single_image_dim) == [28, 28]
    sprite = matplotlib.image.imread(tb / config.embeddings[0].sprite.image_path)
    assert sprite.shape[:2] == (18 * 28, 18 * 28)  # ceil(sqrt(300)) = 18 images a side
    assert metrics["projector_config"] == str(tb / "projector_config.pbtxt")


def test_knn_accuracy_leaves_each_point_out():
    # Two copies of each point, with different labels: with k=1 each point sees only its twin.
    points = np.repeat(np.arange(10, dtype=np.float32)[:, None] * 10, 2, axis=0)
    labels = np.tile([0, 1], 10)
    assert projection.knn_accuracy(points, labels, neighbors=1) == 0.0
    separated = np.concatenate([np.zeros((20, 2)), np.ones((20, 2)) * 5])
    separated += np.random.default_rng(0).normal(scale=0.1, size=separated.shape)
    assert projection.knn_accuracy(separated, np.repeat([0, 1], 20), neighbors=3) == 1.0


def _blobs(count=300, dimensions=20, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    centers = rng.normal(scale=6.0, size=(3, dimensions))
    return (centers[labels] + rng.normal(size=(count, dimensions))).astype(np.float32), labels


@pytest.mark.parametrize("implementation", ["sklearn", "opentsne"])
def test_tsne_implementations_separate_clear_clusters(implementation):
    if implementation == "opentsne" and not lab_config.opentsne_available():
        pytest.skip("openTSNE is not installed")
    points, labels = _blobs()
    layout = projection.tsne_2d(points, perplexity=20, iterations=300, pca_components=10,
                                implementation=implementation, threads=1)
    assert layout.shape == (300, 2) and np.isfinite(layout).all()
    scores = projection.embedding_scores({"tsne": layout}, labels, neighbors=5)
    assert scores["knn_accuracy_tsne"] == 1.0 and scores["silhouette_tsne"] > 0.5


def test_config_rejects_a_subset_too_small_for_the_perplexity(monkeypatch):
    with pytest.raises(ConfigError, match="test_examples=50"):
        dataclasses.replace(TINY, test_examples=50).validate()
    monkeypatch.setattr(lab_config, "opentsne_available", lambda: False)
    with pytest.raises(ConfigError, match="openTSNE"):
        dataclasses.replace(TINY, tsne="opentsne").validate()
    assert lab_config.resolve_tsne("auto") == "sklearn"


@pytest.mark.realdata
@pytest.mark.slow
def test_trained_beats_untrained_on_every_score_on_real_mnist(real_data_dir, tmp_path):
    config = dataclasses.replace(TINY, data="full", data_dir=real_data_dir("mnist"),
                                 train_examples=10000, test_examples=1000, tsne_iterations=500,
                                 neighbors=10, export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    assert metrics["trained_beats_untrained_on_every_score"], metrics["trained_beats_untrained"]
