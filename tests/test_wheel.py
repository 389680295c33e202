"""The wheel works outside the repository: built, installed into a fresh virtualenv that reuses
the already-installed dependencies, it runs a lab and writes a report from there."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # Without isolation the build reuses this environment's setuptools and wheel (no download).
    isolation = [] if importlib.util.find_spec("wheel") else ["--use-pep517"]
    no_isolation = ["--no-build-isolation"] if not isolation else []
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *no_isolation,
                           *isolation, "--quiet", "-w", str(dist), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (built,) = dist.glob("keras_labs-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv holding the wheel; its dependencies come from this environment."""
    fresh = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    # A path line, not a site dir: this environment's .pth files (the editable install of the
    # repository among them) are not run, so `keras_labs` can only come from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return fresh


def test_the_wheel_holds_the_data_files_and_the_licence(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "keras_labs/labs/mnist_cnn/seeds.md" in names
    assert sum(name.endswith("/seeds.md") for name in names) == 11
    assert "keras_labs/samples/mnist.npz" in names
    assert any(name.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in name
               for name in names)
    assert not any(name.startswith(("tests/", "results/")) for name in names)


@pytest.mark.slow
def test_the_installed_wheel_runs_a_lab_and_a_report_outside_the_repository(installed, tmp_path):
    bin_dir = installed / ("Scripts" if os.name == "nt" else "bin")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": f"{bin_dir}{os.pathsep}"
           f"{os.environ['PATH']}"}
    where = subprocess.run([str(bin_dir / "python"), "-c", "import keras_labs; "
                            "print(keras_labs.__file__)"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout + where.stderr
    run = subprocess.run([str(bin_dir / "keras-labs"), "run", "mnist-cnn", "--preset", "quick",
                          "--data", "sample", "--set", "train_examples=2000", "--epochs", "1",
                          "--out", "runs", "--export-dir", "saved_models"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    (metrics,) = (tmp_path / "runs" / "mnist-cnn").glob("*/metrics.json")
    assert '"test_accuracy"' in metrics.read_text()
    report = subprocess.run([str(bin_dir / "keras-labs"), "report", "runs"], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "runs" / "report" / "report.html").is_file()
    # The committed ledger lives in the repository, not in the wheel: the report says so.
    said = report.stdout + report.stderr
    assert "results/" in said and "--results" in said, said
