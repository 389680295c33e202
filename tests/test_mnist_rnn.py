"""mnist-rnn: the row RNNs, the twelve-run table and the CNN comparison on a tiny run."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import run_tiny, tiny

from keras_labs import ConfigError, models
from keras_labs.labs import mnist_rnn

TINY = tiny("mnist-rnn")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir, metrics, _ = run_tiny(tmp_path_factory, "mnist-rnn")
    return workdir, metrics


def test_table_has_every_cell_size_and_the_cnn(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    assert set(on_disk["results"]) == {"simple", "lstm", "gru"}
    for cell, rows in on_disk["results"].items():
        assert set(rows) == {"6", "3"}, cell
        for row in rows.values():
            assert 0.0 <= row["test_accuracy"] <= 1.0 and row["epoch_time_s"] > 0
            assert row["parameters"] > 0
    assert on_disk["results"]["lstm"]["6"]["parameters"] == 4 * (28 + 6 + 1) * 6 + 7 * 10
    assert on_disk["results"]["simple"]["3"]["report_002"] is None
    assert on_disk["cnn"]["parameters"] > 100 * on_disk["results"]["gru"]["6"]["parameters"]
    table = (workdir / "results.md").read_text()
    for name in ("SimpleRNN", "LSTM", "GRU", "CNN (mnist-cnn)"):
        assert name in table
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + 6 + 1
    assert (workdir / "plots" / "curves.png").stat().st_size > 0
    csvs = {path.stem for path in (workdir / "history").glob("*.csv")}
    assert csvs == {"simple-6", "simple-3", "lstm-6", "lstm-3", "gru-6", "gru-3", "cnn"}
    assert list((workdir / "tb" / "lstm-3").rglob("events.out.tfevents*"))


def test_report_figures_are_compared_at_the_same_size(tiny_run):
    _, metrics = tiny_run
    assert metrics["all_meet_report_002"] is None  # sizes 6 and 3 have no report figure
    row = mnist_rnn.REPORT_002["lstm"]
    assert (row[20], row[10], row[5]) == (0.95, 0.90, 0.75)
    assert mnist_rnn.REPORT_002["gru"][5] == 0.65


def test_row_rnn_reads_28_steps_of_28_pixels():
    model = models.build_row_rnn("gru", 5, unroll=False)
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    probabilities = np.asarray(model(images))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("gru").input.shape == (None, 28, 28)


def test_unknown_cell_is_rejected_by_name():
    with pytest.raises(ConfigError, match="'transformer'"):
        dataclasses.replace(TINY, cells=("lstm", "transformer")).validate()
    for config in mnist_rnn.PRESETS.values():
        config.validate()
