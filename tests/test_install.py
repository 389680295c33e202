"""The install works where the users are: each platform and Python picks a TensorFlow
distribution that the package index really has a wheel of.

The index's list of files for a project (PEP 691 JSON, else the PEP 503 HTML page) names every
wheel with its tags, so no wheel (200-600 MB) is downloaded. Skipped when no index answers.
"""

from __future__ import annotations

import configparser
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
INDEX = os.environ.get("KERAS_LABS_INDEX_URL", "https://pypi.org/simple").rstrip("/")

# Per platform users run on: sys_platform, platform_system, platform_machine, os_name, and the
# pattern of its wheels' platform tags.
PLATFORMS = {
    "linux-x86_64": ("linux", "Linux", "x86_64", "posix", r"manylinux.*_x86_64"),
    "linux-aarch64": ("linux", "Linux", "aarch64", "posix", r"manylinux.*_aarch64"),
    "macos-arm64": ("darwin", "Darwin", "arm64", "posix", r"macosx_.*_(arm64|universal2)"),
    "windows-x86_64": ("win32", "Windows", "AMD64", "nt", r"win_amd64"),
}
PYTHONS = ("3.10", "3.13")


def _options() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser["options"]


def _requirements(text: str) -> list[Requirement]:
    return [Requirement(line.strip()) for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _environment(platform: str, python: str) -> dict:
    sys_platform, system, machine, os_name, _ = PLATFORMS[platform]
    return {"sys_platform": sys_platform, "platform_system": system, "platform_machine": machine,
            "os_name": os_name, "python_version": python, "python_full_version": f"{python}.0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "extra": ""}


TENSORFLOW_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"}


def _extras() -> dict[str, list[Requirement]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return {name: _requirements(text) for name, text in parser["options.extras_require"].items()}


def _tensorflow_choice(platform: str, python: str, extras: tuple[str, ...] = ()
                       ) -> list[Requirement]:
    """The TensorFlow requirements `pip install .[extras]` makes on `platform` and `python`."""
    chosen = []
    for extra in ("", *extras):
        environment = {**_environment(platform, python), "extra": extra}
        requirements = (_requirements(_options()["install_requires"]) if not extra
                        else _extras()[extra])
        chosen += [requirement for requirement in requirements
                   if requirement.name in TENSORFLOW_DISTRIBUTIONS
                   and (requirement.marker is None or requirement.marker.evaluate(environment))]
    return chosen


@functools.cache
def _index_listing(project: str) -> list[str] | str:
    """The wheel file names the index lists for `project`, or why it could not be read."""
    request = urllib.request.Request(f"{INDEX}/{project}/", headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
            kind = response.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError) as error:
        return f"no package index reachable at {INDEX}: {error}"
    if "json" in kind:
        return [entry["filename"] for entry in json.loads(body)["files"]]
    return re.findall(r">([^<>]+\.whl)<", body)


def _index_files(project: str) -> list[str]:
    listing = _index_listing(project)
    if isinstance(listing, str):
        pytest.skip(listing)
    return listing


def test_python_requires_admits_every_supported_version():
    specifier = SpecifierSet(_options()["python_requires"])
    assert all(f"{python}.0" in specifier for python in ("3.10", "3.11", "3.12", "3.13"))
    assert "3.9.0" not in specifier and "3.14.0" not in specifier


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_platform_gets_exactly_one_tensorflow_with_a_wheel_on_the_index(platform, python):
    chosen = _tensorflow_choice(platform, python)
    assert len(chosen) == 1, f"{platform}, Python {python}: TensorFlow requirements {chosen}"
    requirement = chosen[0]
    tag = "cp" + python.replace(".", "")
    wheels = []
    for filename in _index_files(requirement.name):
        if not filename.endswith(".whl"):
            continue
        _, version, _, tags = parse_wheel_filename(filename)
        if version in requirement.specifier and any(
                item.interpreter == tag and re.fullmatch(PLATFORMS[platform][-1], item.platform)
                for item in tags):
            wheels.append(filename)
    assert wheels, (f"{platform}, Python {python}: the index has no {requirement.name} "
                    f"{requirement.specifier} wheel for {tag}")


@pytest.mark.parametrize("python", ("3.10", "3.11", "3.12", "3.13"))
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_install_with_any_extras_holds_exactly_one_tensorflow_distribution(platform, python):
    """Two distributions (tensorflow-cpu and tensorflow) would write one tensorflow/ folder."""
    every = tuple(_extras())
    for extras in [(), *((extra,) for extra in every), every]:
        names = {requirement.name for requirement in _tensorflow_choice(platform, python, extras)}
        assert len(names) == 1, f"{platform}, Python {python}, extras {extras}: {sorted(names)}"


def test_gpu_extra_is_the_cuda_build_on_linux_x86_64_only():
    gpu = _extras()["gpu"]
    assert [(item.name, item.extras) for item in gpu] == [("tensorflow", {"and-cuda"})]
    assert gpu[0].marker.evaluate(_environment("linux-x86_64", "3.12"))
    assert not gpu[0].marker.evaluate(_environment("macos-arm64", "3.12"))


def test_one_version_source_and_a_licence_file():
    import keras_labs

    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert parser["metadata"]["version"] == "attr: keras_labs.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", keras_labs.__version__)
    licence = ROOT / parser["metadata"]["license_files"].strip()
    assert "Apache License" in licence.read_text() and "Version 2.0" in licence.read_text()


def test_code_needs_nothing_newer_than_python_3_10():
    """Only Python 3.11 runs here: vermin reads the code for the oldest Python it needs."""
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin is not installed (pip install -e .[dev])")
    result = subprocess.run(
        [vermin, "--no-tips", "--target=3.10-", "--violations",
         "--eval-annotations", "--exclude", "str.decode",  # bytes.decode, read as Python 2's
         "keras_labs", "scripts", "tests"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Minimum required versions: 3.10" in result.stdout or \
        re.search(r"Minimum required versions: 3\.[0-9]$", result.stdout, re.M), result.stdout


def test_two_tensorflow_distributions_are_refused_with_the_fix(monkeypatch):
    from importlib import metadata

    import keras_labs

    versions = {"tensorflow": "2.21.0", "tensorflow-cpu": "2.21.0"}
    monkeypatch.setattr(metadata, "version", lambda name: versions[name])
    with pytest.raises(keras_labs.KerasLabsError, match="pip uninstall -y tensorflow-cpu"):
        keras_labs.check_tensorflow_install()
    del versions["tensorflow"]

    def only_cpu(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(metadata, "version", only_cpu)
    keras_labs.check_tensorflow_install()  # one distribution: fine
