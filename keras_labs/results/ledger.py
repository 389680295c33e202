"""The seed ledger: every figure, table and claim of the five seed reports as data, the results
that reproduce them, and the verdicts.

Each lab folder declares its seed items and the estimated 2-core CPU minutes of its presets on
the real data in `seeds.md` (`keras_labs.seeds`), beside its `config.py`. The HTML
report, `keras-labs reproduce`, `results/LEDGER.md` and the README's results tables all read
these declarations and the committed `results/<lab>/<preset>.json` files; nothing is typed twice.

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
from keras_labs.files import atomic_write
from keras_labs.results.benchmarks import BENCHMARKS, benchmark_lines, load_figure
from keras_labs.seeds import REPORTS, SeedItem, table  # noqa: F401 (the ledger's vocabulary)

VERDICTS = ("beaten", "met", "below", "qualitative-shown", "not run")
# Items whose preset takes longer than this (2-core CPU minutes) are left to the user.
RUN_LIMIT_MINUTES = 20.0


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


def lookup(metrics: Any, path: str) -> Any:
    """The value at dotted `path` in `metrics` (list indexes as numbers, -1 the last), or None."""
    value = metrics
    for key in path.split("."):
        if isinstance(value, dict):
            if key not in value:
                return None
            value = value[key]
        elif isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return value


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


def format_value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "%" and isinstance(value, int | float):
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return f"{type(value).__name__} of {len(value)}"
    return str(value)


@dataclasses.dataclass(frozen=True)
class Reading:
    """Our figure for one seed item from one result, and its verdict."""

    verdict: str
    ours: str
    why: str = ""


def judge(entry: SeedItem, metrics: dict | None, results: dict | None = None,
          preset: str | None = None) -> Reading:
    """The verdict of `entry` on a run's `metrics` (None: not run).

    Numeric items: "beaten" when ours is better than the seed by more than the tolerance, "met"
    within it, "below" otherwise. Qualitative items: "qualitative-shown" when the metric holds
    (a true bool, any other present value; with `versus`, the comparison goes the stated way),
    "below" when it does not.
    """
    if metrics is None:
        return Reading("not run", "-")
    value = lookup(metrics, entry.metric)
    if value is None:
        return Reading("not run", "-", f"the run has no {entry.metric!r}")
    if entry.versus:
        other_lab, _, rest = entry.versus.partition("/")
        other_preset, _, other_metric = rest.partition(":")
        other = (results or {}).get((other_lab, other_preset))
        other_value = lookup(other["metrics"], other_metric) if other else None
        if not isinstance(other_value, int | float) or not isinstance(value, int | float):
            return Reading("not run", format_value(value, entry.unit),
                           f"needs {other_lab} {other_preset} ({other_metric})")
        holds = value > other_value if entry.direction == "higher" else value < other_value
        text = (f"{format_value(value, entry.unit)} vs {format_value(other_value, entry.unit)} "
                f"({other_lab} {other_preset})")
        return Reading("qualitative-shown" if holds else "below", text,
                       "" if holds else "the comparison goes the other way")
    if entry.qualitative:
        if value is False:
            return Reading("below", "no", "not shown by our run")
        return Reading("qualitative-shown", format_value(value, entry.unit))
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return Reading("below", format_value(value, entry.unit), "not a finite number")
    sign = 1.0 if entry.direction == "higher" else -1.0
    margin = sign * (value - float(entry.seed))
    verdict = "beaten" if margin > entry.tolerance else "met" if margin >= -entry.tolerance else "below"
    return Reading(verdict, format_value(value, entry.unit))


# --------------------------------------------------------------------------------------------
# The ledger: one row per seed item.


@dataclasses.dataclass(frozen=True)
class Row:
    entry: SeedItem
    reading: Reading
    data: str
    equal_updates: Reading | None
    command: str


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


def rows(results_dir: str | os.PathLike, chosen: list[SeedItem] | None = None) -> list[Row]:
    """The ledger's rows for `chosen` items (default: all) from the results in `results_dir`."""
    results = load_results(results_dir)
    not_run = read_not_run(results_dir)
    found = []
    for entry in chosen if chosen is not None else items():
        result = results.get((entry.lab, entry.preset))
        reading = judge(entry, result["metrics"] if result else None, results)
        if reading.verdict == "not run" and not reading.why:
            reading = dataclasses.replace(reading, why=_not_run_reason(entry, entry.preset, not_run))
        second = None
        if entry.equal_updates:
            other = results.get((entry.lab, entry.equal_updates))
            second = judge(entry, other["metrics"] if other else None, results)
            if second.verdict == "not run" and not second.why:
                second = dataclasses.replace(
                    second, why=_not_run_reason(entry, entry.equal_updates, not_run))
        found.append(Row(entry, reading, result["data_kind"] if result else "-", second,
                         command(entry.lab, entry.preset)))
    return found


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict_text(reading: Reading) -> str:
    return f"{reading.verdict} ({reading.why})" if reading.why else reading.verdict


