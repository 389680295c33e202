"""Negative controls: every row of the ledger can fail. Each row's verdict is computed on the
metrics of a run that learnt nothing, and must come out "below" or "not shown" (a picture claims
nothing and stays "picture").

Real code where it is cheap: the tiny configuration of six labs (`conftest.run_tiny`) with a
learning rate of 1e-9, so the networks keep their random initialization and a training run
writes every metric the rows read: cifar-cnn (every report-002 grid row, the DeepDIVA, tutorial
and minor rows), mnist-cnn, mnist-rnn (all four sizes of the three cells and the CNN), the
autoencoder, char-rnn and word-rnn. A tiny run scores a few hundred sample images; each numeric
row is judged as if scored on its own preset's test set (the committed result's
`test_examples`), since the question is whether the row as declared could fail.

Synthetic metrics where a real control is out of reach in a test's time, each built from the
committed result with the figures a broken run would give:
* gan: a constant generator (every sample the same 1: FID in the hundreds, class entropy 0,
  collapsed onto 1s from the first checkpoint); the tiny GAN trains its scoring classifier and
  the lab has no constant-generator setting.
* adversarial: a one-step attack (a 9 probability near 0.1, nothing fooled, no epsilon that
  fools every 4); the tiny run trains a classifier and runs the whole attack suite.
* transfer: shuffled target labels (every strategy at chance, 20% on 5 classes); the lab has no
  label-shuffling setting and trains a source network first.
* embeddings: an untrained network (its "trained" features are the untrained ones the committed
  result records); the tiny run's t-SNE alone takes tens of seconds.
* deconvnet: its rows are pictures; the committed metrics serve.
"""

import copy
import dataclasses
from pathlib import Path

import pytest
from conftest import run_tiny

from keras_labs.results import ledger

RESULTS = Path(__file__).resolve().parent.parent / "results"
BROKEN = 1e-9  # a learning rate at which nothing is learnt
REAL = {
    "cifar-cnn": dict(learning_rate=BROKEN, running_loss_every=2, test_examples=0),
    "mnist-cnn": dict(learning_rate=BROKEN),
    "mnist-rnn": dict(learning_rate=BROKEN, hidden_sizes=(20, 15, 10, 5), epochs=1,
                      compare_cnn=True),
    "autoencoder": dict(learning_rate=BROKEN),
    "char-rnn": dict(learning_rate=BROKEN),
    "word-rnn": dict(learning_rate=BROKEN),
}
FAILED = ("below", "not shown", "picture")


def _committed(lab: str) -> dict:
    """The committed metrics of any preset of `lab` (the shape a synthetic control copies)."""
    results = ledger.load_results(RESULTS)
    return copy.deepcopy(next(result["metrics"] for (name, _), result in sorted(results.items())
                              if name == lab))


def _constant_generator() -> dict:
    metrics = _committed("gan")
    steps = len(metrics["over_training"]["step"])
    metrics.update(classifier_fid=800.0, class_entropy=0.0, largest_class=1,
                   largest_class_share=1.0, mode_collapse=True, no_mode_collapse=False,
                   favours_1s_and_9s=True, share_of_1s_and_9s=1.0, label_agreement=0.1,
                   generator_loss_range=0.0, class_histogram=[0.0, 1.0] + [0.0] * 8)
    metrics["over_training"].update(classifier_fid=[800.0] * steps, class_entropy=[0.0] * steps,
                                    largest_class=[1] * steps, largest_class_share=[1.0] * steps)
    return metrics


def _one_step_attack() -> dict:
    metrics = _committed("adversarial")
    for start in ("noise", "zeros", "source"):
        metrics["budget"][start].update(confidence=0.1, confidence_min=0.05, success_rate=0.0)
    metrics.update(fours_fooled=False, universal_fools_heldout=False,
                   gradient_hotspots_shared=False, gradient_map_correlation=0.0,
                   perturbation_hotspots_shared=False, perturbation_map_correlation=0.0,
                   smallest_linf_epsilon_for_100_percent=None)
    return metrics


def _shuffled_labels() -> dict:
    metrics = _committed("transfer")
    for strategy in ("scratch", "fine_tune", "feature_extraction"):
        for target in metrics[strategy].values():
            target.update(test_accuracy=0.2, validation_accuracy=0.2)
    # the svhn preset's target (over the time limit, never committed): at chance, 10 digits
    for strategy in ("scratch", "fine_tune", "feature_extraction", "zero_shot"):
        metrics[strategy]["svhn_cropped"] = {"test_accuracy": 0.1, "validation_accuracy": 0.1}
    metrics["target_examples"]["svhn_cropped"] = {"train": 65931, "validation": 7326,
                                                  "test": 26032}
    metrics.update(feature_extraction_best=False, fine_tune_worst=False)
    return metrics


