"""The deconvnet: exact against the gradient where it should be, against a hand-computed case
with pooling and ReLU, its selection modes, its errors, and the lab end to end."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny
from keras import layers

from keras_labs import KerasLabsError
from keras_labs.labs.deconvnet import experiment
from keras_labs.labs.deconvnet.deconvolution import (
    Deconvnet,
    UnsupportedLayerError,
    select,
    support_box,
    to_display,
)


def _vjp(model, images, pattern):
    """The gradient of <pattern, model(images)> with respect to the images."""
    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        output = model(images, training=False)
        inner = tf.reduce_sum(output * pattern)
    return tape.gradient(inner, images).numpy()


@pytest.mark.parametrize("strides, padding, dilation, batch_norm", [
    (1, "same", 1, False),
    (2, "valid", 1, False),
    (2, "same", 1, True),
    (1, "valid", 2, False),
])
def test_single_conv_projection_is_the_vector_jacobian_product(strides, padding, dilation,
                                                               batch_norm):
    rng = np.random.default_rng(0)
    inputs = keras.Input((11, 11, 3))
    x = layers.Conv2D(5, 3, strides=strides, padding=padding, dilation_rate=dilation,
                      name="conv")(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, x)
    if batch_norm:  # non-trivial statistics, so folding them into the filters matters
        bn = model.get_layer("bn")
        bn.set_weights([rng.uniform(0.5, 2, 5), rng.normal(size=5), rng.normal(size=5),
                        rng.uniform(0.5, 2, 5)])
    images = rng.normal(size=(4, 11, 11, 3)).astype(np.float32)
    pattern = rng.normal(size=(4, *model.output.shape[1:])).astype(np.float32)

    projector = Deconvnet(model)
    layer = "bn" if batch_norm else "conv"
    activations, _ = projector.forward(images, layer)
    np.testing.assert_allclose(activations, model(images), rtol=1e-4, atol=1e-4)
    projected = projector.project_pattern(images, pattern, layer).numpy()
    np.testing.assert_allclose(projected, _vjp(model, images, pattern), rtol=1e-4, atol=1e-4)


def _hand_model():
    inputs = keras.Input((5, 5, 1))
    x = layers.Conv2D(1, 2, use_bias=False, name="conv")(inputs)
    x = layers.ReLU(name="relu")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    model = keras.Model(inputs, x)
    model.get_layer("conv").set_weights([np.array([[1, 0], [0, -1]], np.float32).reshape(2, 2, 1, 1)])
    image = np.zeros((1, 5, 5, 1), np.float32)
    for row, column, value in ((0, 0, 4), (1, 3, 1), (2, 2, 2), (3, 1, 3)):
        image[0, row, column, 0] = value
    return model, image


def test_pooling_and_relu_against_a_hand_computed_case():
    # conv z[i, j] = x[i, j] - x[i+1, j+1]; relu keeps z[0,0]=4, z[1,3]=1, z[2,2]=2, z[3,1]=3,
    # each the unique maximum of its 2x2 pooling window: the switches.
    model, image = _hand_model()
    projector = Deconvnet(model)
    pooled, _ = projector.forward(image, "pool")
    np.testing.assert_array_equal(pooled[0, ..., 0], [[4, 1], [3, 2]])
    signal = np.array([[1, -2], [0.5, 3]], np.float32).reshape(1, 2, 2, 1)
    # Unpool to (0,0)=1, (1,3)=-2, (3,1)=0.5, (2,2)=3; rectify drops the -2; the transposed
    # convolution spreads each value v at (i, j) as +v at (i, j) and -v at (i+1, j+1).
    expected = np.array([[1, 0, 0, 0, 0],
                         [0, -1, 0, 0, 0],
                         [0, 0, 3, 0, 0],
                         [0, 0.5, 0, -3, 0],
                         [0, 0, -0.5, 0, 0]], np.float32)
    projected = projector.project_pattern(image, signal, "pool").numpy()[0, ..., 0]
    np.testing.assert_allclose(projected, expected, atol=1e-6)
    # The gradient would have kept the -2 (its ReLU mask is open there): the deconvnet differs.
    gradient = _vjp(model, image, signal)[0, ..., 0]
    assert gradient[1, 3] == pytest.approx(-2) and gradient[2, 4] == pytest.approx(2)
    # The compiled path gives the same: the pooled activations themselves, strongest one only.
    strongest = projector.project(image, "pool", keep="max")[0, ..., 0]
    np.testing.assert_allclose(strongest, np.pad([[4, 0], [0, -4]], ((0, 3), (0, 3))), atol=1e-6)


def test_conv_relu_activation_matches_separate_relu_layer():
    rng = np.random.default_rng(1)
    inputs = keras.Input((8, 8, 2))
    fused = keras.Model(inputs, layers.MaxPooling2D(2, name="pool")(
        layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inputs)))
    inputs = keras.Input((8, 8, 2))
    split = keras.Model(inputs, layers.MaxPooling2D(2, name="pool")(layers.Activation(
        "relu")(layers.Conv2D(3, 3, padding="same", name="conv")(inputs))))
    split.get_layer("conv").set_weights(fused.get_layer("conv").get_weights())
    images = rng.normal(size=(2, 8, 8, 2)).astype(np.float32)
    np.testing.assert_allclose(Deconvnet(fused).project(images, "pool"),
                               Deconvnet(split).project(images, "pool"), rtol=1e-5, atol=1e-6)


def _two_block_model(head=True):
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.Activation("relu", name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    if head:
        x = layers.Dense(3, name="head")(layers.Flatten()(x))
    return keras.Model(inputs, x)


def test_forward_reproduces_the_model_and_modes_select_what_they_say():
    model = _two_block_model()
    images = np.random.default_rng(2).random((3, 16, 16, 3), dtype=np.float32)
    projector = Deconvnet(model)
    reference = keras.Model(model.input, model.get_layer("pool2").output)(images)
    activations, _ = projector.forward(images, "pool2")
    np.testing.assert_allclose(activations, reference, rtol=1e-5, atol=1e-6)

    all_maps = projector.project(images, "pool2")
    assert all_maps.shape == images.shape and np.abs(all_maps).max() > 0
    strongest = projector.strongest_features(images, "pool2")
    expected = np.argmax(np.asarray(activations).max(axis=(1, 2)), axis=-1)
    np.testing.assert_array_equal(strongest, expected)
    one_map = projector.project(images, "pool2", feature=int(strongest[0]))
    np.testing.assert_allclose(projector.project(images, "pool2", feature="strongest")[0],
                               one_map[0], rtol=1e-5, atol=1e-6)

    signal, chosen = select(activations, tf.constant(-2), tf.constant(True))
    signal = signal.numpy()
    assert (np.count_nonzero(signal.reshape(3, -1), axis=1) <= 1).all()
    np.testing.assert_allclose(signal.reshape(3, -1).max(axis=1),
                               np.asarray(activations).reshape(3, -1).max(axis=1))
    np.testing.assert_array_equal(chosen, strongest)


def test_top_activations_are_the_strongest_examples():
    model = _two_block_model()
    rng = np.random.default_rng(3)
    images = rng.random((20, 16, 16, 3), dtype=np.float32)
    labels = np.arange(20)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(6)
    projector = Deconvnet(model)
    top = projector.top_activations(dataset, "pool1", feature=2, k=4)
    activations, _ = projector.forward(images, "pool1")
    scores = np.asarray(activations)[..., 2].max(axis=(1, 2))
    np.testing.assert_array_equal(top.indices, np.argsort(-scores, kind="stable")[:4])
    np.testing.assert_array_equal(top.labels, labels[top.indices])
    np.testing.assert_allclose(top.activations, np.sort(scores)[::-1][:4], rtol=1e-5)
    assert top.projections.shape == (4, 16, 16, 3)
    top_, left, bottom, right = support_box(top.projections[0])
    # A single pool1 activation sees a 4x4 input patch (2x2 pool of 3x3 convolutions).
    assert 0 < bottom - top_ <= 4 and 0 < right - left <= 4
    displayed = to_display(top.projections)
    assert displayed.min() >= 0 and displayed.max() <= 1


def test_unsupported_layers_are_named():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, name="conv1")(inputs)
    x = layers.LayerNormalization(name="odd_norm")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    model = keras.Model(inputs, x)
    projector = Deconvnet(model)
    with pytest.raises(UnsupportedLayerError, match="'odd_norm' \\(LayerNormalization\\)"):
        projector.project(np.zeros((1, 8, 8, 3), np.float32), "pool")
    assert projector.chain("conv1")  # layers below the unsupported one still project
    tanh = keras.Model(inputs, layers.Conv2D(2, 3, activation="tanh", name="tanh_conv")(inputs))
    with pytest.raises(UnsupportedLayerError, match="'tanh_conv'.*tanh"):
        Deconvnet(tanh).chain("tanh_conv")
    with pytest.raises(ValueError, match="no layer 'pool9'"):
        projector.chain("pool9")
    with pytest.raises(ValueError, match="feature=7"):
        Deconvnet(_two_block_model()).project(np.zeros((1, 16, 16, 3), np.float32), "pool1",
                                              feature=7)
    assert issubclass(UnsupportedLayerError, KerasLabsError)


TINY = tiny("deconvnet")


def test_lab_smoke_run(tmp_path):
    config = dataclasses.replace(TINY, export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == metrics["test_accuracy"]
    assert set(metrics["strongest_features"]) == {"pool1", "pool2"}
    assert all(len(v) == config.images for v in metrics["strongest_features"].values())
    for block, info in metrics["top_activations"].items():
        assert len(info["test_indices"]) == 9 and 0 <= info["feature"] < {"pool1": 8, "pool2": 16}[block]
        assert info["activations"] == sorted(info["activations"], reverse=True)
    plots = {p.name for p in (tmp_path / "run" / "plots").iterdir()}
    assert plots >= {"projections_all.png", "projections_strongest.png", "top9_pool1.png",
                     "top9_pool2.png", "curves.png"}
    assert metrics["export"] == str(tmp_path / "sm" / "deconvnet" / "1")
    assert (tmp_path / "sm" / "deconvnet" / "1" / "saved_model.pb").exists()
    assert metrics["figures_written"] == {"projections": True, "strongest": True, "top_k": True}
    assert metrics["figures"]["top_k"] == ["plots/top9_pool1.png", "plots/top9_pool2.png"]
    # The curves ran on a seeded 10% of the 128 training examples; the test split (250 sample
    # images) was scored once, after training.
    assert metrics["validation_split"] == {"fraction": 0.1, "seed": 0, "train_examples": 115,
                                           "validation_examples": 13}
    header, *rows = (tmp_path / "run" / "history.csv").read_text().splitlines()
    last = dict(zip(header.split(","), rows[-1].split(","), strict=True))
    assert metrics["validation_accuracy"] == pytest.approx(float(last["val_accuracy"]))
    assert round(metrics["validation_accuracy"] * 13, 4).is_integer()
    assert metrics["test_examples"] == 250 and metrics["test_loss"] > 0


def test_lab_rejects_a_feature_outside_the_layers():
    from keras_labs import ConfigError

    with pytest.raises(ConfigError, match="feature=20"):
        dataclasses.replace(TINY, feature=20).validate()


@pytest.mark.realdata
def test_real_cifar10_tiny_run(tmp_path, real_data_dir):
    data_dir = real_data_dir("cifar10")
    config = dataclasses.replace(TINY, data="full", data_dir=data_dir, images=3, top_k=4,
                                 export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    assert metrics["data"]["cifar10"]["kind"] == "full"
    assert len(list((tmp_path / "run" / "plots").glob("*.png"))) >= 3
    assert all(len(info["test_indices"]) == 4 for info in metrics["top_activations"].values())
