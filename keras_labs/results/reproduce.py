"""`keras-labs reproduce`: runs the presets behind the seed items on the prepared real data and
keeps one result per preset in `results/<lab>/<preset>.json`, then regenerates
`results/LEDGER.md` and the generated blocks of the README and docs/ pages.

    keras-labs reproduce --dry-run               # every item, its preset and estimated CPU time
    keras-labs reproduce --report 004            # run what report 004's items need
    keras-labs reproduce --item 002-t3-lstm-20 --force

Each preset runs as its own `keras-labs run` process (a fresh TensorFlow, as a user would run
it) under `runs/reproduce/`. A result whose resolved config is the preset's current one is kept
unless `--force`; an interrupted reproduce finds the unfinished run folder of the preset and
resumes it (`keras-labs run --resume`), so a killed session loses at most one backup interval.
Presets estimated over `--max-minutes` are listed, not run.
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
from keras_labs.results import ledger

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Job:
    """One preset to run, and the seed items that read it."""

    lab: str
    preset: str
    items: list[str]
    minutes: float | None
    status: str = ""  # "done", "stale", "to run", "too long", "failed: ..."


def _resolved(lab: str, preset: str) -> dict:

    module = labs.get(lab)
    return labs.resolve_config(module, preset, None, data="full").to_dict()


def same_experiment(recorded: dict, current: dict, lab: str) -> bool:
    """Whether a recorded resolved config is the current one: every key both have is equal, and
    a key added to the lab since has its default (a new field at its default changes nothing)."""

    defaults = type(labs.get(lab).PRESETS[labs.get(lab).DEFAULT_PRESET])().to_dict()
    for key, value in current.items():
        if key in recorded:
            if json.dumps(recorded[key]) != json.dumps(value):
                return False
        elif json.dumps(value) != json.dumps(defaults.get(key)):
            return False
    return all(key in current for key in recorded)


def plan(chosen: list[ledger.SeedItem], results_dir: Path, *, force: bool = False,
         max_minutes: float = ledger.RUN_LIMIT_MINUTES) -> list[Job]:
    """The presets behind `chosen` items (the equal-updates ones too), in item order."""
    jobs: dict[tuple[str, str], Job] = {}
    for entry in chosen:
        for preset in filter(None, (entry.preset, entry.equal_updates)):
            key = (entry.lab, preset)
            if key not in jobs:
                jobs[key] = Job(entry.lab, preset, [], ledger.preset_minutes(entry.lab, preset))
            jobs[key].items.append(entry.item)
    results = ledger.load_results(results_dir)
    for job in jobs.values():
        recorded = results.get((job.lab, job.preset))
        if recorded and recorded.get("wall_time_s"):
            job.minutes = round(recorded["wall_time_s"] / 60, 1)
        if recorded and not force and same_experiment(recorded.get("config", {}),
                                                      _resolved(job.lab, job.preset), job.lab):
            job.status = "done"
        elif job.minutes is not None and job.minutes > max_minutes:
            job.status = "too long"
        else:
            job.status = "stale" if recorded else "to run"
    return list(jobs.values())


def steal_seconds() -> float:
    """CPU time the hypervisor took from this machine since boot (0 where /proc/stat is absent)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True,
                              text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


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
        if same_experiment(recorded, config, lab):
            return folder
    return None