def markdown(found: list[Row], *, with_report: bool = True) -> str:
    """A markdown table of `found` rows."""
    head = ["report"] * with_report + ["item", "what", "seed report", "ours", "data", "verdict",
                                       "reproduce"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in found:
        entry = row.entry
        seed = entry.seed_text if entry.qualitative else f"{entry.seed_text}"
        ours = row.reading.ours
        verdict = _verdict_text(row.reading)
        if row.equal_updates is not None:
            ours += f"; equal updates: {row.equal_updates.ours}"
            verdict += f"; equal updates: {_verdict_text(row.equal_updates)}"
        what = entry.description + (f" ({entry.note})" if entry.note else "")
        cells = [entry.report] * with_report + [
            f"`{entry.item}`", what, seed, ours, row.data, verdict,
            f"`keras-labs reproduce --item {entry.item}`"]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def counts(found: list[Row]) -> dict[str, int]:
    tally = dict.fromkeys(VERDICTS, 0)
    for row in found:
        tally[row.reading.verdict] += 1
    return tally


def _runs_list(results: dict) -> list[str]:
    lines = []
    for (lab, preset), result in sorted(results.items()):
        env = result.get("env", {})
        lines.append(
            f"- `{lab}` `{preset}`: {result.get('data_kind')} data, commit "
            f"{str(result.get('commit'))[:10]}{' (dirty tree)' if result.get('dirty') else ''}, "
            f"{result.get('wall_time_s', 0) / 60:.1f} min wall, load {load_figure(env, 'load_start')} -> "
            f"{load_figure(env, 'load_end')}, steal {env.get('steal_s', 0):.1f} s, {result.get('finished', '')}")
    return lines


def render(results_dir: str | os.PathLike) -> str:
    """The whole of `results/LEDGER.md`."""
    found = rows(results_dir)
    tally = counts(found)
    results = load_results(results_dir)
    summary = ", ".join(f"{count} {verdict}" for verdict, count in tally.items())
    parts = [
        "# Seed ledger",
        "",
        "Generated by `keras-labs reproduce` from `results/<lab>/<preset>.json`: do not edit by "
        "hand (`keras-labs reproduce --render` rewrites it). One row per figure, table or claim of "
        "the five seed reports in `../shared/seeds/`; the items are declared beside each lab's "
        "presets (`keras_labs/labs/<lab>/seeds.md`).",
        "",
        f"{len(found)} items: {summary}.",
        "",
        "Verdicts: **beaten** (better than the report by more than the item's tolerance), "
        "**met** (within it), **below**, **qualitative-shown** (a picture or claim of the report "
        "that our run shows, by the metric named in the item), **not run** (with why). Data: "
        "`full` is the whole dataset, `partial` the 8,152 / 1,017-image CIFAR-10 of "
        "`../shared/data` (the reports had 50,000 / 10,000). Where the data is smaller, the "
        "verdict is on the report's own recipe (its epochs); the **equal updates** reading trains "
        "for the report's number of gradient steps and has its own verdict beside it. Every lab "
        "holds out a seeded validation split of its training data for curves and selection; the "
        "test split is scored once, at the end.",
        "",
        markdown(found),
        "",
        "## Runs",
        "",
        "Each result records the commit it ran at, the resolved config, the machine, and the load "
        "average and CPU steal around the run (wall times are not benchmarks).",
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
    """Per report, how many of its items are beaten, met, below, shown and not run: the
    README's summary of the ledger."""
    found = rows(results_dir)
    columns = ("beaten", "met", "below", "qualitative-shown", "not run")
    lines = ["| report | items | " + " | ".join(columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for report, title in REPORTS.items():
        chosen = [row for row in found if row.entry.report == report]
        tally = counts(chosen)
        lines.append(f"| {title} | {len(chosen)} | "
                     + " | ".join(str(tally.get(verdict, 0)) for verdict in columns) + " |")
    tally = counts(found)
    lines.append(f"| all | {len(found)} | "
                 + " | ".join(str(tally.get(verdict, 0)) for verdict in columns) + " |")
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
