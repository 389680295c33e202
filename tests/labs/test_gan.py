"""The gan lab: losses, the custom train_step (default and mirrored), a tiny run, resume."""

import csv
import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_labs import ConfigError, cached_models, devices, labs, training
from keras_labs.labs.gan import config as lab_config
from keras_labs.labs.gan import experiment, scoring
from keras_labs.models import gan as gan_models
from keras_labs.results import ledger

TINY = dataclasses.replace(
    lab_config.PRESETS["quick"], data="sample", iterations=30, sample_every=10, batch_size=32,
    train_examples=256, mlp_units=(32,), latent_dim=8, score_samples=50, classifier_epochs=1,
    classifier_examples=256, steps_per_execution=1, inputs="symmetric", latent="gaussian")


@pytest.fixture(scope="module")
def export_root(tmp_path_factory):
    # Shared by the module's runs, so the scoring classifier is trained once and then reused.
    return tmp_path_factory.mktemp("gan_exports")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, export_root):
    config = dataclasses.replace(TINY, export_dir=str(export_root)).validate()
    workdir = tmp_path_factory.mktemp("gan") / "run"
    return workdir, experiment.run(config, str(workdir))


def test_losses_are_the_named_objectives():
    logits = tf.constant([[-3.0], [-0.5], [0.0], [2.0]])
    d_fake = tf.sigmoid(logits).numpy()
    np.testing.assert_allclose(gan_models.generator_loss(logits, "minimax"),
                               np.mean(np.log(1.0 - d_fake)), rtol=1e-5)
    np.testing.assert_allclose(gan_models.generator_loss(logits, "non_saturating"),
                               np.mean(-np.log(d_fake)), rtol=1e-5)
    real = tf.constant([[1.0], [3.0]])
    d_real = tf.sigmoid(real).numpy()
    expected = np.mean(-0.9 * np.log(d_real) - 0.1 * np.log(1 - d_real)) + np.mean(-np.log(1 - d_fake))
    np.testing.assert_allclose(gan_models.discriminator_loss(real, logits, label_smoothing=0.1),
                               expected, rtol=1e-5)
    with pytest.raises(ValueError, match="'wasserstein'"):
        gan_models.generator_loss(logits, "wasserstein")


def _fit_tiny(strategy, config, steps=4, seed=3):
    keras.utils.set_random_seed(seed)
    images = np.random.default_rng(0).random((64, 28, 28, 1)).astype(np.float32)
    labels = np.arange(64) % 10
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        8, drop_remainder=True).repeat()
    spec = dataclasses.replace(experiment.model_spec(config), seed=seed, learning_rate=1e-3,
                               beta_1=0.9)
    with strategy.scope():
        model = gan_models.build_gan(spec)
    state = model.rng.state.numpy().copy()
    history = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return model, history, state


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_train_step_updates_both_networks(strategy_name):
    strategy = devices.make_strategy(strategy_name)
    assert strategy.num_replicas_in_sync == (2 if strategy_name == "mirrored" else 1)
    config = dataclasses.replace(TINY, conditional=True, loss="minimax")
    model, history, state = _fit_tiny(strategy, config)
    assert model.steps == 4 and int(keras.ops.convert_to_numpy(model.d_optimizer.iterations)) == 4
    assert all(np.isfinite(history.history[key][-1]) for key in ("d_loss", "g_loss"))
    assert 0.0 < history.history["d_real"][-1] < 1.0
    assert not np.array_equal(model.rng.state.numpy(), state)  # draws came from the model's rng
    assert model.generator([np.zeros((2, 8), np.float32), np.array([1, 2])]).shape == (2, 28, 28, 1)


