"""`keras-labs reproduce`: runs the presets behind the seed items on the prepared real data and
keeps one result per preset in `results/<lab>/<preset>.json`, then regenerates
`results/LEDGER.md` and the generated blocks of the README and docs/ pages.

    keras-labs reproduce --dry-run               # every item, its preset and estimated CPU time
    keras-labs reproduce --report 004            # run what report 004's items need
    keras-labs reproduce --item 002-t3-lstm-20 --force
    keras-labs reproduce --item 002-t1-tanh-adam-normal --seeds 3   # the mean of 3 seeds
    keras-labs reproduce --noisy                 # 3 seeds where one draw sits within noise
    keras-labs reproduce --stale                 # re-run what today's code made stale
    keras-labs reproduce --verify 001-ex1-sgd    # re-run into a scratch folder and compare
    keras-labs reproduce --verify --rotate 3     # 3 cheap rows, a window moving with the date

Each preset runs as its own `keras-labs run` process (a fresh TensorFlow, as a user would run
it) under `runs/reproduce/`. A result whose resolved config is the preset's current one is kept
unless `--force`; an interrupted reproduce finds the unfinished run folder of the preset and
resumes it (`keras-labs run --resume`), so a killed session loses at most one backup interval.
Presets estimated over `--max-minutes` are listed, not run. Results are recorded only from a
clean tree (`git status`, results/ and run folders aside); `--allow-dirty` records them marked
provisional. Every job prints one progress line with the time spent and the estimate left.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path
from typing import Any

from keras_labs import ConfigError
from keras_labs.files import atomic_write
from keras_labs.results import jobs, ledger, verify
from keras_labs.results.freshness import resolved_config, same_experiment  # noqa: F401
from keras_labs.results.jobs import Job, plan, run_job, steal_seconds  # noqa: F401
from keras_labs.results.judging import NOISE_SEEDS

PROJECT_ROOT = jobs.PROJECT_ROOT


def _bounded(kind: type, low: float, high: float):
    """An argparse type: a `kind` (int or float) number with low <= value <= high (low
    excluded for a float: a positive number)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (low <= value <= high if kind is int else low < value <= high):
            bounds = f"from {low:g} to {high:g}" if kind is int else f"> {low:g}"
            raise argparse.ArgumentTypeError(f"{text} is not valid; it must be {bounds}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `keras-labs reproduce` (the command line's sub-parser)."""
    parser.add_argument("--report", choices=tuple(ledger.REPORTS),
                        help="only this seed report's items")
    parser.add_argument("--lab", help="only this lab's items")
    parser.add_argument("--item", help="only this seed item (ids: --dry-run)")
    parser.add_argument("--max-minutes", type=_bounded(float, 0, 1e6),
                        default=ledger.RUN_LIMIT_MINUTES,
                        help="skip presets estimated over this many CPU minutes (default 20)")
    parser.add_argument("--results", default="results",
                        help="folder of result files and LEDGER.md (default: results)")
    parser.add_argument("--runs", default=os.path.join("runs", "reproduce"),
                        help="root of the run folders (default: runs/reproduce)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the items, their presets and estimated CPU time; run nothing")
    parser.add_argument("--force", action="store_true",
                        help="rerun presets whose committed result has the same config")
    parser.add_argument("--render", action="store_true",
                        help="only regenerate LEDGER.md and the README and docs/ blocks from results/")
    parser.add_argument("--verify", nargs="*", metavar="ITEM",
                        help="re-run these items (or the --item/--lab/--report ones) into a "
                             "scratch folder and compare with the committed figures; results/ "
                             "is not written; exit 1 if one disagrees")
    parser.add_argument("--rotate", type=_bounded(int, 1, 1000), metavar="N",
                        help="verify N cheap rows (their presets together under a minute), a "
                             "window that moves with the date (for CI)")
    parser.add_argument("--stale", action="store_true",
                        help="re-run the presets whose code or config changed since their "
                             "result: a figure a re-run agrees with stays, verified")
    parser.add_argument("--seeds", type=_bounded(int, 1, 10), default=1, metavar="N",
                        help="run each preset at N seeds (its own and the next N-1) and keep "
                             "every run's metrics (default 1)")
    parser.add_argument("--noisy", action="store_true",
                        help="only the presets whose rows are one draw within noise of the "
                             "report and take under 10 minutes (the ledger says 'needs 3 "
                             "seeds'), at 3 seeds unless --seeds asks for more")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="record from a tree with uncommitted changes; the results are "
                             "marked provisional")
    parser.add_argument("--data-dir", help="tfds data dir of the runs (default: theirs)")
    return parser


def _resolved(lab: str, preset: str) -> dict:
    return resolved_config(lab, preset)


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


