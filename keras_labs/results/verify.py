"""Re-running committed rows: `keras-labs reproduce --verify` and `--stale`.

`--verify [ITEM ...]` re-runs the items' presets into a scratch folder, leaves results/ as it
is, and prints per item the committed figure, the re-run's and whether they agree within the
row's noise tolerance (exit 1 if any does not). `--rotate N` verifies N cheap rows, a window of
them that moves with the date, so a daily CI run checks every cheap row over time.

`--stale` re-runs exactly the presets whose result no longer stands for today's code or preset
(`freshness.staleness`). One whose code changed is re-run once (its first seed) and compared: if
every item that reads it agrees, the committed figure stays and the result records the new
fingerprint, the commit it was verified at (`verified_at`) and the re-run's figures
(`verified_figure`); if one disagrees, the preset is re-recorded and the change printed. One
whose config changed is re-recorded: its old figure measured another experiment.

A re-run repeats a run at the same seed; the tolerance allows for what differs anyway (thread
scheduling, another CPU): the item's own, never smaller than the binomial half-width.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path
from typing import Any

from keras_labs import ConfigError
from keras_labs.files import atomic_write
from keras_labs.results import jobs, judging, ledger
from keras_labs.seeds import SeedItem

# A row is cheap enough for the daily rotation when its presets (both readings) together took
# at most this many minutes: three of them stay under 3 minutes in all.
CHEAP_ROW_MINUTES = 1.0


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One item's committed figure against a re-run's (`agree` None: nothing to compare)."""

    item: str
    preset: str
    committed: str
    rerun: str
    agree: bool | None
    tolerance: str = ""

    def line(self) -> str:
        verdict = ("nothing to compare" if self.agree is None else
                   "agree" if self.agree else "DISAGREE")
        within = f" (tolerance {self.tolerance})" if self.tolerance else ""
        return (f"  {self.item} ({self.preset}): committed {self.committed}, re-run "
                f"{self.rerun}: {verdict}{within}")