def run_job(job: Job, results_dir: Path, runs_root: Path, *, verbose: bool = False) -> dict:
    """Runs (or resumes) one preset in its own process and writes its result file.

    Raises:
        ConfigError: The run failed; the message quotes its last error line and its log.
    """
    config = _resolved(job.lab, job.preset)
    resume = _unfinished_run(runs_root, job.lab, job.preset, config)
    base = [sys.executable, "-m", "keras_labs", "run", job.lab]
    arguments = (base + ["--resume", str(resume)] if resume else
                 base + ["--preset", job.preset, "--data", "full", "--out", str(runs_root)])
    log_path = runs_root / job.lab / f"{job.preset}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    before = set((runs_root / job.lab).glob(f"*-{job.preset}-*"))
    load_start, steal_start = load_average(), steal_seconds()
    started = datetime.datetime.now()
    with open(log_path, "a") as log:
        log.write(f"\n# {started.isoformat(timespec='seconds')}: {' '.join(arguments[1:])}\n")
        log.flush()
        done = subprocess.run(arguments, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
    if resume:
        folder = resume
    else:
        created = sorted(set((runs_root / job.lab).glob(f"*-{job.preset}-*")) - before)
        folder = created[-1] if created else None
    if done.returncode != 0 or folder is None or not (folder / "metrics.json").is_file():
        tail = [line for line in log_path.read_text().splitlines() if line.strip()][-1:]
        raise ConfigError(f"{job.lab} {job.preset} failed (exit {done.returncode}): "
                          f"{tail[0] if tail else 'no output'}; log: {log_path}")
    metrics = json.loads((folder / "metrics.json").read_text())
    run_env = json.loads((folder / "env.json").read_text())
    commit = (run_env.get("git") or {}).get("commit") or _git("rev-parse", "HEAD")
    result = {
        "lab": job.lab, "preset": job.preset,
        "commit": commit, "dirty": (run_env.get("git") or {}).get("dirty"),
        "config": json.loads((folder / "config.json").read_text()),
        "metrics": metrics,
        "data_kind": ledger.data_kind(metrics),
        "env": {"python": run_env.get("python"), "packages": run_env.get("packages"),
                "platform": run_env.get("platform"), "cpu": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "gpu": run_env.get("gpus", []),
                "load_start": load_start, "load_end": load_average(),
                "steal_s": round(steal_seconds() - steal_start, 1),
                "resumed": bool(resume)},
        "wall_time_s": round((datetime.datetime.now() - started).total_seconds(), 1),
        "training_time_s": _training_seconds(metrics),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "run_dir": os.path.relpath(folder),
        "command": ledger.command(job.lab, job.preset),
    }
    path = ledger.result_path(results_dir, job.lab, job.preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    return result


def _training_seconds(metrics: dict) -> float | None:
    """Seconds spent in training, where the lab records it (epoch times or training_time_s)."""
    for key in ("training_time_s", "train_time_s"):
        if isinstance(metrics.get(key), int | float):
            return round(float(metrics[key]), 1)
    epochs = metrics.get("epoch_time_s")
    if isinstance(epochs, list) and epochs:
        return round(float(sum(epochs)), 1)
    return None


def _record_not_run(results_dir: Path, job: Job, why: str) -> None:
    recorded = ledger.read_not_run(results_dir)
    recorded[f"{job.lab}/{job.preset}"] = why.replace("\t", " ").replace("\n", " ")
    text = "".join(f"{key}\t{value}\n" for key, value in sorted(recorded.items()))
    results_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(results_dir / "not-run.tsv", text)


def _clear_not_run(results_dir: Path, job: Job) -> None:
    recorded = ledger.read_not_run(results_dir)
    if recorded.pop(f"{job.lab}/{job.preset}", None) is not None:
        atomic_write(results_dir / "not-run.tsv",
                     "".join(f"{key}\t{value}\n" for key, value in sorted(recorded.items())))


def _format_minutes(minutes: float | None) -> str:
    return "?" if minutes is None else f"{minutes:g} min"


def main(args: Any) -> int:
    """The `keras-labs reproduce` command (arguments from cli.build_parser)."""
    chosen = ledger.items(report=args.report, lab=args.lab, item=args.item)
    results_dir = Path(args.results)
    # The committed ledger's pages are regenerated with it; a scratch results folder's are not.
    project = PROJECT_ROOT if Path(args.results).resolve() == (
        PROJECT_ROOT / "results").resolve() else None
    if args.render:
        print(f"wrote {ledger.write(results_dir, project)}")
        return 0
    jobs = plan(chosen, results_dir, force=args.force, max_minutes=args.max_minutes)
    if args.dry_run:
        by_preset = {(job.lab, job.preset): job for job in jobs}
        for entry in chosen:
            job = by_preset[(entry.lab, entry.preset)]
            extra = f" + {entry.equal_updates}" if entry.equal_updates else ""
            print(f"{entry.report}  {entry.item:32s} {entry.lab:11s} {entry.preset}{extra}  "
                  f"[{_format_minutes(job.minutes)} CPU, {job.status}]  {entry.description}")
        todo = [job for job in jobs if job.status in ("to run", "stale")]
        total = sum(job.minutes or 0 for job in todo)
        print(f"{len(chosen)} seed items from {len({e.report for e in chosen})} reports, "
              f"{len(jobs)} presets: {len(todo)} to run (~{total:.0f} CPU min), "
              f"{sum(job.status == 'done' for job in jobs)} done, "
              f"{sum(job.status == 'too long' for job in jobs)} over {args.max_minutes:g} min")
        return 0
    runs_root = Path(args.runs)
    failures = 0
    for job in jobs:
        if job.status in ("done", "too long"):
            print(f"{job.lab} {job.preset}: {job.status} ({_format_minutes(job.minutes)})",
                  flush=True)
            continue
        print(f"{job.lab} {job.preset}: running (est. {_format_minutes(job.minutes)}) ...",
              flush=True)
        try:
            result = run_job(job, results_dir, runs_root)
        except ConfigError as error:
            failures += 1
            _record_not_run(results_dir, job, f"failed: {error}")
            print(f"{job.lab} {job.preset}: {error}", flush=True)
        else:
            _clear_not_run(results_dir, job)
            print(f"{job.lab} {job.preset}: done in {result['wall_time_s'] / 60:.1f} min "
                  f"({result['data_kind']} data)", flush=True)
        ledger.write(results_dir, project)
    ledger.write(results_dir, project)
    print(f"ledger: {results_dir / 'LEDGER.md'}")
    return 1 if failures else 0