def test_same_seed_same_training():
    config = dataclasses.replace(TINY, architecture="dcgan", dcgan_filters=(4, 8))
    first, _, _ = _fit_tiny(tf.distribute.get_strategy(), config, steps=2)
    second, _, _ = _fit_tiny(tf.distribute.get_strategy(), config, steps=2)
    for a, b in zip(first.generator.weights, second.generator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_frechet_distance_of_gaussians():
    mean_a, mean_b = np.zeros(3), np.array([1.0, 2.0, 0.0])
    covariance = np.diag([1.0, 4.0, 9.0])
    distance = scoring.frechet_distance
    assert distance(mean_a, covariance, mean_a, covariance) == pytest.approx(0, abs=1e-6)
    # Equal covariances: only the squared distance of the means remains.
    assert distance(mean_a, covariance, mean_b, covariance) == pytest.approx(5.0)
    # 1-D: (s_a - s_b)^2 for standard deviations s.
    assert distance(np.zeros(1), np.eye(1) * 4, np.zeros(1), np.eye(1)) == pytest.approx(1.0)


@pytest.mark.parametrize("dimension", [2, 8, 32])
def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances(dimension):
    from scipy import linalg  # installed with scikit-learn

    rng = np.random.default_rng(dimension)
    # Random SPD matrices with strong off-diagonal terms (S_a S_b is not symmetric), one of
    # them nearly singular, as the covariance of few samples is.
    factor_a, factor_b = rng.normal(size=(2, dimension, dimension))
    covariance_a = factor_a @ factor_a.T + 1e-3 * np.eye(dimension)
    half = factor_b[:, :max(dimension // 2, 1)]
    covariance_b = half @ half.T + 1e-6 * np.eye(dimension)
    mean_a, mean_b = rng.normal(size=(2, dimension))
    root = linalg.sqrtm(covariance_a @ covariance_b)
    expected = (np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a)
                + np.trace(covariance_b) - 2 * np.trace(root).real)
    got = scoring.frechet_distance(mean_a, covariance_a, mean_b, covariance_b)
    assert got == pytest.approx(expected, rel=1e-6)
    # Symmetric in its two Gaussians, as the distance is.
    assert scoring.frechet_distance(mean_b, covariance_b, mean_a, covariance_a) == pytest.approx(
        expected, rel=1e-6)


def test_tiny_run_records_scores_plots_and_export(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    for key in ("largest_class_share", "class_entropy", "classifier_fid"):
        assert on_disk[key] == metrics[key]
        assert len(metrics["over_training"][key]) == 3
    # The shares are those of the scored digits' classes, and both summaries follow from them.
    histogram = np.array(metrics["class_histogram"])
    counts = histogram * TINY.score_samples
    np.testing.assert_allclose(counts, counts.round(), atol=1e-2)
    assert len(histogram) == 10 and counts.round().sum() == TINY.score_samples
    assert metrics["largest_class_share"] == pytest.approx(histogram.max(), abs=1e-4)
    shares = histogram[histogram > 0]
    assert metrics["class_entropy"] == pytest.approx(-(shares * np.log2(shares)).sum(), abs=1e-3)
    assert metrics["over_training"]["largest_class_share"][-1] == metrics["largest_class_share"]
    assert metrics["classifier_fid"] >= 0
    assert metrics["over_training"]["step"] == [10, 20, 30] and metrics["iterations"] == 30
    assert metrics["floor"]["classifier_fid"] < metrics["classifier_fid"]
    assert metrics["floor"]["split"] == "test" and metrics["floor"]["examples"] == TINY.score_samples
    # The mode collapse summary follows from the final histogram.
    assert metrics["largest_class"] == int(histogram.argmax())
    assert metrics["over_training"]["largest_class"][-1] == metrics["largest_class"]
    assert metrics["mode_collapse"] == (histogram.max() >= 0.5)
    assert metrics["no_mode_collapse"] == (histogram.max() <= 0.2)
    assert metrics["share_of_1s_and_9s"] == pytest.approx(histogram[1] + histogram[9], abs=1e-4)
    floor_histogram = metrics["floor"]["class_histogram"]
    assert metrics["favours_1s_and_9s"] == (
        histogram[1] + histogram[9] >= 1.5 * (floor_histogram[1] + floor_histogram[9]))
    # The loss ranges are those of losses.csv after the first 10% of the 30 steps.
    with open(workdir / "losses.csv", newline="") as handle:
        kept = [row for row in csv.DictReader(handle) if int(row["step"]) > 3]
    for key, name in (("g_loss", "generator_loss_range"), ("d_loss", "discriminator_loss_range")):
        values = [float(row[key]) for row in kept]
        assert metrics[name] == pytest.approx(max(values) - min(values), abs=1e-4)
        assert metrics[name] > 0
    plots = {path.name for path in (workdir / "plots").iterdir()}
    assert plots >= {"losses.png", "scores.png", "class_histogram.png", "contact_sheet.png",
                     "samples_final.png", "samples_step000010.png", "samples_step000030.png"}
    with open(workdir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert {"d_loss", "g_loss", "largest_class_share", "classifier_fid"} <= set(rows[0])
    assert len(json.loads((workdir / "scores.json").read_text())) == 3
    assert not (workdir / "backup").exists(), "a finished run keeps no backup"
    events = list((workdir / "tb" / "samples").glob("events.out.tfevents*"))
    assert events
    exported = tf.saved_model.load(metrics["export"])
    images = exported.serve(tf.zeros((3, 8))).numpy()
    assert images.shape == (3, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0


class _Interrupt(keras.callbacks.Callback):
    """Stands in for a kill: raises once training has gone `after` steps."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_train_batch_end(self, batch, logs=None):
        if self.model.steps >= self.after:
            raise KeyboardInterrupt("killed")


def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, export_root):
    config = dataclasses.replace(TINY, export_dir=str(export_root)).validate()
    workdir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        experiment.run(config, str(workdir), callbacks=[_Interrupt(after=15)])
    assert not (workdir / "metrics.json").exists()
    assert training.backed_up_epochs(workdir) == 1  # the interval that ended at step 10
    (workdir / "FAILED.txt").write_text("KeyboardInterrupt: killed\n")  # as the CLI leaves it

    steps_seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps_seen.append(self.model.steps)

    metrics = experiment.resume(str(workdir), callbacks=[Record()])
    assert steps_seen == [10, 20]  # restored, not started over
    assert metrics["resumed_from_step"] == 10 and metrics["iterations"] == 30
    assert metrics["over_training"]["step"] == [10, 20, 30]
    with open(workdir / "history.csv", newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]
    with open(workdir / "losses.csv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == sorted(set(steps)) and steps[-1] == 30
    env = json.loads((workdir / "env.json").read_text())
    assert len(env["resumed"]) == 1 and env["data"]["mnist"]["kind"] == "sample"
    assert env["resumed"][0]["previous_failure"] == "KeyboardInterrupt: killed"
    assert not (workdir / "FAILED.txt").exists()

    with pytest.raises(ConfigError, match="finished already"):
        experiment.resume(str(workdir))


@pytest.mark.slow
def test_killed_process_resumes(tmp_path, export_root, tiny_run):
    """A real SIGKILL of a training process, then `resume` in this one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    del tiny_run  # only so that the scoring classifier is in export_root already
    workdir = tmp_path / "killed"
    config = dataclasses.replace(TINY, iterations=200, export_dir=str(export_root)).validate()
    child = ("import json, sys\nfrom keras_labs.labs.gan import config, experiment\n"
             "experiment.run(config.Config(**{k: tuple(v) if isinstance(v, list) else v "
             "for k, v in json.loads(sys.argv[1]).items()}), sys.argv[2])\n")
    process = subprocess.Popen([sys.executable, "-c", child, config.to_json(), str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 240  # the first backup comes after 10 steps: seconds
    try:
        while process.poll() is None and not training.backed_up_epochs(workdir):
            assert time.monotonic() < deadline, "no backup appeared within 240 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    metrics = experiment.resume(str(workdir))
    assert metrics["resumed_from_step"] >= 10 and metrics["iterations"] == 200
    assert metrics["over_training"]["step"] == list(range(10, 201, 10))


def test_resume_refuses_folders_without_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="not a run folder"):
        experiment.resume(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(TINY.to_dict()))
    with pytest.raises(ConfigError, match="no checkpoint"):
        experiment.resume(str(tmp_path))


def test_loss_ranges_leave_out_the_first_tenth(tmp_path):
    path = tmp_path / "losses.csv"
    rows = ["step,d_loss,g_loss,d_real,d_fake", "50,9.0,-9.0,0.5,0.5", "100,1.0,-2.0,0.5,0.5",
            "150,1.5,-0.5,0.5,0.5", "1000,0.5,-1.0,0.5,0.5"]
    path.write_text("\n".join(rows) + "\n")
    def ranges(iterations, skip=experiment.LOSS_RANGE_SKIP):
        return scoring.curve_ranges(path, experiment.LOSS_RANGES, after_step=skip * iterations)

    # 1,000 steps: rows at steps <= 100 are the first tenth (the 9.0 spike is left out).
    assert ranges(1000) == {"generator_loss_range": 0.5, "discriminator_loss_range": 1.0}
    assert ranges(100, skip=0.0) == {"generator_loss_range": 8.5,
                                     "discriminator_loss_range": 8.5}
    assert ranges(100000) == {"generator_loss_range": None, "discriminator_loss_range": None}
    steps, values = scoring.read_curves(path, ["g_loss"])["g_loss"]
    assert steps == [50, 100, 150, 1000] and values == [-9.0, -2.0, -0.5, -1.0]


def test_mode_collapse_thresholds_and_label_agreement():
    verdict = scoring.mode_collapse({"largest_class_share": 0.5, "largest_class": 1},
                                    collapse_share=0.5, spread_share=0.2)
    assert verdict == {"largest_class_share": 0.5, "largest_class": 1, "mode_collapse": True,
                       "no_mode_collapse": False}
    verdict = scoring.mode_collapse({"largest_class_share": 0.2, "largest_class": 3},
                                    collapse_share=0.5, spread_share=0.2)
    assert not verdict["mode_collapse"] and verdict["no_mode_collapse"]
    # Bright images are class 7 to the stand-in classifier, dark ones class 0.
    scorer = scoring.SampleScorer(_brightness_classifier(), np.random.default_rng(0).random(
        (20, 28, 28, 1)).astype(np.float32))
    images = np.zeros((4, 28, 28, 1), np.float32)
    images[:2] = 1.0
    score = scorer.score(images, labels=np.array([7, 0, 0, 0]))
    assert score["label_agreement"] == 0.75 and score["largest_class_share"] == 0.5
    assert "label_agreement" not in scorer.score(images)


def test_spec_from_frames_and_scores_on_resume(tmp_path):
    spec = gan_models.spec_from(TINY.to_dict(), image_shape=(28, 28, 1), num_classes=10)
    assert spec == experiment.model_spec(TINY) and spec.mlp_units == (32,) and spec.latent_dim == 8
    with pytest.raises(ValueError, match="'num_classes'"):
        gan_models.spec_from(TINY.to_dict(), image_shape=(28, 28, 1))
    frames = {step: np.full((2, 28, 28, 1), step, np.uint8) for step in (10, 20, 30)}
    gan_models.save_frames(tmp_path / "samples.npz", frames)
    loaded = gan_models.load_frames(tmp_path / "samples.npz", until_step=20)
    assert sorted(loaded) == [10, 20] and (loaded[20] == 20).all()
    assert gan_models.load_frames(tmp_path / "missing.npz", until_step=20) == {}
    (tmp_path / "scores.json").write_text(json.dumps([{"step": 10}, {"step": 20}]))
    assert scoring.load_scores(tmp_path / "scores.json", until_step=15) == [{"step": 10}]
    assert scoring.load_scores(tmp_path / "missing.json", until_step=15) == []


def _brightness_classifier():
    """A stand-in scoring classifier: feature = mean brightness; class 7 when it is over 0.1,
    else class 0."""
    image = keras.Input((28, 28, 1))
    feature = keras.layers.GlobalAveragePooling2D(name="features")(image)
    output = keras.layers.Dense(10, activation="softmax", name="classes")(feature)
    model = keras.Model(image, output)
    kernel, bias = np.zeros((1, 10), np.float32), np.zeros(10, np.float32)
    kernel[0, 7], bias[0] = 20.0, 2.0
    model.get_layer("classes").set_weights([kernel, bias])
    return model


def test_floor_scores_test_digits_disjoint_from_the_reference(monkeypatch):
    # Dark training digits (class 0 to the stand-in classifier), bright test digits (class 7),
    # each test digit with its own brightness, so the reference's mean tells which it holds.
    train = np.zeros((100, 28, 28, 1), np.uint8)
    brightness = np.linspace(100, 255, 40).round().astype(np.uint8)
    test = np.broadcast_to(brightness[:, None, None, None], (40, 28, 28, 1)).copy()
    labels = np.zeros(100, np.int64)
    datasets = {"train": tf.data.Dataset.from_tensor_slices((train, labels)),
                "test": tf.data.Dataset.from_tensor_slices((test, labels[:40]))}
    classifier = _brightness_classifier()
    monkeypatch.setattr(cached_models, "mnist_classifier",
                        lambda *args, **kwargs: (classifier, {"path": "", "reused": False,
                                                             "test_accuracy": 1.0}))
    config = dataclasses.replace(TINY, score_samples=10).validate()
    scorer, floor, _ = experiment._scorer(config, datasets, source=None)
    assert floor["split"] == "test" and floor["examples"] == 10
    assert floor["reference_examples"] == 30
    assert floor["class_histogram"][7] == 1.0 and floor["largest_class"] == 7
    # The Frechet reference is the other 30 test digits, not the floor's and not training ones.
    reference_mean = scorer.reference[0]
    np.testing.assert_allclose(reference_mean, brightness[10:].mean() / 255.0, rtol=1e-4)
    assert floor["classifier_fid"] > 0  # disjoint digits: the floor is not the reference
    # Half the test split at most, however many samples are scored.
    _, floor, _ = experiment._scorer(dataclasses.replace(TINY, score_samples=500).validate(),
                              datasets, source=None)
    assert floor["examples"] == 20 and floor["reference_examples"] == 20


def test_report_setup_and_conditional_presets():
    setup = lab_config.PRESETS["report-setup"]
    assert (setup.loss, setup.inputs, setup.latent) == ("minimax", "unit", "uniform")
    assert (setup.architecture, setup.mlp_units, setup.mlp_activation) == ("mlp", (128,), "relu")
    assert setup.discriminator_dropout == 0.0 and setup.batch_size == 128
    assert setup.iterations % setup.sample_every == 0
    # Issue 24's further attempts change one thing of the course's set-up each.
    for name, changed in (("report-setup-100k", {"iterations": 100000, "sample_every": 5000}),
                          ("report-setup-non_saturating", {"loss": "non_saturating"})):
        assert lab_config.PRESETS[name] == dataclasses.replace(setup, **changed), name
    conditional = lab_config.PRESETS["conditional"]
    assert conditional.conditional and conditional.loss == "non_saturating"
    assert conditional.iterations == 20000

    # The course's networks: 100 -> 128 ReLU -> 784 sigmoid, and 784 -> 128 ReLU -> 1, no dropout.
    tiny_setup = dataclasses.replace(setup, iterations=10, sample_every=10).validate()
    spec = experiment.model_spec(tiny_setup)
    generator = gan_models.build_generator(spec)
    discriminator = gan_models.build_discriminator(spec)
    assert generator.count_params() == 100 * 128 + 128 + 128 * 784 + 784
    assert discriminator.count_params() == 784 * 128 + 128 + 128 + 1
    kinds = {type(layer).__name__ for layer in generator.layers + discriminator.layers}
    assert "ReLU" in kinds and not kinds & {"LeakyReLU", "Dropout"}
    images = generator(np.random.default_rng(0).uniform(-1, 1, (4, 100)).astype(np.float32))
    assert float(np.min(images)) >= 0.0 and float(np.max(images)) <= 1.0
    model, history, _ = _fit_tiny(tf.distribute.get_strategy(),
                                  dataclasses.replace(tiny_setup, latent_dim=8), steps=2)
    assert model.latent == "uniform" and np.isfinite(history.history["g_loss"][-1])
    # The conditional preset's networks take the label.
    spec = experiment.model_spec(dataclasses.replace(conditional, mlp_units=(8,), latent_dim=4))
    assert [tensor.name for tensor in gan_models.build_generator(spec).inputs] == ["z", "label"]
    with pytest.raises(ValueError, match="'swish'"):
        gan_models.build_generator(dataclasses.replace(spec, mlp_activation="swish"))


def test_seed_items_name_presets_and_metrics_the_run_records(tiny_run):
    _, metrics = tiny_run
    seeds = labs.seed_items(lab_config.NAME)
    assert {item.item for item in seeds.items} >= {
        "000-ex5-minimax-20k", "000-ex5-logistic-20k", "000-ex5-minimax-100k",
        "000-ex5-logistic-100k", "000-ex5-swings", "001-ex5-collapse", "001-ex5-affinity",
        "000-ex5-labels"}
    for item in seeds.items:
        assert item.preset in lab_config.PRESETS
        assert ledger.lookup(metrics, item.metric) is not None, item.metric
        if item.versus:
            other = item.versus.partition("/")[2]
            assert other.partition(":")[0] in lab_config.PRESETS
            assert ledger.lookup(metrics, other.partition(":")[2]) is not None
    assert set(seeds.minutes) == set(lab_config.PRESETS) - {"quick"}
    assert all(minutes > 0 for minutes in seeds.minutes.values())
    assert seeds.minutes["minimax-100k"] > ledger.RUN_LIMIT_MINUTES


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="not a multiple of sample_every"):
        dataclasses.replace(TINY, iterations=25).validate()
    with pytest.raises(ConfigError, match="loss='hinge'"):
        dataclasses.replace(TINY, loss="hinge").validate()
    with pytest.raises(ConfigError, match="mlp_activation='tanh'"):
        dataclasses.replace(TINY, mlp_activation="tanh").validate()
    with pytest.raises(ConfigError, match="dcgan_filters"):
        dataclasses.replace(TINY, architecture="dcgan", dcgan_filters=(8, 16, 32)).validate()
    assert set(lab_config.PRESETS) >= {"minimax-20k", "minimax-100k", "non_saturating-20k",
                                "non_saturating-100k", "report-setup", "conditional", "quick"}
    assert lab_config.PRESETS["minimax-100k"].iterations == 100000
    assert {lab_config.PRESETS[name].loss for name in ("minimax-20k", "non_saturating-20k")} == {
        "minimax", "non_saturating"}
