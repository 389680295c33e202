"""The seed ledger: declarations, verdicts, `keras-labs reproduce`, and the committed results/
LEDGER.md / README tables staying in step with results/*.json."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_labs import ConfigError, labs
from keras_labs.labs.cifar_cnn import config as lab_config_cifar
from keras_labs.results import benchmarks, freshness, jobs, ledger, reproduce

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def test_every_report_has_seed_items_and_each_names_a_real_preset_and_estimate():
    found = ledger.items()
    assert len(found) >= 40
    assert {entry.report for entry in found} == set(ledger.REPORTS)
    assert len({entry.item for entry in found}) == len(found)
    for entry in found:
        module = labs.get(entry.lab)
        for preset in filter(None, (entry.preset, entry.equal_updates)):
            assert preset in module.PRESETS, (entry.item, preset)
            minutes = labs.seed_items(entry.lab).minutes.get(preset)
            assert isinstance(minutes, float) and minutes > 0, (entry.item, preset)
        if entry.series:
            assert all(math.isfinite(value) for value in entry.seed) and entry.direction == "match"
        elif not entry.qualitative:
            assert math.isfinite(float(entry.seed))
            assert entry.direction in ("higher", "lower", "match")
        assert entry.seed_text
        if entry.versus:
            other_lab, _, rest = entry.versus.partition("/")
            assert rest.partition(":")[0] in labs.get(other_lab).PRESETS


def test_the_old_hand_kept_seed_tables_are_gone():
    from keras_labs.labs.cifar_cnn import config, experiment
    from keras_labs.results import report

    assert not hasattr(report, "SEED_FIGURES")
    for module in (config, experiment):
        assert not hasattr(module, "SEED_RESULTS") and not hasattr(module, "SEED_ITEMS")


def test_judge_gives_each_verdict():
    item = ledger.SeedItem(report="004", item="x", description="d", seed=0.54, seed_text="54%",
                           metric="a.b", preset="tutorial", tolerance=0.01)
    assert ledger.judge(item, {"a": {"b": 0.60}}).verdict == "beaten"
    assert ledger.judge(item, {"a": {"b": 0.545}}).verdict == "met"
    assert ledger.judge(item, {"a": {"b": 0.50}}).verdict == "below"
    assert ledger.judge(item, None).verdict == "not run"
    assert ledger.judge(item, {"a": {}}).verdict == "not run"
    lower = ledger.SeedItem(report="004", item="y", description="d", seed=1.292, seed_text="1.292",
                            metric="loss.-1.value", preset="tutorial", direction="lower", unit="")
    assert ledger.judge(lower, {"loss": [{"value": 3.0}, {"value": 1.2}]}).verdict == "beaten"
    claim = ledger.SeedItem(report="003", item="z", description="d", seed="qualitative",
                            seed_text="CNN beats AE", metric="acc", preset="seed", direction="lower",
                            versus="cifar-cnn/minor-10ep:test_accuracy")
    others = {("cifar-cnn", "minor-10ep"): {"metrics": {"test_accuracy": 0.7}}}
    assert ledger.judge(claim, {"acc": 0.5}, others).verdict == "shown"
    assert ledger.judge(claim, {"acc": 0.8}, others).verdict == "not shown"
    assert ledger.judge(claim, {"acc": 0.5}, {}).verdict == "not run"
    flag = dataclasses_replace(claim, versus="", metric="shown")
    assert ledger.judge(flag, {"shown": True}).verdict == "shown"
    assert ledger.judge(flag, {"shown": False}).verdict == "not shown"
    # A present value that is not a true bool shows nothing: a claim needs a condition.
    assert ledger.judge(flag, {"shown": [1, 2]}).verdict == "not shown"
    picture = dataclasses_replace(flag, seed="picture")
    assert ledger.judge(picture, {"shown": True}).verdict == "picture"


def dataclasses_replace(item, **changes):
    import dataclasses

    return dataclasses.replace(item, **changes)


def test_bad_seed_item_declarations_are_refused():
    with pytest.raises(ValueError, match="'005'"):
        ledger.SeedItem(report="005", item="x", description="d", seed=1.0, seed_text="1",
                        metric="m", preset="p")
    with pytest.raises(ValueError, match="'pictures'"):
        ledger.SeedItem(report="000", item="x", description="d", seed="pictures", seed_text="1",
                        metric="m", preset="p")
    with pytest.raises(ConfigError, match="'9z'"):
        ledger.items(item="9z")


def test_a_result_is_current_only_while_its_config_is_the_presets():
    current = reproduce._resolved("mnist-cnn", "seed")
    assert reproduce.same_experiment(dict(current), current, "mnist-cnn")
    changed = dict(current, epochs=current["epochs"] + 1)
    assert not reproduce.same_experiment(changed, current, "mnist-cnn")
    # A field added to the lab later, at its default, does not make old results stale ...
    older = {key: value for key, value in current.items() if key != "probe_every_steps"}
    default = type(labs.get("mnist-cnn").PRESETS["seed"])().probe_every_steps
    if current["probe_every_steps"] == default:
        assert reproduce.same_experiment(older, current, "mnist-cnn")
    # ... but a field that no longer exists does.
    assert not reproduce.same_experiment(dict(current, removed_knob=1), current, "mnist-cnn")


def _current_code(*modules: str) -> dict:
    """A fingerprint of `modules` as they are on disk now (as a run of today's code records)."""
    digests = freshness.current_digests(modules)
    return {"digest": freshness.combined(digests), "modules": digests}


def test_plan_skips_current_results_unless_forced(tmp_path):
    entry = next(entry for entry in ledger.items(lab="mnist-cnn"))
    result = {"lab": "mnist-cnn", "preset": entry.preset, "wall_time_s": 120.0,
              "config": reproduce._resolved("mnist-cnn", entry.preset), "metrics": {},
              "code": _current_code("keras_labs.labs.mnist_cnn.experiment", "keras_labs.training")}
    path = ledger.result_path(tmp_path, "mnist-cnn", entry.preset)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(result))
    [job] = reproduce.plan([entry], tmp_path)
    assert (job.status, job.minutes) == ("done", 2.0)
    [job] = reproduce.plan([entry], tmp_path, force=True)
    assert job.status == "stale"
    [job] = reproduce.plan([entry], tmp_path / "none", max_minutes=0.001)
    assert job.status == "too long"
    # Without a fingerprint the figure may come from other code: `--stale` verifies it.
    path.write_text(json.dumps({**result, "code": None}))
    [job] = reproduce.plan([entry], tmp_path)
    assert job.status == "code stale"
    # More seeds than it holds: run the missing ones.
    path.write_text(json.dumps(result))
    [job] = reproduce.plan([entry], tmp_path, seeds=3)
    assert job.status == "more seeds" and job.seeds == [0, 1, 2]