def _untrained_embeddings() -> dict:
    metrics = _committed("embeddings")
    metrics["trained"] = dict(metrics["untrained"])
    metrics["trained_beats_untrained"] = dict.fromkeys(metrics["trained_beats_untrained"], False)
    for key in list(metrics):
        if key.startswith("trained_beats_untrained_"):
            metrics[key] = False
    return metrics


SYNTHETIC = {"gan": _constant_generator, "adversarial": _one_step_attack,
             "transfer": _shuffled_labels, "embeddings": _untrained_embeddings,
             "deconvnet": lambda: _committed("deconvnet")}


@pytest.fixture(scope="module")
def controls(tmp_path_factory) -> dict[str, dict]:
    """{lab: the metrics of a run of it that learnt nothing}."""
    found = {lab: make() for lab, make in SYNTHETIC.items()}
    for lab, broken in REAL.items():
        _, metrics, _ = run_tiny(tmp_path_factory, lab, **broken)
        found[lab] = metrics
    return found


def _scored_like_the_preset(metrics: dict, lab: str, preset: str, committed: dict) -> dict:
    result = committed.get((lab, preset))
    if result and "test_examples" in result["metrics"] and "test_examples" in metrics:
        return {**metrics, "test_examples": result["metrics"]["test_examples"]}
    return metrics


def test_every_lab_with_rows_has_a_negative_control():
    assert {entry.lab for entry in ledger.items()} == set(REAL) | set(SYNTHETIC)


def test_the_broken_runs_learnt_nothing(controls):
    assert controls["cifar-cnn"]["test_accuracy"] < 0.25
    assert controls["mnist-cnn"]["test_accuracy"] < 0.25
    assert controls["mnist-rnn"]["results"]["lstm"]["20"]["test_accuracy"] < 0.25
    assert controls["autoencoder"]["test_accuracy"] < 0.25
    assert controls["char-rnn"]["curve"][-1]["validation_perplexity"] > 30


def test_every_row_fails_on_its_negative_control(controls):
    committed = ledger.load_results(RESULTS)
    # Another preset's figure (a comparison, a grid's best) comes from a broken run too.
    broken_results = {key: {**result, "metrics": controls[key[0]]}
                      for key, result in committed.items() if key[0] in controls}
    for entry in ledger.items():  # a compared run not committed yet is broken too
        lab, _, rest = entry.versus.partition("/")
        if entry.versus and (lab, rest.partition(":")[0]) not in broken_results:
            broken_results[(lab, rest.partition(":")[0])] = {"metrics": controls[lab]}
    verdicts = {}
    for entry in ledger.items():
        for preset in filter(None, (entry.preset, entry.equal_updates)):
            metrics = _scored_like_the_preset(controls[entry.lab], entry.lab, preset, committed)
            reading = ledger.judge(entry, metrics, broken_results)
            verdicts[(entry.item, preset)] = reading
    passed = {key: reading for key, reading in verdicts.items() if reading.verdict not in FAILED}
    assert not passed, "rows a broken run passes:\n" + "\n".join(
        f"{item} ({preset}): {reading.verdict} {reading.ours} {reading.why}"
        for (item, preset), reading in passed.items())
    counted = sum(reading.verdict != "picture" for reading in verdicts.values())
    assert counted >= 70  # the claims and figures, not just pictures, were put to the test


def test_a_row_without_a_condition_that_a_broken_run_passes_is_caught(controls):
    """The check itself can fail: a claim judged only by a present value passes anything."""
    loose = dataclasses.replace(ledger.items(item="000-ex1-curves")[0], condition="",
                                metric="losses.validation")
    assert ledger.judge(loose, controls["cifar-cnn"]).verdict == "not shown"  # a list is no claim
    ceiling_only = dataclasses.replace(
        ledger.items(item="002-t1-ceiling")[0],
        condition="max(cifar-cnn/report002-*:test_accuracy) <= 0.6")
    broken = {("cifar-cnn", "report002-relu-adam-normal"): {"metrics": controls["cifar-cnn"]}}
    assert ledger.judge(ceiling_only, controls["cifar-cnn"], broken).verdict == "shown"
