"""The seed ledger: every figure, table and claim of the five seed reports as data, the results
that reproduce them, and the verdicts.

Each lab folder declares its seed items and the estimated 2-core CPU minutes of its presets on
the real data in `seeds.md` (`keras_labs.seeds`), beside its `config.py`. The HTML
report, `keras-labs reproduce`, `results/LEDGER.md` and the README's results tables all read
these declarations and the committed `results/<lab>/<preset>.json` files; nothing is typed twice.
The verdicts are `keras_labs.results.judging`'s; whether a result still stands for today's code
is `keras_labs.results.freshness`'s.

Nothing here imports TensorFlow: `keras-labs reproduce --dry-run` answers at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from keras_labs import ConfigError, labs
from keras_labs.config import field_names
from keras_labs.files import atomic_write
from keras_labs.results import conditions, freshness, judging
from keras_labs.results.benchmarks import BENCHMARKS, benchmark_lines, load_figure
from keras_labs.results.judging import (  # noqa: F401 (the ledger's vocabulary)
    BEATEN,
    BELOW,
    MET,
    NOT_RUN,
    NOT_SHOWN,
    PICTURE,
    SHOWN,
    VERDICTS,
    Reading,
    format_value,
    judge,
    lookup,
    within_noise,
)
from keras_labs.seeds import REPORTS, SeedItem, table  # noqa: F401 (the ledger's vocabulary)

# Items whose preset takes longer than this (2-core CPU minutes) are left to the user.
RUN_LIMIT_MINUTES = 20.0
# A row within one draw's noise of the report asks for more seeds where its preset takes less.
NOISE_RUN_MINUTES = 10.0


# --------------------------------------------------------------------------------------------
# The declarations, gathered from the labs.


def items(report: str | None = None, lab: str | None = None, item: str | None = None
          ) -> list[SeedItem]:
    """Every lab's seed items (in tour order), optionally only one report's, lab's or item.

    Raises:
        ConfigError: An unknown report, lab or item id (the message lists the valid ones).
    """
    if report is not None and report not in REPORTS:
        raise ConfigError(f"unknown report {report!r}; valid reports: {', '.join(REPORTS)}")
    chosen = [labs.get(lab).NAME] if lab is not None else labs.names()
    found = []
    for name in chosen:
        module = labs.get(name)
        for declared in labs.seed_items(name).items:
            if declared.preset not in module.PRESETS:
                raise ValueError(f"{name}: seed item {declared.item!r} names preset "
                                 f"{declared.preset!r}, which the lab does not have")
            found.append(dataclasses.replace(declared, lab=name))
    for entry in found:
        if entry.condition:
            try:
                conditions.parse(entry.condition)
            except conditions.ConditionError as error:
                raise ValueError(f"{entry.lab}: seed item {entry.item!r}: {error}") from None
    ids = [entry.item for entry in found]
    duplicated = sorted({entry for entry in ids if ids.count(entry) > 1})
    if duplicated:
        raise ValueError(f"seed item ids must be unique; repeated: {', '.join(duplicated)}")
    if item is not None:
        if item not in ids:
            raise ConfigError(f"unknown seed item {item!r}; see `keras-labs reproduce --dry-run`")
        found = [entry for entry in found if entry.item == item]
    if report is not None:
        found = [entry for entry in found if entry.report == report]
    return sorted(found, key=lambda entry: (entry.report, ids.index(entry.item)))


def preset_minutes(lab: str, preset: str) -> float | None:
    """The lab's declared estimate of `preset` in 2-core CPU minutes, or None."""
    return labs.seed_items(lab).minutes.get(preset)


def command(lab: str, preset: str) -> str:
    """The command that reproduces one preset."""
    return f"keras-labs run {lab} --preset {preset} --data full"


# --------------------------------------------------------------------------------------------
# Results.


def result_path(results_dir: str | os.PathLike, lab: str, preset: str) -> Path:
    return Path(results_dir) / lab / f"{preset}.json"