def test_an_unfinished_run_of_the_same_preset_is_found_for_resume(tmp_path):
    config = reproduce._resolved("mnist-cnn", "seed")
    finished = tmp_path / "mnist-cnn" / "20261130-100000-seed-aaaa"
    unfinished = tmp_path / "mnist-cnn" / "20261130-110000-seed-bbbb"
    other = tmp_path / "mnist-cnn" / "20261130-120000-seed-cccc"
    for folder, settings in ((finished, config), (unfinished, config),
                             (other, dict(config, epochs=99))):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(settings))
    (finished / "metrics.json").write_text("{}")
    assert jobs._unfinished_run(tmp_path, "mnist-cnn", "seed", config) == unfinished


def test_dry_run_lists_every_report_without_tensorflow():
    code = ("import sys; from keras_labs import cli; rc = cli.main(['reproduce', '--dry-run']); "
            "assert 'tensorflow' not in sys.modules, 'imported TensorFlow'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line[:3] in ledger.REPORTS]
    assert len(lines) >= 40
    assert {line[:3] for line in lines} == set(ledger.REPORTS)
    assert "CPU" in done.stdout


def test_bad_reproduce_arguments_are_one_line_errors():
    from keras_labs import cli

    assert cli.main(["reproduce", "--item", "nope", "--dry-run"]) == 2
    assert cli.main(["reproduce", "--lab", "nope", "--dry-run"]) == 2


def test_committed_ledger_and_readme_agree_with_the_result_files():
    """LEDGER.md and the generated blocks of the README and docs/ are what results/*.json give,
    nothing typed."""
    assert (RESULTS / "LEDGER.md").is_file(), "run `keras-labs reproduce --render`"
    assert (RESULTS / "LEDGER.md").read_text() == ledger.render(RESULTS), (
        "results/LEDGER.md is stale: run `keras-labs reproduce --render`")
    blocks = ledger.generated_blocks(RESULTS)
    found = {}
    for page in ledger.generated_pages(ROOT):
        text = page.read_text()
        for name, block in blocks.items():
            shown = ledger.block_text(text, name)
            if shown is None:
                continue
            found.setdefault(name, []).append(page.relative_to(ROOT).as_posix())
            assert shown.strip() == block().strip(), (
                f"{page.relative_to(ROOT)}'s {name} block is stale: run "
                "`keras-labs reproduce --render`")
    # Every lab's results, the benchmarks and the summary stand on a page; a lab's on its own.
    assert sorted(found) == sorted(blocks), sorted(set(blocks) - set(found))
    for lab in {entry.lab for entry in ledger.items()}:
        assert f"docs/labs/{lab}.md" in found[lab], found[lab]
    assert found["summary"] == ["README.md"]
    assert found["benchmarks"] == ["docs/benchmarks.md"]
    for path in RESULTS.glob("*/*.json"):
        result = json.loads(path.read_text())
        if path.parent.name == ledger.BENCHMARKS:
            assert len(result["commit"]) == 40 and result["data_kind"] in ("full", "partial")
            continue
        assert (result["lab"], result["preset"]) == (path.parent.name, path.stem)
        assert len(result["commit"]) == 40 and result["data_kind"] in ("full", "partial", "sample")
        assert result["metrics"] and result["config"]


def test_reproduce_runs_a_preset_records_its_code_and_a_verify_rerun_agrees(
        tmp_path, real_data_dir, monkeypatch, capsys):
    """One real preset, end to end: the run records the fingerprint of the code it imported,
    the ledger finds it current from the files on disk, and `--verify` re-runs it into a scratch
    folder, agrees with it, and leaves the results folder as it was."""
    data_dir = real_data_dir("mnist")
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
    monkeypatch.chdir(tmp_path)
    job = reproduce.Job("mnist-cnn", "quick", ["x"], 1.0)
    clean = {"commit": "c" * 40, "changes": []}
    result = reproduce.run_job(job, tmp_path / "results", tmp_path / "runs", tree=clean)
    path = tmp_path / "results" / "mnist-cnn" / "quick.json"
    written = json.loads(path.read_text())
    assert written["metrics"]["test_accuracy"] == result["metrics"]["test_accuracy"] > 0.5
    assert written["data_kind"] == "full"
    assert (written["commit"], written["dirty"], written["provisional"]) == ("c" * 40, False, False)
    assert len(written["env"]["load_start"]) == 3 and written["env"]["steal_s"] >= 0
    assert reproduce.same_experiment(written["config"], reproduce._resolved("mnist-cnn", "quick"),
                                     "mnist-cnn")
    assert os.path.isdir(tmp_path / written["run_dir"])
    # The fingerprint covers the lab and the core it ran, not the command line or the ledger.
    modules = written["code"]["modules"]
    assert {"keras_labs.labs.mnist_cnn.experiment", "keras_labs.training",
            "keras_labs.runs"} <= set(modules)
    assert not any(name.startswith(("keras_labs.cli", "keras_labs.results")) for name in modules)
    assert freshness.combined(freshness.current_digests(modules)) == written["code"]["digest"]
    assert freshness.staleness(written) == "" and ledger.code_state(written) == f"at {'c' * 7}"

    from keras_labs.results import verify

    item = ledger.SeedItem(report="000", item="000-quick", description="d", seed=0.95,
                           seed_text="95%", metric="test_accuracy", preset="quick", lab="mnist-cnn")
    before = path.read_bytes()
    assert verify.verify([item], tmp_path / "results", runs=str(tmp_path / "runs" / "reproduce"),
                         max_minutes=20.0) == 0
    out = capsys.readouterr().out
    figure = ledger.format_value(written["metrics"]["test_accuracy"], "%")
    assert f"000-quick (quick): committed {figure}, re-run " in out and ": agree" in out
    assert "[1/1] mnist-cnn quick: verifying" in out and "min elapsed" in out
    assert path.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "results").rglob("*.json")) == ["quick.json"]


