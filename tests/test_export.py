"""Exports that serve: the TensorFlow Serving layout, a raw uint8 signature, and three real
clients (TensorFlow alone, onnxruntime, the LiteRT interpreter) on 1,000 real MNIST test digits.

The tolerance, for every format: the largest absolute difference of any class probability from
the in-memory Keras model (fed the digits scaled as in training, x / 255 in float32) is at most
`MAX_ABS_DIFF`, and every digit gets the same predicted class (argmax agreement 1.0).
"""

import json
import subprocess
import sys
import types

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from conftest import run_tiny

from keras_labs import ConfigError, KerasLabsError, export, run_folders, training
from keras_labs.data import loading

# Float32 round-off between runtimes (different kernels, different summation orders): measured
# about 1e-7; 1e-5 leaves room and still catches any scaling mistake (1/255 is 4e-3).
MAX_ABS_DIFF = 1e-5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The mnist-cnn lab run with export_format="onnx" on the embedded sample (a few seconds
    of training), the model it trained (caught on its way into `training.fit`), and the real
    test digits: raw uint8 (N, 28, 28, 1) and the in-memory model's probabilities."""
    models = []
    original = training.fit

    def keep_model(run, model, *args, **kwargs):
        models.append(model)
        return original(run, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "fit", keep_model)
        workdir, metrics, config = run_tiny(tmp_path_factory, "mnist-cnn", export_format="onnx",
                                            train_examples=4000, epochs=2, batch_size=32,
                                            filters=(16, 32), dense_units=64)
    datasets, _ = loading.load("mnist", ("test",), data="sample")
    digits, labels = loading.to_numpy(datasets["test"])
    assert digits.dtype == np.uint8 and digits.shape == (1000, 28, 28, 1)
    expected = models[0].predict(digits.astype(np.float32) / 255.0, verbose=0)
    return types.SimpleNamespace(workdir=workdir, metrics=metrics, config=config, model=models[0],
                                 digits=digits, labels=labels, expected=expected)


def fake_run(tmp_path, export_format="saved_model", run_id="20260101-000000-seed-abcd"):
    """What `export_model` reads of a `runs.Run`."""
    config = types.SimpleNamespace(export_dir=str(tmp_path / "sm"), export_format=export_format)
    return types.SimpleNamespace(lab="mnist-cnn", run_id=run_id, workdir=tmp_path / run_id,
                                 env={"git": {"commit": "0" * 40, "dirty": False}},
                                 config=config)


