"""The adversarial lab: targeted attacks keep pixels and budgets, succeed, and reject bad input;
the fixed budget takes every step; the universal perturbation sees training images only."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_labs import ConfigError, labs
from keras_labs.data import loading
from keras_labs.labs.adversarial import attacks, experiment
from keras_labs.labs.adversarial import config as lab_config
from keras_labs.models import cnn
from keras_labs.results import ledger


@pytest.fixture(scope="module")
def classifier_and_fours():
    """A small CNN trained briefly on the embedded MNIST sample, and test 4s it classifies right."""
    keras.utils.set_random_seed(0)
    datasets, _ = loading.load("mnist", ("train", "test"), data="sample")
    images, labels = loading.to_numpy(datasets["train"])
    model = cnn.mnist_cnn(filters=(8, 16), dense_units=32, dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images.astype(np.float32) / 255.0, labels, batch_size=64, epochs=2, verbose=0)
    test_images, test_labels = loading.to_numpy(datasets["test"])
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
                   lambda x: attacks.budget_attack(model, x, 9, steps=1, step_size=0.1),
                   lambda x: attacks.universal_perturbation(model, x, 9, epsilon=0.1, steps=1),
                   lambda x: attacks.mean_gradient_map(model, x, 9),
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
    with pytest.raises(ValueError, match="objective='loss'"):
        attacks.budget_attack(model, fours, 9, steps=3, step_size=0.1, objective="loss")
    with pytest.raises(ValueError, match="steps=0"):
        attacks.budget_attack(model, fours, 9, steps=0, step_size=0.1)
    with pytest.raises(ValueError, match="step_size=-0.1"):
        attacks.budget_attack(model, fours, 9, steps=3, step_size=-0.1)
    with pytest.raises(ConfigError, match="source_class"):
        dataclasses.replace(lab_config.PRESETS["quick"], target_class=4).validate()
    with pytest.raises(ConfigError, match=r"universal_epsilons=\(0.2, 0.3\).*validation_fraction=0"):
        dataclasses.replace(lab_config.PRESETS["quick"], validation_fraction=0.0).validate()


def test_tiny_run_writes_metrics_and_pictures(tmp_path, monkeypatch):
    seen = []  # what the universal perturbation is fitted on
    fit = attacks.universal_perturbation
    monkeypatch.setattr(attacks, "universal_perturbation", lambda model, images, *args, **kwargs:
                        seen.append(np.asarray(images)) or fit(model, images, *args, **kwargs))
    config = dataclasses.replace(
        lab_config.PRESETS["quick"], data="sample", attack_examples=12, linf_epsilons=(0.1, 0.3),
        l2_epsilons=(2.0,), pgd_steps=10, bisection_steps=1, unconstrained_steps=30,
        budget_steps=15, budget_step_size=0.1, universal_steps=20, noise_examples=2,
        classifier_examples=512, show_examples=2,
        export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(on_disk["success_rate"]) == {"pgd_linf", "pgd_l2", "unconstrained"}
    assert set(on_disk["success_rate"]["pgd_linf"]) == {"0.1", "0.3"}
    budget = on_disk["budget"]
    assert (budget["steps"], budget["step_size"], budget["early_stop"]) == (15, 0.1, False)
    for case, examples in (("noise", 2), ("zeros", 1), ("source", 12)):
        result = budget[case]
        assert result["examples"] == examples
        assert 0.0 <= result["confidence_min"] <= result["confidence"] <= 1.0
        # Every start took the whole budget: one point per step, the last one the final figure.
        assert len(result["curve"]) == 15
        assert result["curve"][-1] == pytest.approx(result["confidence"], abs=1e-6)
        reached = result["steps_to_99"]
        if reached is None:
            assert max(result["curve"]) < 0.99 and result["start_confidence"] < 0.99
        elif reached > 0:
            assert result["curve"][reached - 1] >= 0.99 - 1e-6
            assert max([result["start_confidence"], *result["curve"][:reached - 1]]) < 0.99
    assert on_disk["fours_fooled"] == (budget["source"]["success_rate"] >= 0.9)
    universal = on_disk["universal"]
    assert universal["epsilon"] in (0.2, 0.3) and universal["train_images"] == 300
    assert universal["heldout_images"] == 12 and 0.0 <= universal["success_rate_heldout"] <= 1.0
    assert set(universal["success_rate_validation_by_epsilon"]) == {"0.2", "0.3"}
    assert on_disk["universal_fools_heldout"] == (universal["success_rate_heldout"] >= 0.5)
    split = on_disk["validation_split"]
    assert split["validation_examples"] == universal["validation_images"] > 0
    assert -1.0 <= on_disk["gradient_map_correlation"] <= 1.0
    assert on_disk["gradient_hotspots_shared"] == (on_disk["gradient_map_correlation"] > 0.3)
    assert -1.0 <= on_disk["perturbation_map_correlation"] <= 1.0
    assert on_disk["perturbation_hotspots_shared"] == (
        on_disk["perturbation_map_correlation"] > 0.3)
    assert "noise" not in on_disk and "zeros" not in on_disk  # no early-stopped figures left
    # Every seed item reads a figure this run records; the qualitative ones read a real bool,
    # or a number their condition judges.
    seeds = labs.seed_items(lab_config.NAME)
    for item in seeds.items:
        assert item.preset in lab_config.PRESETS
        value = ledger.lookup(on_disk, item.metric)
        if item.qualitative:
            assert isinstance(value, bool) or (isinstance(value, float) and item.condition), item
        else:
            assert 0.0 <= value <= 1.0, item.metric
        assert ledger.judge(item, on_disk).verdict != "not run"
    assert set(seeds.minutes) == set(lab_config.PRESETS) - {"quick"}
    # Held out: the perturbation was fitted on training 4s only, never on a test image.
    datasets, _ = loading.load("mnist", ("train", "test"), data="sample")
    train_images, train_labels = loading.to_numpy(datasets["train"])
    test_images, _ = loading.to_numpy(datasets["test"])
    fours = {(image.astype(np.float32) / 255.0).tobytes() for image in train_images[train_labels == 4]}
    tests = {(image.astype(np.float32) / 255.0).tobytes() for image in test_images}
    assert len(seen) == 2
    for images in seen:
        received = {image.tobytes() for image in images}
        assert len(received) == 300 and received <= fours and not received & tests
    assert "smallest_linf_epsilon_for_100_percent" in on_disk
    for attack in on_disk["attacks"]["pgd_linf"].values():
        assert attack["min_pixel"] >= 0.0 and attack["max_pixel"] <= 1.0
    assert on_disk["attacks"]["pgd_linf"]["0.1"]["max_linf"] <= 0.1 + 1e-6
    assert metrics["source_examples"] == 12
    plots = {path.name for path in (tmp_path / "run" / "plots").iterdir()}
    assert plots >= {"success_vs_epsilon.png", "examples_pgd_linf.png", "examples_pgd_l2.png",
                     "examples_unconstrained.png", "noise_and_zeros.png",
                     "confidence_over_steps.png", "universal_perturbation.png",
                     "gradient_maps.png"}


def test_mean_change_map_weighs_every_start_alike():
    starts = np.zeros((2, 4, 4, 1), np.float32)
    found = starts.copy()
    found[0, 0, 0, 0] = 10.0  # a long move
    found[1, 3, 3, 0] = 0.1  # a short one counts as much
    change = attacks.mean_change_map(starts, found)
    assert change[0, 0, 0] == pytest.approx(0.5) and change[3, 3, 0] == pytest.approx(0.5)
    # the same moves from other starts point the same way; the opposite ones do not
    assert attacks.map_correlation(change, attacks.mean_change_map(starts + 0.2, found + 0.2)) == (
        pytest.approx(1.0))
    assert attacks.map_correlation(change, attacks.mean_change_map(found, starts)) == (
        pytest.approx(-1.0))
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4, 1\).*\(1, 4, 4, 1\)"):
        attacks.mean_change_map(starts, found[:1])


def test_budget_takes_every_step_without_stopping_early(classifier_and_fours):
    model, _ = classifier_and_fours
    starts = np.concatenate([np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32),
                             np.zeros((1, 28, 28, 1), np.float32)])
    found, confidences = attacks.budget_attack(model, starts, 9, steps=40, step_size=0.5)
    assert confidences.shape == (41, 3) and found.min() >= 0.0 and found.max() <= 1.0
    np.testing.assert_allclose(confidences[-1], model.predict(found, verbose=0)[:, 9], atol=1e-5)
    reached = attacks.first_step_reaching(confidences.min(axis=1), 0.99)
    assert reached is not None and reached < 40, confidences.min(axis=1)
    # A stopping rule would freeze the images once they pass 99%; the budget keeps climbing.
    shorter, _ = attacks.budget_attack(model, starts, 9, steps=reached, step_size=0.5)
    assert np.abs(found - shorter).max() > 0
    # The same steps for every start: a shorter budget is a prefix of a longer one.
    _, prefix = attacks.budget_attack(model, starts, 9, steps=10, step_size=0.5)
    np.testing.assert_allclose(prefix, confidences[:11], atol=1e-5)
    _, slow = attacks.budget_attack(model, starts, 9, steps=10, step_size=0.5,
                                    objective="probability")
    assert (slow[-1] > slow[0]).all()


@pytest.mark.parametrize("confidences,level,expected", [
    ([0.1, 0.5, 0.99, 0.98, 1.0], 0.99, 2),
    ([0.995, 0.2], 0.99, 0),
    ([0.1, 0.5, 0.98], 0.99, None),
    ([0.1, 0.95], 0.9, 1),
])
def test_first_step_reaching(confidences, level, expected):
    assert attacks.first_step_reaching(np.array(confidences), level) == expected


def _linear_model(weights):
    """A softmax over linear logits of the flattened image (its gradients are known)."""
    inputs = keras.Input((28, 28, 1))
    dense = keras.layers.Dense(10, activation="softmax", use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights])
    return model


def test_universal_perturbation_on_a_linear_model():
    # Only class 9 has weights, +1 on the top half and -1 on the bottom: d log p(9) / d x is
    # (1 - p(9)) w9 for every image, so the best L-inf bounded pattern is epsilon * sign(w9).
    w9 = np.where(np.arange(784) < 392, 1.0, -1.0).astype(np.float32)
    weights = np.zeros((784, 10), np.float32)
    weights[:, 9] = 0.01 * w9
    model = _linear_model(weights)
    images = np.random.default_rng(0).uniform(0.3, 0.7, (40, 28, 28, 1)).astype(np.float32)
    delta = attacks.universal_perturbation(model, images, 9, epsilon=0.2, steps=30,
                                           batch_size=8)
    assert delta.shape == (28, 28, 1) and delta.dtype == np.float32
    np.testing.assert_allclose(delta.ravel(), 0.2 * w9, atol=1e-6)
    before = model.predict(images, verbose=0)[:, 9]
    after = model.predict(attacks.apply_perturbation(images, delta), verbose=0)[:, 9]
    assert (after > before).all()
    # The mean gradient direction is w9's, whatever each image's confidence.
    mean_map = attacks.mean_gradient_map(model, images, 9)
    np.testing.assert_allclose(mean_map.ravel(), w9 / np.sqrt(784), atol=1e-5)
    assert attacks.map_correlation(mean_map, w9.reshape(28, 28, 1)) == pytest.approx(1.0)


def test_gradient_map_correlations_on_a_linear_model():
    # Only class 9 has weights: every start's map towards 9 points along w9 (correlation 1),
    # and d log p(8) / d x = -p(9) w9 points the other way (correlation -1).
    w9 = np.where(np.arange(784) < 392, 1.0, -1.0).astype(np.float32)
    weights = np.zeros((784, 10), np.float32)
    weights[:, 9] = 0.01 * w9
    model = _linear_model(weights)
    rng = np.random.default_rng(0)
    starts = {"source": rng.uniform(0.3, 0.7, (6, 28, 28, 1)).astype(np.float32),
              "noise": rng.random((3, 28, 28, 1), dtype=np.float32),
              "zeros": np.zeros((1, 28, 28, 1), np.float32)}
    maps, correlations, control = attacks.gradient_map_correlations(
        model, starts, 9, reference="source", control=("noise", 8))
    assert set(maps) == set(starts) and set(correlations) == {"noise", "zeros"}
    assert correlations["noise"] == pytest.approx(1.0)
    assert correlations["zeros"] == pytest.approx(1.0)
    assert control["class"] == 8 and control["correlation"] == pytest.approx(-1.0)
    _, _, none = attacks.gradient_map_correlations(model, starts, 9, reference="noise")
    assert none is None
    with pytest.raises(ValueError, match="'fours' is not a start set"):
        attacks.gradient_map_correlations(model, starts, 9, reference="fours")


def test_budget_summary_matches_the_budget_attack(classifier_and_fours):
    model, fours = classifier_and_fours
    summary, found, mean = attacks.budget_summary(model, fours[:5], 9, steps=6, step_size=0.2)
    again, confidences = attacks.budget_attack(model, fours[:5], 9, steps=6, step_size=0.2)
    np.testing.assert_array_equal(found, again)
    np.testing.assert_allclose(mean, confidences.mean(axis=1))
    assert summary["examples"] == 5 and len(summary["curve"]) == 6
    assert summary["confidence_min"] == pytest.approx(confidences[-1].min())
    assert summary["start_confidence"] == pytest.approx(confidences[0].mean())
    predicted = model.predict(found, verbose=0).argmax(axis=1)
    assert summary["success_rate"] == pytest.approx((predicted == 9).mean())
    assert summary["mean_l2_change"] > 0


def test_map_correlation_on_synthetic_maps():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(28, 28, 1))
    assert attacks.map_correlation(base, base) == pytest.approx(1.0)
    assert attacks.map_correlation(base, -3 * base + 2) == pytest.approx(-1.0)
    # Hotspots in the same place, plus independent noise of equal size: 1 / sqrt(2).
    mixed = attacks.map_correlation(base, base + rng.normal(size=base.shape))
    assert 0.6 < mixed < 0.8
    independent = [attacks.map_correlation(base, rng.normal(size=base.shape)) for _ in range(20)]
    assert max(abs(value) for value in independent) < 0.15  # chance: sd 1 / sqrt(784)
    with pytest.raises(ValueError, match="constant"):
        attacks.map_correlation(base, np.ones_like(base))
    with pytest.raises(ValueError, match=r"\(28, 28, 1\) and \(28, 28\)"):
        attacks.map_correlation(base, base[..., 0])


def test_universal_epsilon_is_chosen_on_validation_and_test_images_only_score_it(
        classifier_and_fours):
    model, fours = classifier_and_fours
    datasets, _ = loading.load("mnist", ("train", "test"), data="sample")
    config = dataclasses.replace(lab_config.PRESETS["quick"], universal_epsilons=(0.05, 0.3),
                                 universal_steps=15, universal_train_images=120).validate()
    train, validation, record = experiment._training_source_images(datasets, config)
    assert len(train) == 120 and record["validation_examples"] == len(validation) > 0
    as_bytes = {image.tobytes() for image in train}
    assert not as_bytes & {image.tobytes() for image in validation}
    # Whatever the held-out images are, the same epsilon is chosen and fitted alike.
    noise = np.random.default_rng(1).random(fours.shape, dtype=np.float32)

    def fit(heldout):
        return attacks.fit_universal(
            model, train, validation, heldout, config.target_class,
            epsilons=config.universal_epsilons, goal=config.universal_goal,
            steps=config.universal_steps, step_scale=config.step_scale, seed=config.seed)

    (first, first_delta), (second, second_delta) = fit(fours), fit(noise)
    assert first["epsilon"] == second["epsilon"]
    assert first["success_rate_validation_by_epsilon"] == second["success_rate_validation_by_epsilon"]
    np.testing.assert_array_equal(first_delta, second_delta)
    assert first["success_rate_heldout"] != second["success_rate_heldout"] or \
        first["mean_confidence_heldout"] != second["mean_confidence_heldout"]
