"""Every run records the fingerprint of the code it imported; the ledger recomputes it from the
files on disk and calls a result stale, naming the modules, when they differ."""

import json
import shutil
import subprocess
from pathlib import Path

from keras_labs import runs
from keras_labs.results import freshness, ledger

PACKAGE = Path(__file__).resolve().parent.parent / "keras_labs"


def test_a_runs_fingerprint_is_what_the_ledger_computes_from_the_files():
    recorded = runs.code_fingerprint()
    modules = recorded["modules"]
    assert {"keras_labs", "keras_labs.runs", "keras_labs.config"} <= set(modules)
    # the command line, the results layer and the seed tables compute no figure
    assert not [name for name in modules
                if name.split(".")[1:2] and name.split(".")[1] in runs.NOT_FINGERPRINTED]
    assert freshness.current_digests(modules) == modules
    assert freshness.combined(modules) == recorded["digest"]
    assert freshness.changed_modules(recorded) == []


def test_a_module_changed_or_gone_makes_the_result_stale_and_is_named(tmp_path):
    package = tmp_path / "keras_labs"
    (package / "labs" / "gan").mkdir(parents=True)
    for name in ("__init__.py", "training.py", "labs/__init__.py", "labs/gan/__init__.py",
                 "labs/gan/experiment.py"):
        shutil.copy(PACKAGE / name, package / name)
    names = ["keras_labs", "keras_labs.training", "keras_labs.labs", "keras_labs.labs.gan",
             "keras_labs.labs.gan.experiment"]
    assert freshness.module_file("keras_labs.labs.gan", package) == package / "labs/gan/__init__.py"
    assert freshness.module_file("keras_labs.nope", package) is None
    digests = freshness.current_digests(names, package)
    fingerprint = {"digest": freshness.combined(digests), "modules": digests}
    result = {"lab": "no-such-lab", "code": fingerprint}
    assert freshness.staleness(result, package) == ""
    with open(package / "training.py", "a") as source:
        source.write("\n# an edit\n")
    assert freshness.changed_modules(fingerprint, package) == ["keras_labs.training"]
    assert freshness.staleness(result, package) == "stale: training changed"
    (package / "labs/gan/experiment.py").unlink()
    assert freshness.staleness(result, package) == (
        "stale: labs.gan.experiment, training changed")
    assert freshness.staleness({"lab": "no-such-lab"}, package) == "stale: no fingerprint"


def test_a_changed_config_is_stale_and_names_its_fields():
    config = freshness.resolved_config("mnist-cnn", "seed")
    code = runs.code_fingerprint()
    current = {"lab": "mnist-cnn", "preset": "seed", "config": config, "code": code}
    assert freshness.staleness(current) == ""
    moved = dict(config, data_dir="/elsewhere", export_dir="/exports")
    assert freshness.staleness({**current, "config": moved}) == ""  # where things live
    changed = dict(config, epochs=config["epochs"] + 1, batch_size=7)
    assert freshness.staleness({**current, "config": changed}) == (
        "stale: config changed (epochs, batch_size)")
    assert freshness.staleness({**current, "config": changed, "code": None}) == (
        "stale: no fingerprint, config changed (epochs, batch_size)")


def test_a_finished_run_writes_its_fingerprint_in_env_json(tmp_path):
    from keras_labs import labs

    config = labs.resolve_config(labs.get("mnist-cnn"), "quick", None, data="sample")
    run = runs.Run("mnist-cnn", config, tmp_path / "r1")
    run.finish({"test_accuracy": 0.5})
    env = json.loads((tmp_path / "r1" / "env.json").read_text())
    assert env["code"]["modules"]["keras_labs.runs"] == freshness.current_digests(
        ["keras_labs.runs"])["keras_labs.runs"]
    assert env["code"]["digest"] == freshness.combined(env["code"]["modules"])


def test_the_committed_results_say_whether_they_are_stale():
    """Every row's code cell comes from its result: no committed result has a fingerprint yet,
    so every row that reads one says "stale: no fingerprint" until `reproduce --stale` runs."""
    results = ledger.load_results(PACKAGE.parent / "results")
    for row in ledger.rows(PACKAGE.parent / "results"):
        result = results.get((row.entry.lab, row.entry.preset))
        if result is None:
            assert row.code == "-"
        elif not result.get("code"):
            assert row.code.startswith("stale: no fingerprint"), row


def test_a_new_preset_leaves_results_fresh_but_a_changed_method_does_not(tmp_path):
    """A lab's config module holds its preset table: adding a preset changes no other preset's
    figure, so only a change outside the preset statements (read back from git at the result's
    commit) counts; without git or the commit, every change counts."""
    package = tmp_path / "keras_labs"
    config = package / "labs" / "cifar_cnn" / "config.py"
    config.parent.mkdir(parents=True)
    shutil.copy(PACKAGE / "labs" / "cifar_cnn" / "config.py", config)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "presets"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    name = "keras_labs.labs.cifar_cnn.config"
    fingerprint = {"modules": freshness.current_digests([name], package)}
    source = config.read_text()
    config.write_text(source + '\n_FAST = dataclasses.replace(PRESETS["best"], epochs=3)\n'
                               'PRESETS["fast"] = _FAST  # a new preset\n'
                               'PRESETS.update(faster=dataclasses.replace(_FAST, epochs=2))\n')
    assert freshness.changed_modules(fingerprint, package) == [name]
    assert freshness.changed_modules(fingerprint, package, commit) == []
    assert freshness.changed_modules(fingerprint, package, "0" * 40) == [name]
    config.write_text(source.replace("num_classes=NUM_CLASSES", "num_classes=NUM_CLASSES + 1"))
    assert freshness.changed_modules(fingerprint, package, commit) == [name]
    config.write_text(source.replace('NAME = "cifar-cnn"', 'NAME = "cifar"'))
    assert freshness.changed_modules(fingerprint, package, commit) == [name]