def chosen_items(args: Any, results_dir: Path) -> list[ledger.SeedItem]:
    """The items a `reproduce` command acts on: `--verify ITEM ...`, else `--item`, `--lab`,
    `--report` (or all); `--rotate N` narrows them to N cheap rows of the day."""
    named = list(getattr(args, "verify", None) or [])
    if named:
        if args.item or args.lab or args.report:
            raise ConfigError("name the items either after --verify or with --item/--lab/"
                              "--report, not both")
        chosen = [entry for name in dict.fromkeys(named) for entry in ledger.items(item=name)]
    else:
        chosen = ledger.items(report=args.report, lab=args.lab, item=args.item)
    if getattr(args, "rotate", None):
        cheap = verify.cheap_rows(chosen, ledger.load_results(results_dir))
        chosen = verify.rotation(cheap, args.rotate, datetime.date.today())
        print(f"rotation of {datetime.date.today()}: {', '.join(e.item for e in chosen) or 'none'} "
              f"({len(cheap)} cheap rows)", flush=True)
    return chosen


def _dry_run(chosen: list[ledger.SeedItem], planned: list[Job], max_minutes: float,
             stale_only: bool) -> int:
    by_preset = {(job.lab, job.preset): job for job in planned}
    for entry in chosen:
        job = by_preset.get((entry.lab, entry.preset)) or by_preset[(entry.lab, entry.equal_updates)]
        extra = f" + {entry.equal_updates}" if entry.equal_updates else ""
        print(f"{entry.report}  {entry.item:32s} {entry.lab:11s} {entry.preset}{extra}  "
              f"[{_format_minutes(job.minutes)} CPU, {job.status}]  {entry.description}")
    wanted = ("stale", "code stale") if stale_only else ("to run", "stale", "more seeds")
    todo = [job for job in planned if job.status in wanted
            and (job.minutes is None or job.minutes <= max_minutes)]
    total = sum((job.minutes or 0) * max(1, len(job.seeds)) for job in todo)
    print(f"{len(chosen)} seed items from {len({e.report for e in chosen})} reports, "
          f"{len(planned)} presets: {len(todo)} to {'re-run (stale)' if stale_only else 'run'} "
          f"(~{total:.0f} CPU min), {sum(job.status == 'done' for job in planned)} done, "
          f"{sum(job.status == 'code stale' for job in planned)} code stale, "
          f"{sum(job.status == 'too long' for job in planned)} over {max_minutes:g} min")
    return 0


def _run_jobs(planned: list[Job], results_dir: Path, args: Any, project: Path | None) -> int:
    tree = jobs.require_clean_tree(args.allow_dirty)
    if tree["changes"]:
        print(f"recording provisional results: {len(tree['changes'])} uncommitted changes "
              "(--allow-dirty)", flush=True)
    failures, progress = 0, jobs.Progress(planned)
    committed = ledger.load_results(results_dir)
    for index, job in enumerate(planned):
        if job.status in ("done", "too long", "code stale"):
            hint = " (`--stale` verifies it)" if job.status == "code stale" else ""
            print(f"[{index + 1}/{len(planned)}] {job.lab} {job.preset}: {job.status}{hint} "
                  f"({_format_minutes(job.minutes)})", flush=True)
            continue
        progress.start(index, job)
        keep = jobs.kept_runs(committed.get((job.lab, job.preset))) if job.status == "more seeds" else []
        try:
            result = run_job(job, results_dir, Path(args.runs), tree=tree,
                             data_dir=args.data_dir, keep=keep)
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


def main(args: Any) -> int:
    """The `keras-labs reproduce` command (arguments from cli.build_parser)."""
    results_dir = Path(args.results)
    chosen = chosen_items(args, results_dir)
    # The committed ledger's pages are regenerated with it; a scratch results folder's are not.
    project = PROJECT_ROOT if results_dir.resolve() == (PROJECT_ROOT / "results").resolve() else None
    if args.render:
        print(f"wrote {ledger.write(results_dir, project)}")
        return 0
    if args.verify is not None or args.rotate:
        if args.dry_run:
            return _dry_run(chosen, plan(chosen, results_dir, max_minutes=args.max_minutes),
                            args.max_minutes, False)
        return verify.verify(chosen, results_dir, runs=args.runs, max_minutes=args.max_minutes,
                             data_dir=args.data_dir)
    seeds = max(args.seeds, NOISE_SEEDS) if getattr(args, "noisy", False) else args.seeds
    planned = plan(chosen, results_dir, force=args.force, max_minutes=args.max_minutes,
                   seeds=seeds, compared=not args.stale)
    if getattr(args, "noisy", False):
        noisy = ledger.noisy_presets(results_dir, chosen)
        planned = [job for job in planned if (job.lab, job.preset) in noisy]
        chosen = [entry for entry in chosen if any(
            (entry.lab, preset) in noisy for preset in (entry.preset, entry.equal_updates))]
    if args.dry_run:
        return _dry_run(chosen, planned, args.max_minutes, args.stale)
    if args.stale:
        tree = jobs.require_clean_tree(args.allow_dirty)
        return verify.refresh_stale(chosen, results_dir, runs=args.runs,
                                    max_minutes=args.max_minutes, tree=tree,
                                    data_dir=args.data_dir, project=project)
    return _run_jobs(planned, results_dir, args, project)
