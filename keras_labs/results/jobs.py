"""Running the presets behind the seed items: one `keras-labs run` process per preset and seed
(a fresh TensorFlow, as a user would run it), each result kept in `results/<lab>/<preset>.json`
with the commit, whether the tree was clean, and the fingerprint of the code the run imported.

A result of several seeds keeps every seed's metrics (`runs`); its `metrics` are the first
seed's, the preset's own, so a single-seed reader sees the run the preset describes.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from keras_labs import ConfigError, labs
from keras_labs.files import atomic_write
from keras_labs.results import freshness, ledger

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Paths that do not make the tree dirty: the results `reproduce` writes itself, the pages it
# renders from them (the README's and docs/' generated blocks: one pass's pages must not stop
# the next pass), run folders and caches. Everything else git reports (a modified file, an
# untracked one) does.
NOT_CODE = ("results/", "runs/", ".cache/", "README.md", "docs/")


@dataclasses.dataclass
class Job:
    """One preset to run, and the seed items that read it.

    Attributes:
        lab, preset: What runs.
        items: The ids of the seed items that read its result.
        minutes: Its recorded wall minutes, else its estimate (None: unknown).
        status: "done", "to run", "stale" (its config changed: rerun), "code stale" (a module
            it imported changed: `--stale` verifies it), "more seeds" (`--seeds` asks for
            more than it holds), "too long", "failed: ...".
        seeds: The seeds to run (empty: the preset's own).
    """

    lab: str
    preset: str
    items: list[str]
    minutes: float | None
    status: str = ""
    seeds: list[int] = dataclasses.field(default_factory=list)


def preset_seed(lab: str, preset: str) -> int:
    return int(labs.get(lab).PRESETS[preset].seed)


def recorded_seeds(result: dict) -> list[int]:
    """The seeds a committed result holds, first the preset's own."""
    return [run["seed"] for run in ledger.seed_runs(result)] or [result["config"]["seed"]]


def _presets_of(entry: ledger.SeedItem, compared: bool) -> list[tuple[str, str]]:
    """(lab, preset) of every run an item's own row reads: its preset and its equal-updates
    preset; with `compared`, also the run its `versus` compares with."""
    found = [(entry.lab, entry.preset)]
    if entry.equal_updates:
        found.append((entry.lab, entry.equal_updates))
    if compared and entry.versus:
        lab, _, rest = entry.versus.partition("/")
        found.append((lab, rest.partition(":")[0]))
    return found


def plan(chosen: list[ledger.SeedItem], results_dir: Path, *, force: bool = False,
         max_minutes: float = ledger.RUN_LIMIT_MINUTES, seeds: int = 1,
         compared: bool = False) -> list[Job]:
    """The presets behind `chosen` items (the equal-updates ones too, and with `compared` the
    runs their claims compare with), in item order, each with what `reproduce` would do with
    it. Verifying leaves the compared runs out: their own rows verify them."""
    jobs: dict[tuple[str, str], Job] = {}
    for entry in chosen:
        for lab, preset in _presets_of(entry, compared):
            key = (lab, preset)
            if key not in jobs:
                base = preset_seed(lab, preset)
                jobs[key] = Job(lab, preset, [], ledger.preset_minutes(lab, preset),
                                seeds=list(range(base, base + seeds)))
            jobs[key].items.append(entry.item)
    results = ledger.load_results(results_dir)
    for job in jobs.values():
        recorded = results.get((job.lab, job.preset))
        if recorded and recorded.get("wall_time_s"):
            job.minutes = round(recorded["wall_time_s"] / 60 / len(recorded_seeds(recorded)), 1)
        job.status = _status(job, recorded, force, max_minutes)
        if recorded and len(recorded_seeds(recorded)) > len(job.seeds):
            job.seeds = recorded_seeds(recorded)  # a rerun keeps every seed the result held
    return list(jobs.values())


def _status(job: Job, recorded: dict | None, force: bool, max_minutes: float) -> str:
    if recorded and not force:
        stale = freshness.staleness(recorded)
        if "config changed" in stale:
            return "stale"
        if len(recorded_seeds(recorded)) < len(job.seeds):
            return "more seeds"
        if stale:
            return "code stale"
        return "done"
    if job.minutes is not None and job.minutes > max_minutes:  # per seed: each is a run
        return "too long"
    return "stale" if recorded else "to run"


def steal_seconds() -> float:
    """CPU time the hypervisor took from this machine since boot (0 where /proc/stat is absent)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it ("" where /proc/cpuinfo has none): the
    machines this suite is measured on change between sessions, and a speed figure is a fact
    about one of them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), "")


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def _git(root: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def tree_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The project's commit and its uncommitted changes: every path `git status` reports
    (modified, added, deleted, untracked) outside `NOT_CODE`.

    Returns:
        {"commit": the HEAD commit or None outside a git checkout, "changes": [status lines]}.
    """
    head = _git(root, "rev-parse", "HEAD")
    if head is None or head.returncode:
        return {"commit": None, "changes": []}
    status = _git(root, "status", "--porcelain", "--untracked-files=all")
    lines = status.stdout.splitlines() if status is not None and not status.returncode else []
    changes = [line for line in lines
               if not line[3:].strip('"').startswith(NOT_CODE)]
    return {"commit": head.stdout.strip(), "changes": changes}


def require_clean_tree(allow_dirty: bool) -> dict[str, Any]:
    """The tree state `reproduce` records from.

    Raises:
        ConfigError: The tree has uncommitted changes and `allow_dirty` is off (the message
            names the first few and how to go on).
    """
    state = tree_state()
    if state["changes"] and not allow_dirty:
        shown = ", ".join(line[3:] for line in state["changes"][:3])
        more = f" and {len(state['changes']) - 3} more" if len(state["changes"]) > 3 else ""
        raise ConfigError(f"the project has uncommitted changes ({shown}{more}); reproduce "
                          "records only from a clean tree: commit them, or pass --allow-dirty "
                          "to record provisional results")
    return state


def _unfinished_run(runs_root: Path, lab: str, preset: str, config: dict) -> Path | None:
    """The newest run folder of this preset with the same config and no metrics.json."""
    parent = runs_root / lab
    if not parent.is_dir():
        return None
    for folder in sorted(parent.glob(f"*-{preset}-*"), reverse=True):
        if (folder / "metrics.json").exists() or not (folder / "config.json").is_file():
            continue
        try:
            recorded = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if freshness.same_experiment(recorded, config, lab):
            return folder
    return None


def run_seed(job: Job, seed: int, runs_root: Path, *, data_dir: str | None = None) -> dict:
    """Runs (or resumes) one seed of a preset in its own process.

    Returns:
        {"seed", "metrics", "config", "env" (the run's env.json), "run_dir", "wall_time_s",
        "resumed"}.

    Raises:
        ConfigError: The run failed; the message quotes its last error line and its log.
    """
    config = freshness.resolved_config(job.lab, job.preset, seed=seed)
    resume = _unfinished_run(runs_root, job.lab, job.preset, config)
    base = [sys.executable, "-m", "keras_labs", "run", job.lab]
    arguments = (base + ["--resume", str(resume)] if resume else
                 base + ["--preset", job.preset, "--data", "full", "--out", str(runs_root),
                         "--seed", str(seed)] + (["--data-dir", data_dir] if data_dir else []))
    log_path = runs_root / job.lab / f"{job.preset}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    before = set((runs_root / job.lab).glob(f"*-{job.preset}-*"))
    started = datetime.datetime.now()
    with open(log_path, "a") as log:
        log.write(f"\n# {started.isoformat(timespec='seconds')}: {' '.join(arguments[1:])}\n")
        log.flush()
        done = subprocess.run(arguments, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
    created = sorted(set((runs_root / job.lab).glob(f"*-{job.preset}-*")) - before)
    folder = resume or (created[-1] if created else None)
    if done.returncode != 0 or folder is None or not (folder / "metrics.json").is_file():
        tail = [line for line in log_path.read_text().splitlines() if line.strip()][-1:]
        raise ConfigError(f"{job.lab} {job.preset} failed (exit {done.returncode}): "
                          f"{tail[0] if tail else 'no output'}; log: {log_path}")
    return {"seed": seed, "metrics": json.loads((folder / "metrics.json").read_text()),
            "config": json.loads((folder / "config.json").read_text()),
            "env": json.loads((folder / "env.json").read_text()), "run_dir": os.path.relpath(folder),
            "wall_time_s": round((datetime.datetime.now() - started).total_seconds(), 1),
            "resumed": bool(resume)}


def _training_seconds(metrics: dict) -> float | None:
    """Seconds spent in training, where the lab records it (epoch times or training_time_s)."""
    for key in ("training_time_s", "train_time_s"):
        if isinstance(metrics.get(key), int | float):
            return round(float(metrics[key]), 1)
    epochs = metrics.get("epoch_time_s")
    if isinstance(epochs, list) and epochs:
        return round(float(sum(epochs)), 1)
    return None


def compose(job: Job, runs: list[dict], tree: dict, load_start: list[float], steal_start: float,
            started: datetime.datetime) -> dict:
    """The result file of `runs` (one per seed, the preset's own first)."""
    first = runs[0]
    run_env = first.get("env") or {}
    dirty = bool(tree.get("changes"))
    result = {
        "lab": job.lab, "preset": job.preset,
        "commit": tree.get("commit") or (run_env.get("git") or {}).get("commit"),
        "dirty": dirty, "provisional": dirty,
        "config": first["config"], "metrics": first["metrics"],
        # The newest run's fingerprint: a kept seed ran at an earlier commit, on code that
        # `kept_runs` found unchanged, so today's fingerprint stands for every seed.
        "code": next((run["env"]["code"] for run in reversed(runs)
                      if (run.get("env") or {}).get("code")), run_env.get("code")),
        "data_kind": ledger.data_kind(first["metrics"]),
        "env": {"python": run_env.get("python"), "packages": run_env.get("packages"),
                "platform": run_env.get("platform"),
                "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "gpu": run_env.get("gpus", []), "load_start": load_start,
                "load_end": load_average(), "steal_s": round(steal_seconds() - steal_start, 1),
                "resumed": any(run.get("resumed") for run in runs)},
        "wall_time_s": round((datetime.datetime.now() - started).total_seconds(), 1),
        "training_time_s": _training_seconds(first["metrics"]),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "run_dir": first["run_dir"],
        "command": ledger.command(job.lab, job.preset),
    }
    if dirty:
        result["tree_changes"] = tree["changes"][:20]
    if len(runs) > 1:
        result["runs"] = [
            {"seed": run["seed"], "metrics": run["metrics"], "run_dir": run["run_dir"],
             "wall_time_s": run.get("wall_time_s"),
             "code": ((run.get("env") or {}).get("code") or run.get("code") or {}).get("digest")}
            for run in runs]
    return result


def run_job(job: Job, results_dir: Path, runs_root: Path, *, tree: dict | None = None,
            data_dir: str | None = None, keep: list[dict] | None = None) -> dict:
    """Runs every seed of one preset (reusing `keep`'s runs of the same seeds) and writes its
    result file.

    Args:
        job: The preset and its seeds (none: the preset's own).
        results_dir: Where `<lab>/<preset>.json` is written.
        runs_root: The root of the run folders.
        tree: The tree state the result records (default: `tree_state()` now).
        data_dir: The tfds data dir the runs read (default: theirs).
        keep: Seed runs already recorded ({"seed", "metrics", "run_dir", ...}) to keep.

    Raises:
        ConfigError: A run failed.
    """
    tree = tree if tree is not None else tree_state()
    kept = {run["seed"]: run for run in keep or []}
    load_start, steal_start = load_average(), steal_seconds()
    started = datetime.datetime.now()
    runs = [kept.get(seed) or run_seed(job, seed, runs_root, data_dir=data_dir)
            for seed in job.seeds or [preset_seed(job.lab, job.preset)]]
    result = compose(job, runs, tree, load_start, steal_start, started)
    path = ledger.result_path(results_dir, job.lab, job.preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    return result


def kept_runs(recorded: dict | None) -> list[dict]:
    """The seed runs of a committed result that a run with more seeds may keep: those of a
    result that stands for today's code and preset, recorded from a clean tree."""
    if not recorded or recorded.get("provisional") or freshness.staleness(recorded):
        return []
    runs = ledger.seed_runs(recorded) or [{"seed": recorded["config"]["seed"],
                                          "run_dir": recorded.get("run_dir"),
                                          "wall_time_s": recorded.get("wall_time_s")}]
    first = {"config": recorded["config"], "env": {"code": recorded.get("code")}}
    return [{**first, **run, "metrics": run.get("metrics", recorded["metrics"])} for run in runs]


class Progress:
    """One line per job: which, how far along, the time spent and the estimate left."""

    def __init__(self, jobs: list[Job]):
        self.jobs = list(jobs)
        self.started = datetime.datetime.now()
        self.done_minutes = 0.0

    def start(self, index: int, job: Job, what: str = "running") -> None:
        elapsed = (datetime.datetime.now() - self.started).total_seconds() / 60
        left = sum((other.minutes or 0.0) * max(1, len(other.seeds)) for other in self.jobs[index:])
        seeds = f" seeds {', '.join(map(str, job.seeds))}," if len(job.seeds) > 1 else ""
        print(f"[{index + 1}/{len(self.jobs)}] {job.lab} {job.preset}: {what},{seeds} est. "
              f"{_minutes(job)}; {elapsed:.1f} min elapsed, ~{left:.1f} min left", flush=True)


def _minutes(job: Job) -> str:
    if job.minutes is None:
        return "? min"
    return f"{job.minutes * max(1, len(job.seeds)):g} min"
