import json
import os

import numpy as np
import pytest

from keras_labs import KerasLabsError, visualization
from keras_labs.results import report


def fake_run(root, lab, name, metrics, kind="full"):
    folder = root / lab / name
    (folder / "plots").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": 0}))
    (folder / "env.json").write_text(json.dumps({"lab": lab, "data": {"mnist": {"kind": kind, "partial": False}}}))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    visualization.image_grid(np.zeros((2, 4, 4)), folder / "plots" / "grid.png", columns=2)
    return folder


def test_report_has_a_section_seed_ledger_and_inline_plots_per_lab(tmp_path):
    fake_run(tmp_path / "runs", "mnist-cnn", "20261130-120000-seed-ab12", {"test_accuracy": 0.992})
    fake_run(tmp_path / "runs", "autoencoder", "20261130-120000-seed-cd34", {"test_accuracy": 0.40},
             kind="sample")
    # A run of another preset must not be read for the seed preset's items.
    fake_run(tmp_path / "runs", "autoencoder", "20261130-130000-quick-ef56", {"test_accuracy": 0.9})
    page = report.build(tmp_path / "runs", tmp_path / "out", tmp_path / "no-results").read_text()
    assert '<section id="mnist-cnn">' in page and '<section id="autoencoder">' in page
    assert "<td>000-ex2-mnist-cnn</td>" in page and "<td>99.20%</td><td>full</td><td class='beaten'>" in page
    assert "<td>40.00%</td><td>sample</td><td class='below'>below" in page
    assert "90.00%" not in page.split('<section id="autoencoder">')[1].split("<h3>Runs")[0]
    assert "n/a" not in page
    assert page.count("data:image/png;base64,") == 2  # the latest run of each lab
    assert "src=\"http" not in page  # self-contained


def test_report_on_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(KerasLabsError, match="does not exist"):
        report.build(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KerasLabsError, match="no run folders"):
        report.build(tmp_path / "empty", tmp_path / "out")


def test_report_renders_in_headless_chromium(tmp_path):
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        # CI installs the browser and sets this, so there a missing browser is a failure.
        if os.environ.get("KERAS_LABS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed and KERAS_LABS_REQUIRE_BROWSER=1")
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    labs = ["mnist-cnn", "cifar-cnn", "gan"]
    for lab in labs:
        fake_run(tmp_path / "runs", lab, "r", {"test_accuracy": 0.9})
    page = report.build(tmp_path / "runs", tmp_path / "out")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert 'data-broken-images="0"' in dom
    for lab in labs:
        assert f'<section id="{lab}">' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


def test_report_shows_the_equal_updates_reading_beside_the_reports_recipe(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "cifar-cnn", "20261130-120000-tutorial-ab12", {"test_accuracy": 0.37})
    fake_run(runs, "cifar-cnn", "20261130-120100-tutorial-equal-updates-cd34",
             {"test_accuracy": 0.51})
    page = report.build(runs, tmp_path / "out", tmp_path / "no-results").read_text()
    row = page.split("<td>004-t1-accuracy</td>", 1)[1].split("</tr>", 1)[0]
    assert "37.00%; equal updates: 51.00%" in row
    assert "class='below'>below (" in row and "; equal updates: below)</td>" in row


HOSTILE = "a'\"><script>alert(1)<img src=x onerror=alert(2)>&amp;"


def test_every_value_is_escaped_even_from_a_hostile_run_folder(tmp_path):
    """A run folder may be named anything, and its files may hold anything: the report shows
    it all as text, in attributes (the section's id, the link to it) as in the page."""
    from html.parser import HTMLParser

    runs = tmp_path / "runs"
    # The lab comes from the folder's name (no env.json lab), or from env.json.
    named = fake_run(runs, HOSTILE, HOSTILE + "-run", {"test_accuracy": HOSTILE, HOSTILE: 1.0})
    (named / "env.json").write_text(json.dumps({"data": {HOSTILE: {"kind": HOSTILE}}}))
    (named / "config.json").write_text(json.dumps({"seed": HOSTILE}))
    declared = fake_run(runs, "mnist-cnn", "20261130-120000-seed-ab12", {"test_accuracy": 0.99})
    (declared / "env.json").write_text(json.dumps({"lab": HOSTILE + "2"}))
    page = report.build(runs, tmp_path / "out", tmp_path / "no-results").read_text()

    class Elements(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.attributes, self.text = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))
            self.attributes += [value for _, value in attrs if value is not None]

        def handle_data(self, data):
            self.text.append(data)

    parsed = Elements()
    parsed.feed(page)
    # Only the page's own elements: its one script, and the plots inline as images.
    assert [tag for tag, _ in parsed.tags].count("script") == 1
    images = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 2 and all(set(attrs) == {"alt", "src"} and
                                     attrs["src"].startswith("data:image/png;base64,")
                                     for attrs in images)
    assert not [attrs for _, attrs in parsed.tags if "onerror" in attrs]
    # The hostile text comes back whole, as text and as attribute values.
    for lab in (HOSTILE, HOSTILE + "2"):
        assert lab in parsed.attributes and f"#{lab}" in parsed.attributes
        assert lab in parsed.text
    assert HOSTILE + "-run" in parsed.text
    assert "<script>alert" not in page
