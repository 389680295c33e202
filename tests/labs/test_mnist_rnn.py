"""mnist-rnn: the row RNNs, the twelve-run table and the CNN comparison on a tiny run."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import tiny, tiny_run_fixture

from keras_labs import ConfigError, labs
from keras_labs.labs.mnist_rnn import config as lab_config
from keras_labs.labs.mnist_rnn import experiment
from keras_labs.models import rnn

TINY = tiny("mnist-rnn")


tiny_run = tiny_run_fixture("mnist-rnn")


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
    assert on_disk["cnn"]["parameters"] > 100 * on_disk["results"]["gru"]["6"]["parameters"]
    table = (workdir / "results.md").read_text()
    for name in ("SimpleRNN", "LSTM", "GRU", "CNN (mnist-cnn)"):
        assert name in table
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + 6 + 1
    assert "validation accuracy" in table
    assert (workdir / "plots" / "curves.png").stat().st_size > 0
    csvs = {path.stem for path in (workdir / "history").glob("*.csv")}
    assert csvs == {"simple-6", "simple-3", "lstm-6", "lstm-3", "gru-6", "gru-3", "cnn"}
    assert list((workdir / "tb" / "lstm-3").rglob("events.out.tfevents*"))


def test_curves_are_on_validation_and_each_model_is_tested_once_after(tiny_run):
    workdir, metrics = tiny_run
    # 256 training examples: a seeded 10% held out for the curves; 200 test examples scored
    # after training (the curves never see them).
    assert metrics["validation_split"] == {"fraction": 0.1, "seed": 0, "train_examples": 230,
                                           "validation_examples": 26}
    for label, row in [*((f"{cell}-{units}", row) for cell, rows in metrics["results"].items()
                         for units, row in rows.items()), ("cnn", metrics["cnn"])]:
        header, *lines = (workdir / "history" / f"{label}.csv").read_text().splitlines()
        last = dict(zip(header.split(","), lines[-1].split(","), strict=True))
        assert row["validation_accuracy"] == pytest.approx(float(last["val_accuracy"])), label
        # Accuracies on 26 and on 200 examples: multiples of 1/26 and of 1/200.
        assert round(row["validation_accuracy"] * 26, 4).is_integer(), label
        assert round(row["test_accuracy"] * 200, 4).is_integer(), label


def test_report_claims_follow_the_results():
    results = {"simple": {"20": {"test_accuracy": 0.88}, "15": {"test_accuracy": 0.87},
                          "10": {"test_accuracy": 0.71}, "5": {"test_accuracy": 0.48}},
               "lstm": {"10": {"test_accuracy": 0.95}, "5": {"test_accuracy": 0.86}},
               "gru": {"10": {"test_accuracy": 0.93}, "5": {"test_accuracy": 0.73}}}
    claims = experiment.report_claims(results, {"test_accuracy": 0.99})
    assert claims == {"simplernn_falls_with_units": True, "lstm_beats_gru_small": True,
                      "cnn_beats_every_rnn": True, "all_meet_report_002": True}
    results["simple"]["5"]["test_accuracy"] = 0.72  # more accurate with fewer units
    results["gru"]["5"]["test_accuracy"] = 0.90
    claims = experiment.report_claims(results, {"test_accuracy": 0.94})
    assert claims == {"simplernn_falls_with_units": False, "lstm_beats_gru_small": False,
                      "cnn_beats_every_rnn": False, "all_meet_report_002": True}
    results["lstm"]["5"]["test_accuracy"] = 0.70  # below ~75% by more than the tolerance
    assert experiment.report_claims(results, None)["all_meet_report_002"] is False
    assert experiment.report_claims({"lstm": {"6": {"test_accuracy": 0.5}}}, None) == {
        "simplernn_falls_with_units": None, "lstm_beats_gru_small": None,
        "cnn_beats_every_rnn": None, "all_meet_report_002": None}


def test_report_figures_are_compared_at_the_same_size(tiny_run):
    _, metrics = tiny_run
    assert metrics["all_meet_report_002"] is None  # sizes 6 and 3 have no report figure
    assert metrics["simplernn_falls_with_units"] in (True, False)
    assert metrics["cnn_beats_every_rnn"] in (True, False)
    figures = {item.metric: item.seed for item in labs.seed_items(lab_config.NAME).items}
    assert (figures["results.lstm.20.test_accuracy"], figures["results.lstm.10.test_accuracy"],
            figures["results.lstm.5.test_accuracy"]) == (0.95, 0.90, 0.75)
    assert figures["results.gru.5.test_accuracy"] == 0.65
    assert experiment.seed_figure("simple", 20) is None


def test_row_rnn_reads_28_steps_of_28_pixels():
    model = rnn.build_row_rnn("gru", 5, unroll=False)
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    probabilities = np.asarray(model(images))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("gru").input.shape == (None, 28, 28)


def test_unknown_cell_is_rejected_by_name():
    with pytest.raises(ConfigError, match="'transformer'"):
        dataclasses.replace(TINY, cells=("lstm", "transformer")).validate()
    for config in lab_config.PRESETS.values():
        config.validate()