def agreement(got: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max abs difference of the probabilities, share of equal argmaxes)."""
    return (float(np.abs(got - expected).max()),
            float((got.argmax(axis=1) == expected.argmax(axis=1)).mean()))


def test_export_is_a_numbered_version_with_its_run_recorded(trained):
    version = trained.workdir.parent.parent.parent / "saved_models" / "mnist-cnn" / "1"
    assert trained.metrics["export"] == str(version)
    assert json.loads((trained.workdir / "metrics.json").read_text())["export"] == str(version)
    assert {"saved_model.pb", "variables", "model.onnx", export.RUN_RECORD} <= {
        path.name for path in version.iterdir()}
    record = json.loads((version / export.RUN_RECORD).read_text())
    env = json.loads((trained.workdir / "env.json").read_text())
    assert record["run_id"] == trained.workdir.name == "r1" and record["lab"] == "mnist-cnn"
    assert record["preset"] is None  # "r1" is not a `new_run_dir` name
    assert record["run_folder"] == str(trained.workdir.resolve())
    assert record["commit"] == env["git"]["commit"] and record["export_format"] == "onnx"
    assert record["serving_input"] == [{"name": "images", "dtype": "uint8",
                                        "shape": [None, 28, 28, 1]}]
    # Only version folders sit beside it: no staging folder is left behind.
    assert [path.name for path in version.parent.iterdir()] == ["1"]


def test_tensorflow_alone_serves_raw_uint8_digits(trained, tmp_path):
    """The SavedModel's serving_default in a process with TensorFlow and NumPy only."""
    np.save(tmp_path / "digits.npy", trained.digits)
    script = """if True:
        import sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load(sys.argv[1])
        serve = loaded.signatures["serving_default"]
        (spec,) = serve.structured_input_signature[1].values()
        assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 28, 28, 1], spec
        (output,) = serve(tf.constant(np.load(sys.argv[2]))).values()
        np.save(sys.argv[3], output.numpy())
        imported = sorted(name for name in sys.modules if name.split(".")[0] == "keras_labs")
        assert not imported, imported
    """
    result = subprocess.run([sys.executable, "-c", script, trained.metrics["export"],
                             str(tmp_path / "digits.npy"), str(tmp_path / "served.npy")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    max_diff, argmax_agreement = agreement(np.load(tmp_path / "served.npy"), trained.expected)
    assert max_diff <= MAX_ABS_DIFF and argmax_agreement == 1.0
    # The model learned something: the comparison is not between two uniform guesses.
    assert (trained.expected.argmax(axis=1) == trained.labels).mean() > 0.85


def test_onnxruntime_serves_raw_uint8_digits(trained):
    session = onnxruntime.InferenceSession(f"{trained.metrics['export']}/model.onnx",
                                           providers=["CPUExecutionProvider"])
    (inputs,) = session.get_inputs()
    assert inputs.type == "tensor(uint8)" and inputs.shape[1:] == [28, 28, 1]
    (got,) = session.run(None, {inputs.name: trained.digits})
    assert agreement(got, trained.expected)[0] <= MAX_ABS_DIFF
    assert agreement(got, trained.expected)[1] == 1.0


def test_litert_interpreter_serves_raw_uint8_digits(trained, tmp_path):
    run = fake_run(tmp_path, "litert")
    version = export.export_model(trained.model, run, normalize="unit")
    assert {"saved_model.pb", "model.tflite"} <= {path.name for path in version.iterdir()}
    interpreter = Interpreter(model_path=str(version / "model.tflite"))
    runner = interpreter.get_signature_runner("serving_default")
    (detail,) = runner.get_input_details().values()
    assert detail["dtype"] == np.uint8 and list(detail["shape_signature"]) == [-1, 28, 28, 1]
    (got,) = runner(images=trained.digits).values()
    assert agreement(got, trained.expected)[0] <= MAX_ABS_DIFF
    assert agreement(got, trained.expected)[1] == 1.0


def test_signature_refuses_float_images(trained):
    loaded = tf.saved_model.load(trained.metrics["export"])
    with pytest.raises((TypeError, ValueError)):
        loaded.serve(tf.zeros((1, 28, 28, 1), tf.float32))


def test_versions_count_up_and_never_replace_one(trained, tmp_path):
    run = fake_run(tmp_path)
    lab_folder = tmp_path / "sm" / "mnist-cnn"
    (lab_folder / "7").mkdir(parents=True)
    (lab_folder / "7" / "saved_model.pb").write_bytes(b"an earlier model")
    (lab_folder / "not-a-version").mkdir()
    (lab_folder / "12x").mkdir()
    first = export.export_model(trained.model, run, normalize="unit")
    second = export.export_model(trained.model, run, normalize="unit")
    assert (first.name, second.name) == ("8", "9")
    assert (lab_folder / "7" / "saved_model.pb").read_bytes() == b"an earlier model"
    record = json.loads((second / export.RUN_RECORD).read_text())
    assert record["preset"] == "seed" and record["commit"] == "0" * 40
    assert export.versions(lab_folder) == [7, 8, 9]
    assert run_folders.exports_of_run(tmp_path / "sm", "mnist-cnn", run.run_id) == [first, second]


def test_a_version_taken_meanwhile_is_skipped(trained, tmp_path, monkeypatch):
    """Another writer takes version 1 between the listing and the rename: the next is used."""
    run = fake_run(tmp_path)
    taken = tmp_path / "sm" / "mnist-cnn" / "1"
    taken.mkdir(parents=True)
    (taken / "saved_model.pb").write_bytes(b"the other writer's")
    original = export.versions
    monkeypatch.setattr(export, "versions", lambda folder: [v for v in original(folder) if v != 1])
    assert export.export_model(trained.model, run, normalize="unit").name == "2"
    assert (taken / "saved_model.pb").read_bytes() == b"the other writer's"


def test_uint8_scaling_is_the_pipelines(tmp_path):
    """`serving_model` scales as `loading.image_pipeline` does: [0, 1] or [-1, 1]."""
    pixels = np.array([0, 1, 127, 128, 254, 255], np.uint8).reshape(1, 6, 1, 1)
    dataset = tf.data.Dataset.from_tensor_slices((pixels, [0]))
    identity = keras.Sequential([keras.Input((6, 1, 1)), keras.layers.Identity()], name="same")
    for normalize in ("unit", "symmetric"):
        served = export.serving_model(identity, normalize)
        assert served.input.dtype == "uint8"
        (pipeline, _), = loading.image_pipeline(dataset, batch_size=1, training=False,
                                                normalize=normalize)
        np.testing.assert_allclose(served(pixels), pipeline, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="normalize='imagenet' is not valid"):
        export.serving_model(identity, "imagenet")


def test_an_unconvertible_model_is_refused_before_anything_is_written(trained, tmp_path):
    for export_format in ("onnx", "litert"):
        with pytest.raises(ConfigError, match=f"export_format='{export_format}' is not possible "
                                              "for mnist-cnn: string ops"):
            export.export_model(trained.model, fake_run(tmp_path, export_format),
                                saved_model_only="string ops")
    with pytest.raises(ConfigError, match="written by its own code"):  # a hand-made SavedModel
        export.export_model(trained.model, fake_run(tmp_path, "onnx"), write=lambda path: None)
    assert not (tmp_path / "sm").exists()


def test_a_missing_converter_is_named_with_its_install(monkeypatch):
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec",
                        lambda name: None if name == "tf2onnx" else real(name))
    with pytest.raises(ConfigError, match=r"export_format='onnx' needs the tf2onnx package: "
                                          r"pip install tf2onnx"):
        export.check_format("onnx")
    export.check_format("litert")  # TensorFlow's own converter
    with pytest.raises(ConfigError, match="export_format='coreml' is not valid"):
        export.check_format("coreml")


def test_a_failed_conversion_keeps_the_saved_model_and_says_so(trained, tmp_path):
    class NoOnnx(keras.Model):
        def export(self, filepath, format="tf_saved_model", **kwargs):
            if format == "onnx":
                raise RuntimeError("unsupported op: Frobnicate\nsecond line")
            return super().export(filepath, format=format, **kwargs)

    inner = trained.model
    model = NoOnnx(inner.input, inner.output)
    with pytest.raises(KerasLabsError) as raised:
        export.export_model(model, fake_run(tmp_path, "onnx"))
    message = str(raised.value)
    assert "\n" not in message and "unsupported op: Frobnicate" in message
    version = tmp_path / "sm" / "mnist-cnn" / "1"
    assert message.endswith(f"the SavedModel is exported to {version}")
    assert (version / "saved_model.pb").is_file() and not (version / "model.onnx").exists()
    assert "Frobnicate" in json.loads((version / export.RUN_RECORD).read_text())[
        "conversion_failed"]


def test_names_cannot_leave_the_export_folder(trained, tmp_path):
    for name in ("..", "a/b", ""):
        for field in ("lab", "run_id"):
            run = fake_run(tmp_path)
            setattr(run, field, name)
            with pytest.raises(ConfigError, match="not a plain folder name"):
                export.export_model(trained.model, run, normalize="unit")
    assert not (tmp_path / "sm").exists()
