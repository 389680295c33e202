"""The adversarial lab: targeted attacks keep pixels and budgets, succeed, and reject bad input."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_labs import ConfigError, attacks, data, models
from keras_labs.labs import adversarial


@pytest.fixture(scope="module")
def classifier_and_fours():
    """A small CNN trained briefly on the embedded MNIST sample, and test 4s it classifies right."""
    keras.utils.set_random_seed(0)
    datasets, _ = data.load("mnist", ("train", "test"), data="sample")
    images, labels = data.to_numpy(datasets["train"])
    model = models.mnist_cnn(filters=(8, 16), dense_units=32, dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images.astype(np.float32) / 255.0, labels, batch_size=64, epochs=2, verbose=0)
    test_images, test_labels = data.to_numpy(datasets["test"])
    fours = test_images[test_labels == 4].astype(np.float32) / 255.0
    fours = fours[model.predict(fours, verbose=0).argmax(axis=1) == 4][:24]
    assert len(fours) >= 10  # the classifier learned something
    return model, fours


@pytest.mark.parametrize("norm,epsilon", [("linf", 0.1), ("l2", 1.5)])
def test_pgd_stays_in_pixel_range_and_budget(classifier_and_fours, norm, epsilon):
    model, fours = classifier_and_fours
    found = attacks.pgd_attack(model, fours, 9, norm=norm, epsilon=epsilon, steps=15)
    assert found.shape == fours.shape and found.dtype == np.float32
    assert found.min() >= 0.0 and found.max() <= 1.0
    delta = (found - fours).reshape(len(fours), -1)
    if norm == "linf":
        assert np.abs(delta).max() <= epsilon + 1e-6
    else:
        assert np.sqrt((delta ** 2).sum(axis=1)).max() <= epsilon + 1e-4
    assert np.abs(delta).max() > 0  # it did move


def test_pgd_turns_fours_into_nines_with_enough_budget(classifier_and_fours):
    model, fours = classifier_and_fours
    weak = attacks.summarize(model, fours, attacks.pgd_attack(
        model, fours, 9, norm="linf", epsilon=0.01, steps=10), 9)
    strong = attacks.summarize(model, fours, attacks.pgd_attack(
        model, fours, 9, norm="linf", epsilon=0.3, steps=40), 9)
    assert strong["success_rate"] >= 0.95
    assert strong["success_rate"] > weak["success_rate"]
    assert strong["max_linf"] <= 0.3 + 1e-6 and strong["mean_confidence"] > 0.5
    assert 0.0 <= strong["min_pixel"] and strong["max_pixel"] <= 1.0


def test_unconstrained_optimization_reaches_target_from_noise_and_zeros(classifier_and_fours):
    model, _ = classifier_and_fours
    starts = np.concatenate([np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32),
                             np.zeros((1, 28, 28, 1), np.float32)])
    found, curve = attacks.unconstrained_attack(model, starts, 9, steps=300, step_length=0.3,
                                                    stop_confidence=0.995)
    confidence = model.predict(found, verbose=0)[:, 9]
    assert (confidence >= 0.99).all(), confidence
    assert found.min() >= 0.0 and found.max() <= 1.0
    assert curve.shape == (301,) and curve[-1] > curve[0]


def test_gradient_map_matches_finite_differences(classifier_and_fours):
    model, fours = classifier_and_fours
    # A little noise: in the flat black background, max-pool windows hold exact ties, where
    # p(9) has no gradient for finite differences to find.
    noise = np.random.default_rng(0).random(fours[:4].shape, dtype=np.float32)
    images = 0.97 * fours[:4] + 0.03 * noise
    gradient = attacks.gradient_map(model, images, 9).astype(np.float64)
    assert gradient.shape == (4, 28, 28, 1)
    h = 1e-3  # large against float32 round-off in p(9), small against the curvature
    rows = np.arange(len(images))

    def p9(direction, step):
        return np.asarray(model(images + step * direction.astype(np.float32), training=False),
                          np.float64)[:, 9]

    # Single pixels: each image's eight steepest ones, and the middle one. A ReLU or max-pool
    # kink within h of a pixel bends p(9) there; autodiff takes the slope of the side it is
    # on, so the gradient must lie between the forward and the backward difference.
    flat = gradient.reshape(len(images), -1)
    scale = np.abs(flat).max(axis=1)  # each image's steepest slope
    smooth = 0
    for pixel in [*np.argsort(np.abs(flat), axis=1)[:, -8:].T, np.full(len(images), 14 * 28 + 14)]:
        direction = np.zeros((len(images), 784))
        direction[rows, pixel] = 1.0
        direction = direction.reshape(images.shape)
        centre = p9(direction, 0.0)
        forward, backward = (p9(direction, h) - centre) / h, (centre - p9(direction, -h)) / h
        got = flat[rows, pixel]
        tolerance = 1e-2 * scale + 1e-2 * np.abs(got)
        assert (np.minimum(forward, backward) - tolerance <= got).all(), (got, forward, backward)
        assert (got <= np.maximum(forward, backward) + tolerance).all(), (got, forward, backward)
        smooth += int((np.abs(forward - backward) <= 1e-2 * scale).sum())
    assert smooth >= len(images) * 4  # most pixels checked sit away from any kink
    # The whole map: the slope along the gradient's own direction is its norm.
    norms = np.sqrt((gradient ** 2).sum(axis=(1, 2, 3)))
    assert (norms > 0).all()
    unit = gradient / norms[:, None, None, None]
    along = (p9(unit, h) - p9(unit, -h)) / (2 * h)
    np.testing.assert_allclose(along, norms, rtol=2e-2)


@pytest.mark.parametrize("images,message", [
    (np.zeros((2, 28, 28), np.float32), r"shape \(2, 28, 28\)"),
    (np.zeros((2, 784), np.float32), r"shape \(2, 784\)"),
    (np.zeros((0, 28, 28, 1), np.float32), r"N >= 1"),
    (np.full((1, 28, 28, 1), 255, np.uint8), r"\[0, 1\]; got \[255, 255\] \(uint8"),
    (np.full((1, 28, 28, 1), -0.5, np.float32), r"\[0, 1\]; got \[-0.5, -0.5\]"),
    (np.full((1, 28, 28, 1), np.nan, np.float32), "NaN"),
    (np.array([["a"]]), "must be numbers"),
])
def test_bad_images_are_rejected_clearly(classifier_and_fours, images, message):
    model, _ = classifier_and_fours
    for attack in (lambda x: attacks.pgd_attack(model, x, 9, norm="linf", epsilon=0.1, steps=1),
                   lambda x: attacks.unconstrained_attack(model, x, 9, steps=1),
                   lambda x: attacks.gradient_map(model, x, 9)):
        with pytest.raises(ValueError, match=message):
            attack(images)


def test_bad_attack_settings_are_rejected(classifier_and_fours):
    model, fours = classifier_and_fours
    with pytest.raises(ValueError, match="target=10"):
        attacks.pgd_attack(model, fours, 10, norm="linf", epsilon=0.1)
    with pytest.raises(ValueError, match="norm='l1'"):
        attacks.pgd_attack(model, fours, 9, norm="l1", epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon=0"):
        attacks.pgd_attack(model, fours, 9, norm="l2", epsilon=0)
    with pytest.raises(ConfigError, match="source_class"):
        dataclasses.replace(adversarial.PRESETS["quick"], target_class=4).validate()


def test_tiny_run_writes_metrics_and_pictures(tmp_path):
    config = dataclasses.replace(
        adversarial.PRESETS["quick"], data="sample", attack_examples=12, linf_epsilons=(0.1, 0.3),
        l2_epsilons=(2.0,), pgd_steps=10, bisection_steps=1, unconstrained_steps=30,
        noise_examples=2, classifier_examples=512, show_examples=2,
        export_dir=str(tmp_path / "sm")).validate()
    metrics = adversarial.run(config, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(on_disk["success_rate"]) == {"pgd_linf", "pgd_l2", "unconstrained"}
    assert set(on_disk["success_rate"]["pgd_linf"]) == {"0.1", "0.3"}
    for case in ("noise", "zeros"):
        assert 0.0 <= on_disk[case]["confidence"] <= 1.0
        assert on_disk[case]["examples"] == (2 if case == "noise" else 1)
    assert "smallest_linf_epsilon_for_100_percent" in on_disk
    for attack in on_disk["attacks"]["pgd_linf"].values():
        assert attack["min_pixel"] >= 0.0 and attack["max_pixel"] <= 1.0
    assert on_disk["attacks"]["pgd_linf"]["0.1"]["max_linf"] <= 0.1 + 1e-6
    assert metrics["source_examples"] == 12
    plots = {path.name for path in (tmp_path / "run" / "plots").iterdir()}
    assert plots >= {"success_vs_epsilon.png", "examples_pgd_linf.png", "examples_pgd_l2.png",
                     "examples_unconstrained.png", "noise_and_zeros.png",
                     "confidence_over_steps.png"}