def compare(entry: SeedItem, preset: str, committed: dict, rerun: dict,
            results: dict) -> Comparison:
    """The item's figure in the committed metrics (its first seed's) against the re-run's."""
    unit = entry.unit
    if entry.picture:
        return Comparison(entry.item, preset, "a picture", "a picture", None)
    if entry.qualitative:
        before = judging.judge(entry, committed, results)
        after = judging.judge(entry, rerun, results)
        return Comparison(entry.item, preset, f"{before.verdict} ({before.ours})",
                          f"{after.verdict} ({after.ours})", before.verdict == after.verdict)
    old, new = judging.lookup(committed, entry.metric), judging.lookup(rerun, entry.metric)
    if entry.series:
        if not isinstance(old, list) or not isinstance(new, list) or len(old) != len(new):
            return Comparison(entry.item, preset, judging.format_value(old, unit),
                              judging.format_value(new, unit), False)
        distance = max((abs(float(a) - float(b)) for a, b in zip(old, new, strict=True)),
                       default=0.0)
        return Comparison(entry.item, preset, f"series of {len(old)}",
                          f"largest absolute difference {distance:.4g}", distance <= entry.tolerance,
                          f"{entry.tolerance:g}")
    if not _number(old) or not _number(new):
        return Comparison(entry.item, preset, judging.format_value(old, unit),
                          judging.format_value(new, unit), False)
    examples = judging.test_examples(entry, committed)
    tolerance = max(entry.tolerance, judging.binomial_half_width(float(old), examples))
    return Comparison(entry.item, preset, judging.format_value(old * entry.scale, unit),
                      judging.format_value(new * entry.scale, unit),
                      abs(float(new) - float(old)) * entry.scale <= tolerance,
                      f"±{judging.spread_text(tolerance, unit)}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def readers(job: jobs.Job, chosen: list[SeedItem]) -> list[SeedItem]:
    """The chosen items that read the job's preset (as theirs or as their equal updates)."""
    return [entry for entry in chosen if entry.lab == job.lab
            and job.preset in (entry.preset, entry.equal_updates)]


def first_seed_metrics(result: dict) -> dict:
    return ledger.runs_of(result)[0]


def cheap_rows(chosen: list[SeedItem], results: dict) -> list[SeedItem]:
    """The rows a daily rotation can verify: committed, not a picture, and whose presets took
    at most `CHEAP_ROW_MINUTES` together."""
    cheap = []
    for entry in chosen:
        presets = [preset for preset in (entry.preset, entry.equal_updates) if preset]
        recorded = [results.get((entry.lab, preset)) for preset in presets]
        if entry.picture or not all(recorded):
            continue
        minutes = sum(result.get("wall_time_s", math.inf) / 60 / len(jobs.recorded_seeds(result))
                      for result in recorded)
        if minutes <= CHEAP_ROW_MINUTES:
            cheap.append(entry)
    return cheap


def rotation(rows: list[SeedItem], count: int, day: datetime.date) -> list[SeedItem]:
    """`count` consecutive rows from a start that moves by `count` a day: every row is checked
    within len(rows) / count days."""
    if not rows:
        return []
    start = (day.toordinal() * count) % len(rows)
    return [rows[(start + offset) % len(rows)] for offset in range(min(count, len(rows)))]


def _scratch(runs: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(runs).parent / "verify" / stamp


def _rerun(job: jobs.Job, committed: dict, scratch: Path, data_dir: str | None) -> dict:
    """Re-runs the committed result's first seed into `scratch`; the scratch result."""
    job.seeds = jobs.recorded_seeds(committed)[:1]
    return jobs.run_job(job, scratch / "results", scratch / "runs", data_dir=data_dir)


def verify(chosen: list[SeedItem], results_dir: Path, *, runs: str, max_minutes: float,
           data_dir: str | None = None) -> int:
    """`keras-labs reproduce --verify`: re-runs the chosen items' presets into a scratch folder
    and compares; 1 if any item disagrees or a run fails, else 0. results/ is not written."""
    committed = ledger.load_results(results_dir)
    planned = jobs.plan(chosen, results_dir, max_minutes=max_minutes)
    todo = []
    for job in planned:
        if (job.lab, job.preset) not in committed:
            print(f"{job.lab} {job.preset}: no committed result to verify", flush=True)
        elif job.minutes is not None and job.minutes > max_minutes:
            print(f"{job.lab} {job.preset}: {job.minutes:g} min, over --max-minutes "
                  f"{max_minutes:g}: not verified", flush=True)
        else:
            # the first seed only, as `_rerun` runs it: the progress lines count it so
            job.seeds = jobs.recorded_seeds(committed[(job.lab, job.preset)])[:1]
            todo.append(job)
    scratch, progress = _scratch(runs), jobs.Progress(todo)
    tally = {True: 0, False: 0, None: 0}
    for index, job in enumerate(todo):
        progress.start(index, job, "verifying")
        try:
            rerun = _rerun(job, committed[(job.lab, job.preset)], scratch, data_dir)
        except ConfigError as error:
            print(f"  {job.lab} {job.preset}: {error}", flush=True)
            tally[False] += 1
            continue
        for entry in readers(job, chosen):
            comparison = compare(entry, job.preset, first_seed_metrics(
                committed[(job.lab, job.preset)]), rerun["metrics"], committed)
            tally[comparison.agree] += 1
            print(comparison.line(), flush=True)
    elapsed = (datetime.datetime.now() - progress.started).total_seconds() / 60
    print(f"verify: {tally[True]} agree, {tally[False]} disagree, {tally[None]} with nothing to "
          f"compare, {len(todo)} presets in {elapsed:.1f} min (scratch: {scratch})")
    return 1 if tally[False] else 0


def mark_verified(result: dict, rerun: dict, tree: dict, figures: dict[str, str]) -> dict:
    """The committed result, its figures kept, pinned to the code and commit of a re-run that
    agreed with them; the first recording's commit, tree and fingerprint kept in
    `recorded_at`."""
    updated = dict(result)
    updated["recorded_at"] = result.get("recorded_at") or {
        "commit": result.get("commit"), "dirty": result.get("dirty"),
        "finished": result.get("finished"),
        "code": (result.get("code") or {}).get("digest")}
    dirty = bool(tree.get("changes"))
    updated.update({
        "commit": tree.get("commit"), "dirty": dirty, "provisional": dirty,
        "code": rerun.get("code"), "verified_at": tree.get("commit"),
        "verified_on": datetime.date.today().isoformat(), "verified_figure": figures,
        "verified_run_dir": rerun.get("run_dir")})
    return updated


def _refresh_one(job: jobs.Job, results_dir: Path, scratch: Path, tree: dict,
                 data_dir: str | None) -> bool:
    """Verifies one code-stale preset: keeps its figure if every reader agrees (True), else
    re-records it and prints the change (False)."""
    results = ledger.load_results(results_dir)
    committed = results[(job.lab, job.preset)]
    seeds = jobs.recorded_seeds(committed)
    rerun = _rerun(job, committed, scratch, data_dir)
    comparisons = [compare(entry, job.preset, first_seed_metrics(committed), rerun["metrics"],
                           results) for entry in readers(job, ledger.items(lab=job.lab))]
    if all(comparison.agree is not False for comparison in comparisons):
        figures = {comparison.item: comparison.rerun for comparison in comparisons}
        updated = mark_verified(committed, rerun, tree, figures)
        path = ledger.result_path(results_dir, job.lab, job.preset)
        atomic_write(path, json.dumps(updated, indent=1, sort_keys=True, default=str) + "\n")
        print(f"  verified: the figures stand ({len(comparisons)} items agree)", flush=True)
        return True
    for comparison in comparisons:
        if comparison.agree is False:
            print(f"  changed: {comparison.line().strip()}", flush=True)
    first = {**rerun, "seed": seeds[0], "env": {"code": rerun.get("code")},
             "config": rerun["config"], "metrics": rerun["metrics"]}
    job.seeds = seeds
    jobs.run_job(job, results_dir, scratch / "runs", tree=tree, data_dir=data_dir, keep=[first])
    print(f"  re-recorded {job.lab} {job.preset} from today's code", flush=True)
    return False


def _rerecord(job: jobs.Job, results_dir: Path, runs_root: Path, tree: dict,
              data_dir: str | None) -> None:
    """Re-records a preset whose config changed, and prints how its figures moved."""
    results = ledger.load_results(results_dir)
    before = results[(job.lab, job.preset)]
    job.seeds = jobs.recorded_seeds(before)
    after = jobs.run_job(job, results_dir, runs_root, tree=tree, data_dir=data_dir)
    for entry in readers(job, ledger.items(lab=job.lab)):
        comparison = compare(entry, job.preset, first_seed_metrics(before),
                             first_seed_metrics(after), results)
        if comparison.agree is False:
            print(f"  changed: {comparison.line().strip()}", flush=True)
    print(f"  re-recorded {job.lab} {job.preset} (its config changed)", flush=True)


def refresh_stale(chosen: list[SeedItem], results_dir: Path, *, runs: str, max_minutes: float,
                  tree: dict, data_dir: str | None = None, project: Path | None = None) -> int:
    """`keras-labs reproduce --stale`: re-runs exactly the stale presets of the chosen items;
    1 if a run failed, else 0."""
    planned = []
    for job in jobs.plan(chosen, results_dir, max_minutes=max_minutes):
        if job.status not in ("stale", "code stale"):
            continue
        if job.minutes is not None and job.minutes > max_minutes:
            print(f"{job.lab} {job.preset}: {job.status}, but {job.minutes:g} min is over "
                  f"--max-minutes {max_minutes:g}: not re-run", flush=True)
            continue
        planned.append(job)
    scratch, progress, failures = _scratch(runs), jobs.Progress(planned), 0
    for index, job in enumerate(planned):
        progress.start(index, job, "re-recording (config changed)" if job.status == "stale"
                       else "verifying (code changed)")
        try:
            if job.status == "stale":
                _rerecord(job, results_dir, Path(runs), tree, data_dir)
            else:
                _refresh_one(job, results_dir, scratch, tree, data_dir)
        except ConfigError as error:
            failures += 1
            print(f"  {job.lab} {job.preset}: {error}", flush=True)
        ledger.write(results_dir, project)
    print(f"stale: {len(planned)} presets re-run, {failures} failed")
    return 1 if failures else 0
