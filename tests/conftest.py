"""Shared fixtures.

Two tiers: fast unit tests on tiny synthetic tensors or `tfds.testing.mock_data`, and a
real-data tier (`real_data_dir`) that prepares datasets from the original files in
`../shared/data` (or `$KERAS_LABS_SHARED_DATA`) once per cache folder and skips when they are
not there. `scripts/test` points the cache at `.cache/tfds` so CI prepares each dataset once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("KERAS_LABS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("KERAS_LABS_TEST_DATA_DIR", ROOT / ".cache" / "tfds"))


def pytest_configure(config):
    # Two logical CPUs for the `mirrored` strategy tests; this must happen before TensorFlow
    # initializes its runtime, so it runs once at start-up for the whole session.
    from keras_labs import training

    training.split_cpu(2)


@pytest.fixture(scope="session")
def real_data_dir():
    """A tfds data dir with the real datasets prepared; call it with the names you need."""
    from keras_labs import data

    def prepared(*names: str) -> str:
        for name in names:
            if data.is_prepared(name, CACHE):
                continue
            if not (SHARED_DATA / name).is_dir():
                pytest.skip(f"real {name} not available under {SHARED_DATA}")
            data.prepare(name, SHARED_DATA, CACHE)
        return str(CACHE)

    return prepared


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    """An empty tfds data dir, also set as TFDS_DATA_DIR, so `data=auto` falls back to samples."""
    path = tmp_path / "tfds"
    path.mkdir()
    monkeypatch.setenv("TFDS_DATA_DIR", str(path))
    return str(path)


def run_cli(*args: str, env: dict | None = None, timeout: float = 300):
    """Runs `python -m keras_labs ARGS` in a subprocess; returns the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "keras_labs", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)
