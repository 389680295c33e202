import json

import numpy as np
import pytest

from keras_labs import KerasLabsError, report, visualization


def fake_run(root, lab, name, metrics, kind="full"):
    folder = root / lab / name
    (folder / "plots").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": 0}))
    (folder / "env.json").write_text(json.dumps({"lab": lab, "data": {"mnist": {"kind": kind, "partial": False}}}))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    visualization.image_grid(np.zeros((2, 4, 4)), folder / "plots" / "grid.png", columns=2)
    return folder


def test_report_has_a_section_verdict_and_inline_plots_per_lab(tmp_path):
    fake_run(tmp_path / "runs", "mnist-cnn", "a", {"test_accuracy": 0.992})
    fake_run(tmp_path / "runs", "autoencoder", "b", {"test_accuracy": 0.40}, kind="sample")
    page = report.build(tmp_path / "runs", tmp_path / "out").read_text()
    assert '<section id="mnist-cnn">' in page and '<section id="autoencoder">' in page
    assert "99.20% vs 95% (meets the bar)" in page
    assert "40.00% vs 56.15% (below the bar) [on sample data" in page
    assert page.count("data:image/png;base64,") == 2
    assert "src=\"http" not in page  # self-contained


def test_report_on_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(KerasLabsError, match="does not exist"):
        report.build(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KerasLabsError, match="no run folders"):
        report.build(tmp_path / "empty", tmp_path / "out")