def load_results(results_dir: str | os.PathLike) -> dict[tuple[str, str], dict]:
    """{(lab, preset): result} of every `results_dir/<lab>/<preset>.json`."""
    found = {}
    root = Path(results_dir)
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*/*.json")):
        if path.parent.name == BENCHMARKS:
            continue
        try:
            found[(path.parent.name, path.stem)] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def data_kind(metrics: dict, env: dict | None = None) -> str:
    """'full', 'partial' or 'sample' from a run's metrics["data"] (else its env.json's "data"):
    the smallest of its sources; 'unknown' when neither says."""
    kinds = set()
    for info in (metrics.get("data") or (env or {}).get("data") or {}).values():
        kind = info.get("kind", "sample")
        kinds.add("partial" if kind == "full" and info.get("partial") else kind)
    for kind in ("sample", "partial", "full"):
        if kind in kinds:
            return kind
    return sorted(kinds)[0] if kinds else "unknown"


def seed_runs(result: dict) -> list[dict]:
    """A committed result's runs, one per seed ({"seed", "metrics", "wall_time_s", ...}); empty
    for a result of one run without the list. Results recorded before the list was named
    "runs" call it "seed_runs"."""
    return list(result.get("runs") or result.get("seed_runs") or [])


def runs_of(result: dict) -> list[dict]:
    """Every seed's metrics of a committed result (one run: its metrics alone)."""
    return [run["metrics"] for run in seed_runs(result)] or [result["metrics"]]


def minutes_per_seed(lab: str, preset: str, result: dict | None) -> float | None:
    """The wall minutes one seed of `preset` took (its recorded runs' mean), else its estimate."""
    if result is None:
        return preset_minutes(lab, preset)
    times = [run.get("wall_time_s") for run in seed_runs(result)] or [result.get("wall_time_s")]
    if all(isinstance(time, int | float) for time in times):
        return math.fsum(times) / len(times) / 60
    return preset_minutes(lab, preset)


def needs_seeds(entry: SeedItem, preset: str, result: dict | None) -> bool:
    """Whether the row's figure from `preset` is one draw within noise of the report
    (`judging.within_noise`) and the preset is cheap enough to run again at more seeds."""
    if result is None:
        return False
    minutes = minutes_per_seed(entry.lab, preset, result)
    return (minutes is not None and minutes < NOISE_RUN_MINUTES
            and within_noise(entry, runs_of(result)))


# --------------------------------------------------------------------------------------------
# The ledger: one row per seed item.


@dataclasses.dataclass(frozen=True)
class Row:
    """One seed item's line of the ledger.

    Attributes:
        entry: The item.
        reading: Its verdict on the result of its preset.
        data: That result's data kind ("-" without one).
        equal_updates: Its verdict on the equal-updates preset's result, where it has one.
        command: The command that reproduces the preset.
        code: Whether the result(s) stand for today's code: "at <commit>" / "verified at
            <commit>", "stale: ..." (`freshness.staleness`), "provisional: ..." (recorded from a
            dirty tree), "-" without a result.
        assumed: The settings the report does not state, with our values.
    """

    entry: SeedItem
    reading: Reading
    data: str
    equal_updates: Reading | None
    command: str
    code: str = "-"
    assumed: str = ""


def _not_run_reason(entry: SeedItem, preset: str, not_run: dict[str, str]) -> str:
    recorded = not_run.get(f"{entry.lab}/{preset}")
    if recorded:
        return recorded
    minutes = preset_minutes(entry.lab, preset)
    if minutes is not None and minutes > RUN_LIMIT_MINUTES:
        return f"est. {minutes:g} CPU min (over the {RUN_LIMIT_MINUTES:g}-minute limit)"
    return "not measured yet"


def read_not_run(results_dir: str | os.PathLike) -> dict[str, str]:
    """{"lab/preset": why} from `results_dir/not-run.tsv` (presets reproduce could not run)."""
    path = Path(results_dir) / "not-run.tsv"
    if not path.is_file():
        return {}
    rows = (line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return {key: why for key, why in rows}


def code_state(result: dict | None) -> str:
    """Whether a committed result stands for today's code (see `Row.code`)."""
    if not result:
        return "-"
    if result.get("provisional"):
        return f"provisional: dirty tree at {str(result.get('commit'))[:7]}"
    stale = freshness.staleness(result)
    if stale:
        return stale
    verified = result.get("verified_at")
    return f"verified at {verified[:7]}" if verified else f"at {str(result.get('commit'))[:7]}"


def _setting(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "(" + ", ".join(str(item) for item in value) + ")"
    return str(value)


def assumed_text(entry: SeedItem) -> str:
    """The item's `assumed` settings with the preset's values ("epochs=10, batch_size=50"; a
    differing equal-updates value in brackets); words that are not config fields as they are."""
    if not entry.assumed:
        return ""
    presets = labs.get(entry.lab).PRESETS
    config = presets[entry.preset]
    second = presets.get(entry.equal_updates) if entry.equal_updates else None
    parts = []
    for word in (part.strip() for part in entry.assumed.split(",")):
        if word not in field_names(type(config)):
            parts.append(word)
            continue
        text = f"{word}={_setting(getattr(config, word))}"
        if second is not None and getattr(second, word) != getattr(config, word):
            text += f" ({_setting(getattr(second, word))} at equal updates)"
        parts.append(text)
    return ", ".join(parts)


def noisy_presets(results_dir: str | os.PathLike, chosen: list[SeedItem]
                  ) -> set[tuple[str, str]]:
    """The (lab, preset)s behind `chosen` rows that `needs_seeds` asks more seeds of."""
    results = load_results(results_dir)
    return {(entry.lab, preset) for entry in chosen
            for preset in filter(None, (entry.preset, entry.equal_updates))
            if needs_seeds(entry, preset, results.get((entry.lab, preset)))}


def _reading(entry: SeedItem, preset: str, result: dict | None, results: dict,
             not_run: dict[str, str]) -> Reading:
    reading = judge(entry, result["metrics"] if result else None, results,
                    runs=runs_of(result) if result else None)
    if needs_seeds(entry, preset, result):
        note = (f"one draw within {judging.NOISE_STANDARD_ERRORS:g} standard errors of the report:"
                f" needs {judging.NOISE_SEEDS} seeds")
        reading = dataclasses.replace(reading, why=f"{reading.why}; {note}" if reading.why else note)
    if reading.verdict == NOT_RUN and not reading.why:
        reading = dataclasses.replace(reading, why=_not_run_reason(entry, preset, not_run))
    return reading


def _with_attempts(entry: SeedItem, reading: Reading, results: dict,
                   not_run: dict[str, str], known: dict[str, SeedItem] | None = None) -> Reading:
    """The row's reading with its other attempts at the claim (`SeedItem.attempts`) named, each
    with its figure and verdict: "not reproduced in N attempts" when none shows it.

    Args:
        known: {item id: item} of every lab, when the caller has them (each lookup otherwise
            reads every lab's seeds.md again).
    """
    if not entry.attempts:
        return reading
    texts, held, ran = [], [], reading.verdict != NOT_RUN
    for item in filter(None, (part.strip() for part in entry.attempts.split("+"))):
        attempt = known[item] if known and item in known else items(item=item)[0]
        other = _reading(attempt, attempt.preset, results.get((attempt.lab, attempt.preset)),
                         results, not_run)
        texts.append(f"`{attempt.item}` ({attempt.lab} {attempt.preset}): {other.ours}, "
                     f"{other.verdict}")
        held.append(other.verdict in (SHOWN, MET, BEATEN))
        ran = ran and other.verdict != NOT_RUN
    if any(held):
        summary = "shown by attempt " + ", ".join(
            text.split(" ", 1)[0] for text, shown in zip(texts, held, strict=True) if shown)
    elif ran and reading.verdict in (NOT_SHOWN, BELOW):
        summary = f"not reproduced in {1 + len(texts)} attempts (this run and {len(texts)} more)"
    else:
        summary = "other attempts"
    text = f"{summary}: {'; '.join(texts)}"
    return dataclasses.replace(reading, why=f"{reading.why}; {text}" if reading.why else text)


def rows(results_dir: str | os.PathLike, chosen: list[SeedItem] | None = None) -> list[Row]:
    """The ledger's rows for `chosen` items (default: all) from the results in `results_dir`."""
    results = load_results(results_dir)
    not_run = read_not_run(results_dir)
    found, every = [], items()
    known = {entry.item: entry for entry in every}
    for entry in chosen if chosen is not None else every:
        result = results.get((entry.lab, entry.preset))
        reading = _with_attempts(entry, _reading(entry, entry.preset, result, results, not_run),
                                 results, not_run, known)
        second, code = None, code_state(result)
        if entry.equal_updates:
            other = results.get((entry.lab, entry.equal_updates))
            second = _reading(entry, entry.equal_updates, other, results, not_run)
            if other is not None and code_state(other) != code:
                code += f"; equal updates: {code_state(other)}"
        found.append(Row(entry, reading, result["data_kind"] if result else "-", second,
                         command(entry.lab, entry.preset), code, assumed_text(entry)))
    return found


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict_text(reading: Reading) -> str:
    return f"{reading.verdict} ({reading.why})" if reading.why else reading.verdict


def markdown(found: list[Row], *, with_report: bool = True) -> str:
    """A markdown table of `found` rows."""
    head = ["report"] * with_report + ["item", "what", "seed report", "ours", "data", "verdict",
                                       "assumed", "code"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in found:
        entry = row.entry
        ours = row.reading.ours
        verdict = _verdict_text(row.reading)
        if row.equal_updates is not None:
            ours += f"; equal updates: {row.equal_updates.ours}"
            verdict += f"; equal updates: {_verdict_text(row.equal_updates)}"
        what = entry.description + (f" ({entry.note})" if entry.note else "")
        cells = [entry.report] * with_report + [
            f"`{entry.item}`", what, entry.seed_text, ours, row.data, verdict,
            row.assumed or "-", row.code]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def counts(found: list[Row]) -> dict[str, int]:
    tally = dict.fromkeys(VERDICTS, 0)
    for row in found:
        tally[row.reading.verdict] += 1
    return tally


def _point(value: float, unit: str) -> str:
    return f"{100 * value:.1f}%" if unit == "%" else f"{value:.4f}"


def curve_tables(found: list[Row]) -> list[str]:
    """For every series row, the report's points and ours side by side (both readings)."""
    lines = []
    for row in found:
        for name, reading in (("", row.reading), (" (equal updates)", row.equal_updates)):
            if reading is None or reading.points is None:
                continue
            theirs, ours = reading.points
            unit = row.entry.unit
            lines += [f"`{row.entry.item}`{name}: {row.entry.description}; {reading.ours}, "
                      f"{reading.verdict}.", "",
                      "| point | report | ours | difference |", "|---:|---:|---:|---:|"]
            lines += [f"| {index} | {_point(report, unit)} | {_point(mine, unit)} | "
                      f"{_point(mine - report, unit)} |"
                      for index, (report, mine) in enumerate(zip(theirs, ours, strict=True), 1)]
            lines.append("")
    return lines


def _run_line(lab: str, preset: str, result: dict) -> str:
    env = result.get("env", {})
    seeds = seed_runs(result)
    recorded = result.get("recorded_at") or {}
    provenance = f"commit {str(result.get('commit'))[:10]}"
    if result.get("dirty"):
        provenance += " (dirty tree: provisional)" if result.get("provisional") else " (dirty tree)"
    if result.get("verified_at"):
        provenance = (f"recorded at {str(recorded.get('commit'))[:10]}"
                      f"{' (dirty tree)' if recorded.get('dirty') else ''}, verified at "
                      f"{str(result['verified_at'])[:10]} ({result.get('verified_on', '')})")
    fingerprint = (result.get("code") or {}).get("digest") or "none"
    seed_list = ", ".join(str(run.get("seed")) for run in seeds)
    return (f"- `{lab}` `{preset}`: {result.get('data_kind')} data, {provenance}, code "
            f"{fingerprint}{f', seeds {seed_list}' if seeds else ''}, "
            f"{result.get('wall_time_s', 0) / 60:.1f} min wall, load {load_figure(env, 'load_start')} -> "
            f"{load_figure(env, 'load_end')}, steal {env.get('steal_s', 0):.1f} s, {result.get('finished', '')}")


def _runs_list(results: dict) -> list[str]:
    return [_run_line(lab, preset, result) for (lab, preset), result in sorted(results.items())]


_EXPLAINED = (
    "Verdicts. A number: ours is the mean over the result's seeds (n=1: one run) with a 95% "
    "interval: for a test accuracy at least the binomial half-width of the test set, "
    "1.96 sqrt(p(1-p)/n_test), combined with the seeds' spread (Student's t); the tolerance is "
    "the item's, never smaller than that binomial half-width at the report's figure. **beaten**: "
    "the interval clears the report's figure plus the tolerance; **below**: it misses the figure "
    "minus the tolerance; **met**: anything else. A figure that is neither better nor worse when "
    "it differs (a training loss) is met within the tolerance and below outside it, never "
    "beaten. A series the report printed is compared point by point (tables under Curves). A "
    "claim is **shown** when its stated condition holds on every seed (an untrained, broken or "
    "shuffled run fails it: tests/test_ledger_negative_controls.py), else **not shown**; a "
    "**picture** is a figure to look at that claims nothing and counts as shown nowhere; **not "
    "run** says why. **assumed**: the settings of our run that the report does not state. "
    "**code**: `at <commit>` when the result's code fingerprint (every keras_labs module the run "
    "imported) matches today's source, `verified at <commit>` when a re-run there agreed with "
    "the figure, **stale** when a module changed since (or the result has no fingerprint), "
    "**provisional** when it was recorded from a dirty tree (`--allow-dirty`).")
_DATA = (
    "Data: `full` is the whole dataset, `partial` the 8,152 / 1,017-image CIFAR-10 of "
    "`../shared/data` (the reports had 50,000 / 10,000). Where the data is smaller, the verdict "
    "is on the report's own recipe (its epochs); the **equal updates** reading trains for the "
    "report's number of gradient steps and has its own verdict beside it. Every lab holds out a "
    "seeded validation split of its training data for curves and selection; the test split is "
    "scored once, at the end. `keras-labs reproduce --item ID` runs a row's presets; `keras-labs "
    "reproduce --verify ID` re-runs them into a scratch folder and compares.")


def render(results_dir: str | os.PathLike) -> str:
    """The whole of `results/LEDGER.md`."""
    found = rows(results_dir)
    tally = counts(found)
    results = load_results(results_dir)
    summary = ", ".join(f"{count} {verdict}" for verdict, count in tally.items())
    stale = sum("stale:" in row.code for row in found)
    provisional = sum("provisional:" in row.code for row in found)
    parts = [
        "# Seed ledger",
        "",
        "Generated by `keras-labs reproduce` from `results/<lab>/<preset>.json`: do not edit by "
        "hand (`keras-labs reproduce --render` rewrites it). One row per figure, table or claim of "
        "the five seed reports in `../shared/seeds/`; the items are declared beside each lab's "
        "presets (`keras_labs/labs/<lab>/seeds.md`).",
        "",
        f"{len(found)} items: {summary}. {stale} rows are stale (their result has no code "
        f"fingerprint, or its code or preset changed since), {provisional} provisional.",
        "",
        _EXPLAINED,
        "",
        _DATA,
        "",
        markdown(found),
        "",
        "## Curves",
        "",
        "The series the reports printed, point by point against ours.",
        "",
        *(curve_tables(found) or ["- none measured yet", ""]),
        "## Runs",
        "",
        "Each result records the commit it ran at (and whether the tree was clean), the "
        "fingerprint of its code, the resolved config, the machine, and the load average and CPU "
        "steal around the run (wall times are not benchmarks).",
        "",
        *(_runs_list(results) or ["- none yet"]),
        "",
        "## Benchmarks",
        "",
        "Training speed of the report-004 network (`cifar-cnn --preset tutorial`'s model and "
        "pipeline) against plain PyTorch eager on the same images, interleaved rounds on a quiet "
        "machine; each round's best thread count on each side.",
        "",
        *(benchmark_lines(results_dir) or ["- none recorded yet"]),
        "",
    ]
    return "\n".join(parts)


BLOCK_BEGIN = "<!-- ledger:{name} (generated from results/ by keras-labs reproduce; do not edit) -->"
BLOCK_END = "<!-- /ledger:{name} -->"
# The pages whose generated blocks `keras-labs reproduce --render` keeps in step, relative to
# the project root: the README (the summary) and every page under docs/ (a lab's results, the
# benchmarks).
GENERATED_PAGES = ("README.md", "docs")


def lab_block(results_dir: str | os.PathLike, lab: str) -> str:
    """The generated results table of one lab, for its docs page."""
    return markdown(rows(results_dir, items(lab=lab)))


def summary_block(results_dir: str | os.PathLike) -> str:
    """Per report, how many of its items are beaten, met, below, shown and not run, and how
    many of them are stale (their figure not yet re-checked on today's code): the README's
    summary of the ledger."""
    found = rows(results_dir)
    columns = VERDICTS
    lines = ["| report | items | " + " | ".join(columns) + " | of them stale |",
             "|---|---:|" + "---:|" * (len(columns) + 1)]
    for title, chosen in [*((title, [row for row in found if row.entry.report == report])
                            for report, title in REPORTS.items()), ("all", found)]:
        tally = counts(chosen)
        stale = sum("stale:" in row.code for row in chosen)
        lines.append(f"| {title} | {len(chosen)} | "
                     + " | ".join(str(tally.get(verdict, 0)) for verdict in columns)
                     + f" | {stale} |")
    return "\n".join(lines)


def generated_blocks(results_dir: str | os.PathLike) -> dict[str, Any]:
    """{block name: a function giving its text}: one per lab with seed items, `benchmarks`
    and `summary`."""
    blocks = {lab: lambda lab=lab: lab_block(results_dir, lab)
              for lab in {entry.lab for entry in items()}}
    blocks["benchmarks"] = lambda: "\n".join(benchmark_lines(results_dir))
    blocks["summary"] = lambda: summary_block(results_dir)
    return blocks


def block_text(page_text: str, name: str) -> str | None:
    """The text between a page's markers of block `name`, or None without them."""
    begin, end = BLOCK_BEGIN.format(name=name), BLOCK_END.format(name=name)
    start, stop = page_text.find(begin), page_text.find(end)
    if start < 0 or stop < start:
        return None
    return page_text[start + len(begin):stop]


def generated_pages(root: str | os.PathLike) -> list[Path]:
    """The README and every Markdown page under docs/ of the project at `root`."""
    root = Path(root)
    pages = []
    for name in GENERATED_PAGES:
        path = root / name
        pages += sorted(path.rglob("*.md")) if path.is_dir() else [path] * path.is_file()
    return pages


def update_page(page: str | os.PathLike, results_dir: str | os.PathLike) -> bool:
    """Rewrites every generated block (`<!-- ledger:NAME -->`) of `page` from the results;
    True if the page changed."""
    path = Path(page)
    text = path.read_text()
    updated = text
    for name, block in generated_blocks(results_dir).items():
        if block_text(updated, name) is None:
            continue
        begin, end = BLOCK_BEGIN.format(name=name), BLOCK_END.format(name=name)
        start, stop = updated.find(begin), updated.find(end)
        updated = updated[:start + len(begin)] + "\n" + block() + "\n" + updated[stop:]
    if updated != text:
        atomic_write(path, updated)
    return updated != text


def write(results_dir: str | os.PathLike, project_root: str | os.PathLike | None = None) -> Path:
    """Regenerates `results_dir/LEDGER.md` and, given the project's root, the generated blocks
    of its README and docs/ pages; returns the ledger's path."""
    root = Path(results_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = atomic_write(root / "LEDGER.md", render(root))
    if project_root is not None:
        for page in generated_pages(project_root):
            update_page(page, root)
    return target