def test_seed_tables_parse_defaults_options_escapes_and_refuse_mistakes():
    found = ledger.table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 004-a | tutorial | test_accuracy | 0.54 | 54% | accuracy, a \\| b | equal_updates=tutorial-x |
| 003-b | seed | loss.-1 | 0.282 | loss 0.282 | a loss | direction=lower, tolerance=0.03 |
| 002-c | seed | shown | qualitative | 96% train | a claim | |
""", notes={"003-b": "a note"})
    first, second, third = found
    assert (first.report, first.unit, first.direction, first.tolerance) == ("004", "%", "higher", 0.01)
    assert first.description == "accuracy, a | b" and first.equal_updates == "tutorial-x"
    assert (second.unit, second.direction, second.tolerance, second.note) == ("", "lower", 0.03,
                                                                              "a note")
    assert (third.seed, third.direction, third.unit) == ("qualitative", "none", "")
    header = "| item | preset | metric | seed | report's figure | what | options |\n|---|\n"
    with pytest.raises(ValueError, match="needs 7 cells"):
        ledger.table(header + "| 004-a | tutorial | test_accuracy | 0.54 | 54% |")
    with pytest.raises(ValueError, match="'speed'"):
        ledger.table(header + "| 004-a | t | m | 0.5 | 50% | w | speed=1 |")
    with pytest.raises(ValueError, match="004-z"):
        ledger.table(header + "| 004-a | t | m | 0.5 | 50% | w | |", notes={"004-z": "x"})


def _write_benchmarks(directory: Path, torch_rate: float, ratios: list[float],
                      threads: int = 1, batch_size: int = 128) -> None:
    """Benchmark rounds at 1 and 2 threads (2 threads: both sides 1.5x faster) and a profile."""
    benchmarks = directory / "benchmarks"
    benchmarks.mkdir(parents=True)
    comparison = []
    for number, ratio in enumerate(ratios):
        for count, speedup in ((1, 1.0), (2, 1.5)):
            comparison += [
                {"variant": "keras-lab", "batch_size": 128, "threads": count, "round": number,
                 "images_per_s": torch_rate * ratio * speedup},
                {"variant": "torch-report", "batch_size": 128, "threads": count, "round": number,
                 "images_per_s": torch_rate * 0.9 * speedup},
                {"variant": "torch-tight", "batch_size": 128, "threads": count, "round": number,
                 "images_per_s": torch_rate * speedup}]
    per_round = [{"batch_size": batch_size, "round": number, "keras_lab": torch_rate * ratio,
                  "torch_best": torch_rate, "ratio": ratio} for number, ratio in enumerate(ratios)]
    (benchmarks / "rounds.json").write_text(json.dumps(
        {"comparison": comparison, "per_round": per_round, "machine": {"cpus": 2}}))
    kinds = {"conv forward": 0.3, "conv backward (filter)": 0.2, "input pipeline": 0.1}
    (benchmarks / "profile.json").write_text(json.dumps(
        {"batch_size": 128, "threads": threads, "machine": {"cpus": 2},
         "keras": {"epoch_wall_s": 1.0, "images_per_s": 8000.0, "op_time_s": 0.7,
                   "by_kind_s": kinds, "trace": "results/benchmarks/profile.xplane.pb.gz"},
         "torch": {"epoch_wall_s": 0.9, "images_per_s": 8000.0, "op_time_s": 0.8,
                   "by_kind_s": {**kinds, "input pipeline": 0.3}}}))


@pytest.mark.parametrize("torch_rate, expected_bound, verdict", [
    (8000.0, 1.67, "within the kernels' reach"),   # PyTorch's epoch 1.0 s, Keras's kernels 0.6 s
    (12000.0, 1.11, "out of reach without faster kernels"),   # PyTorch's epoch 0.667 s
])
def test_benchmark_lines_give_rounds_and_the_kernel_only_bound(tmp_path, torch_rate,
                                                                expected_bound, verdict):
    _write_benchmarks(tmp_path, torch_rate, [1.3, 1.2, 1.4])
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    # the bar is batch 4's: batch 128 gives its ratios and no verdict
    assert ("ratio per round 1.30x, 1.20x, 1.40x: no bar at this batch (the 1.25x bar is "
            "batch 4's") in text and "bar is NOT met" not in text
    # at batch 4, one round under the bar is enough to say it is not met
    _write_benchmarks(tmp_path / "at4", torch_rate, [1.3, 1.2, 1.4], batch_size=4)
    assert ("ratio per round 1.30x, 1.20x, 1.40x: the 1.25x bar is NOT met"
            in "\n".join(benchmarks.benchmark_lines(tmp_path / "at4")))
    assert "take 0.500 s of op time in Keras and 0.500 s in PyTorch" in text
    # the input pipeline (tf.data's own threads) is not part of the bound; PyTorch's epoch is the
    # unprofiled best loop (torch-tight), not the profiled one
    assert "compute kernels alone take 0.600 s" in text
    assert f"at most {expected_bound:.2f}x PyTorch's {8000.0 / torch_rate:.3f} s epoch (unprofiled)" in text
    assert verdict in text
    assert "`results/benchmarks/profile.xplane.pb.gz`" in text


def test_the_autotune_a_b_gives_the_median_ratio_per_thread_count(tmp_path):
    benchmarks_dir = tmp_path / "benchmarks"
    benchmarks_dir.mkdir()
    comparison = [{"variant": variant, "batch_size": 4, "threads": threads, "round": number,
                   "images_per_s": rate * threads}
                  for number, (untuned, tuned) in enumerate([(900, 1000), (1100, 1000), (1000, 1000)])
                  for threads in (1, 2)
                  for variant, rate in (("keras-lab", untuned), ("keras-lab-autotuned", tuned))]
    per_round = [{"batch_size": 4, "round": number, "keras_lab": 1.0, "torch_best": None,
                  "ratio": None} for number in range(3)]
    (benchmarks_dir / "ab.json").write_text(json.dumps(
        {"comparison": comparison, "per_round": per_round, "machine": {"cpus": 2}}))
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    for threads in (1, 2):
        assert (f"batch 4, {threads} thread(s): the lab's pipeline without autotuning "
                "(`keras-lab`) runs at 1.00x the speed of the same with it "
                "(`keras-lab-autotuned`), median of 3 interleaved rounds (range 0.90-1.10x)") in text
    assert "bar is" not in text  # no PyTorch side was measured: no verdict on the bar


def test_a_profile_at_two_threads_gives_scaling_not_a_bound(tmp_path):
    _write_benchmarks(tmp_path, 8000.0, [1.3, 1.2, 1.4], threads=2)
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    assert "scaling from 1 to 2 threads (benchmark medians): Keras 1.50x, PyTorch 1.50x" in text
    assert "at most" not in text


@pytest.mark.parametrize("floor_ratios, verdict", [
    ([1.20, 1.10, 1.24], "under the 1.25x bar in every round, so no change to Keras's loop"),
    ([1.30, 1.10, 1.40], "under the 1.25x bar in 1 of 3 rounds (median 1.30x): even with"),
    ([1.30, 1.40, 1.25], "over the 1.25x bar in every round: the bar is within"),
])
def test_the_tensorflow_floor_says_whether_any_keras_set_up_could_meet_the_bar(
        tmp_path, floor_ratios, verdict):
    benchmarks_dir = tmp_path / "benchmarks"
    benchmarks_dir.mkdir()
    per_round = [{"batch_size": 128, "round": number, "keras_lab": 9000.0 + number,
                  "torch_best": 10000.0, "ratio": 0.9, "tf_floor": 10000.0 * ratio,
                  "floor_ratio": ratio} for number, ratio in enumerate(floor_ratios)]
    xla = [{"variant": "tf-floor-xla", "batch_size": 128, "threads": 2, "round": number,
            "images_per_s": 900.0 + 100 * number} for number in range(3)]
    (benchmarks_dir / "floor.json").write_text(json.dumps(
        {"comparison": xla, "per_round": per_round, "machine": {"cpus": 2}}))
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    assert "compiled with XLA: 1,000 images/s (900-1,100) over 3 runs at 2 thread(s)" in text
    rates = sorted(10000.0 * ratio for ratio in floor_ratios)
    assert ("TensorFlow floor (`tf-floor`" in text and f"{rates[1]:,.0f} images/s "
            f"({rates[0]:,.0f}-{rates[2]:,.0f})" in text)
    assert "per round " + ", ".join(f"{ratio:.2f}x" for ratio in floor_ratios) in text
    assert verdict in text
    lab_share = 9001.0 / rates[1]
    assert f"the lab pipeline runs at {lab_share:.0%} of the floor (medians)" in text
    # rounds without a floor figure (the older benchmark files) add no floor line
    (benchmarks_dir / "floor.json").write_text(json.dumps(
        {"comparison": [], "per_round": [{**entry, "tf_floor": None} for entry in per_round],
         "machine": {"cpus": 2}}))
    assert "TensorFlow floor" not in "\n".join(benchmarks.benchmark_lines(tmp_path))


def test_rounds_with_keras_own_loop_give_the_chunked_gain_and_skip_what_was_not_run(tmp_path):
    benchmarks_dir = tmp_path / "benchmarks"
    benchmarks_dir.mkdir()
    per_round = [{"batch_size": 4, "round": number, "keras_lab": lab, "torch_best": 2500.0,
                  "ratio": round(lab / 2500.0, 2), "keras_lab_stock": stock,
                  "stock_ratio": round(stock / 2500.0, 2)}
                 for number, (lab, stock) in enumerate([(4000.0, 3200.0), (4400.0, 4000.0),
                                                        (3600.0, 3600.0)])]
    # a batch measured without the lab variant (tf-floor and PyTorch only)
    per_round += [{"batch_size": 128, "round": 0, "keras_lab": None, "torch_best": 12000.0,
                   "tf_floor": 13000.0, "floor_ratio": 1.08}]
    (benchmarks_dir / "stock.json").write_text(json.dumps(
        {"comparison": [], "per_round": per_round, "machine": {"cpus": 2}}))
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    assert "ratio per round 1.60x, 1.76x, 1.44x: the 1.25x bar is met in every round" in text
    assert ("Keras's own multi-step loop (`keras-lab-stock`, one iterator read and one "
            "`tf.cond` per step): 3,600 images/s (3,200-4,000), per round 1.28x, 1.60x, 1.44x "
            "the best PyTorch loop" in text)
    assert "makes the lab 1.25x, 1.10x, 1.00x as fast in the same rounds" in text
    assert "batch 128: Keras lab pipeline" not in text and "pipeline 0 images/s" not in text
    assert "batch 128, TensorFlow floor" in text


def test_an_a_b_benchmark_gives_both_variants_and_every_rounds_ratio(tmp_path):
    # scripts/benchmark_ab.py's document: the line must carry each round, not a best one
    benchmarks_dir = tmp_path / "benchmarks"
    benchmarks_dir.mkdir()
    side = {"images_per_s_median": 7000.0, "images_per_s_range": [6500.0, 7100.0],
            "wall_s_median": 20.0, "test_accuracy_mean": 0.3, "test_accuracy_range": [0.29, 0.31],
            "seeds": 3}
    summary = {"float32": side, "bf16": {**side, "images_per_s_median": 9000.0},
               "speed_ratio": {"per_round": [1.31, 0.97, 1.25], "median": 1.25}}
    document = {"kind": "a/b", "variants": ["float32", "bf16"], "lab": "cifar-cnn",
                "preset": "tutorial", "set": ["batch_size=128"],
                "machine": {"cpus": 2, "load_average_before": 0.88, "load_average_after": [2.4]},
                "summary": summary, "command": "python scripts/benchmark_ab.py"}
    (benchmarks_dir / "ab.json").write_text(json.dumps(document))
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    assert ("float32, `cifar-cnn --preset tutorial` with batch_size=128: 7,000 images/s "
            "(6,500-7,100), test accuracy 30.00% mean over 3 seeds (29.00-31.00%)") in text
    assert "bf16, `cifar-cnn --preset tutorial` with batch_size=128: 9,000 images/s" in text
    assert "bf16 / float32 speed per interleaved round: 1.31x, 0.97x, 1.25x (median 1.25x)" in text
    assert "load 0.9 before / 2.4 after" in text  # a single figure or a triple
    assert "2 CPUs, load" in text  # an older record names no CPU model
    (benchmarks_dir / "ab.json").write_text(json.dumps(
        {**document, "machine": {**document["machine"], "cpu_model": "Intel(R) Xeon(R)"}}))
    assert "2 CPUs (Intel(R) Xeon(R)), load 0.9" in "\n".join(benchmarks.benchmark_lines(tmp_path))
    # both variants at 30%: the accuracy is read; both near chance, it is not
    assert "say nothing about either" not in text
    low = {**side, "test_accuracy_mean": 0.12}
    (benchmarks_dir / "ab.json").write_text(json.dumps(
        {**document, "summary": {**summary, "float32": low, "bf16": low}}))
    assert ("both variants stay within twice chance (10% on 10 classes) at this setting: the "
            "accuracy figures say nothing about either; read the speed only"
            in "\n".join(benchmarks.benchmark_lines(tmp_path)))
    (benchmarks_dir / "ab.json").write_text(json.dumps({**document, "kind": None}))
    assert "speed per interleaved round" not in "\n".join(benchmarks.benchmark_lines(tmp_path))


def test_time_to_accuracy_gives_the_first_epoch_at_each_target_and_says_a_miss(tmp_path):
    # scripts/benchmark_tta.py's summary of its rounds, then the ledger's bullet of it
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import benchmark_tta
    finally:
        sys.path.pop(0)

    def run(seed, accuracies, seconds=10.0):
        return {"recipe": "fast", "seed": seed, "curve": [
            {"epoch": epoch, "test_accuracy": accuracy, "training_s": epoch * seconds,
             "waited_s": 20 + epoch * seconds}
            for epoch, accuracy in enumerate(accuracies, start=1)]}

    runs = [run(0, [0.5, 0.76, 0.81]), run(1, [0.6, 0.74, 0.79], 12.0),
            run(2, [0.55, 0.75, 0.8])]
    assert benchmark_tta.reached(runs[1]["curve"], 0.8) is None
    assert benchmark_tta.reached(runs[1]["curve"], 0.75)["epoch"] == 3
    rows = benchmark_tta.summarize(runs, {"fast": [0.5, 0.75, 0.8]})
    assert [row["reached_in"] for row in rows] == [3, 3, 2]
    assert rows[0]["waited_s"] == {"median": 30.0, "min": 30.0, "max": 32.0}
    assert rows[1]["epoch"] == {"median": 2, "min": 2, "max": 3}
    assert rows[2]["waited_s"] is None  # a round that never got there: no time to quote
    assert rows[0]["final_test_accuracy_median"] == 0.8
    assert benchmark_tta.parse_recipes("tutorial=0.5,fast=0.75/0.8") == {
        "tutorial": [0.5], "fast": [0.75, 0.8]}
    with pytest.raises(SystemExit, match="'fast=high'"):
        benchmark_tta.parse_recipes("fast=high")
    benchmarks_dir = tmp_path / "benchmarks"
    benchmarks_dir.mkdir()
    (benchmarks_dir / "time-to-accuracy.json").write_text(json.dumps({
        "kind": "time-to-accuracy", "summary": rows, "runs": runs,
        "machine": {"cpus": 2, "load_average_before": 0.5, "load_average_after": [1.0]}}))
    text = "\n".join(benchmarks.benchmark_lines(tmp_path))
    assert ("fast to 50% test accuracy: 30 s waited (30-32), 10 s of training, epoch 1; "
            "median of 3 interleaved rounds (final test accuracy 80.00%, median)") in text
    assert "fast to 80% test accuracy: reached in 2 of 3 rounds" in text


def test_time_to_accuracy_of_a_preset_since_changed_says_what_it_runs_today():
    fast = lab_config_cifar.PRESETS["fast"]
    runs = [{"recipe": "fast", "epochs": fast.epochs, "policy": "mixed_bfloat16"}]
    assert benchmarks._recipe_text("fast", runs) == f"fast ({fast.epochs} epochs, mixed_bfloat16)"
    earlier = [{"recipe": "fast", "epochs": fast.epochs + 1, "policy": "float32"}]
    assert benchmarks._recipe_text("fast", earlier) == (
        f"fast ({fast.epochs + 1} epochs, float32) [the preset as it was then; `fast` now trains "
        f"{fast.epochs} epochs in mixed_bfloat16]")
    assert benchmarks._recipe_text("torch-tutorial", [{"epochs": 14}]) == "torch-tutorial"
    ab = {"lab": "cifar-cnn", "preset": "fast", "rounds": [{"epochs": fast.epochs}] * 2}
    assert benchmarks._epochs_then(ab) == ""
    ab["rounds"] = [{"epochs": 10}] * 2
    assert benchmarks._epochs_then(ab) == (
        f" [10 epochs, the preset as it was then; it now trains {fast.epochs} epochs]")


def test_screens_give_what_each_changed_and_its_validation_figure_only(tmp_path):
    # scripts/summarize_screens.py's document: one seed per screen, validation figures only
    benchmarks_dir = tmp_path / "benchmarks"
    benchmarks_dir.mkdir()
    screens = [{"label": "c4", "changed": {"units": 256, "steps": 1080},
                "validation": {"validation_loss": 1.46062}, "steps": 1080, "epochs": None,
                "training_s": 241.3, "wall_s": 256.2, "commit": "cf0d5bd" + "0" * 33,
                "dirty": False, "data": {"tiny_shakespeare": "full"}, "cpus": 2},
               {"label": "s1", "changed": {}, "validation": {"validation_accuracy": 0.7693},
                "steps": None, "epochs": 18, "training_s": 160.0, "wall_s": None,
                "commit": "abc1234", "dirty": True},
               {"label": "e1", "changed": {"ema_momentum": 0.99},
                "validation": {"validation_accuracy_by_view": {"image": 0.7693,
                                                               "mirror": 0.789}},
                "steps": None, "epochs": 20, "training_s": 149.0, "wall_s": 160.0,
                "commit": "3397271", "dirty": False}]
    (benchmarks_dir / "screens.json").write_text(json.dumps({
        "kind": "screens", "lab": "char-rnn", "base": "best", "chosen": "c4",
        "screens": screens, "machine": {"cpus": 2}}))
    lines = benchmarks.benchmark_lines(tmp_path)
    assert lines[0].endswith("one-seed screens of char-rnn's `best` preset as it stood at each "
                             "screen's commit (a preset may change after its screens), judged on "
                             "the validation split only (full tiny_shakespeare, 2 CPUs):")
    assert ("  - `c4` **(chosen)**: best with units=256, steps=1080: validation_loss 1.4606 "
            "after 1080 steps, 241 s of training, 256 s wall (commit cf0d5bd)") in lines
    assert ("  - `s1`: best with nothing changed: validation_accuracy 0.7693 after 18 epochs, "
            "160 s of training (commit abc1234, dirty)") in lines
    assert ("  - `e1`: best with ema_momentum=0.99: validation_accuracy_by_view (image 0.7693, "
            "mirror 0.7890) after 20 epochs, 149 s of training, 160 s wall (commit 3397271)"
            ) in lines
    assert not any("test" in line for line in lines[1:])


def test_the_readme_summary_counts_stale_rows_and_an_unpinned_result_adds_its_rows(tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(Path(__file__).resolve().parents[1] / "results", results)

    def stale_in_all():
        last = ledger.summary_block(results).splitlines()[-1]
        assert last.startswith("| all |")
        return int(last.strip("| ").rsplit("|", 1)[-1])

    before = stale_in_all()
    path = results / "cifar-cnn" / "tutorial.json"
    document = json.loads(path.read_text())
    assert document.get("code"), "tutorial.json was re-recorded with a fingerprint"
    document.pop("code")  # no fingerprint: nothing says which code produced it
    path.write_text(json.dumps(document))
    readers = [entry for entry in ledger.items(lab="cifar-cnn") if entry.preset == "tutorial"]
    assert stale_in_all() - before == len(readers) > 0
