"""The seed ledger: every figure, table and claim of the five seed reports as data, the results
that reproduce them, and the verdicts.

Each lab module declares `SEED_ITEMS` (a list of `SeedItem`) beside its `PRESETS`, and
`PRESET_MINUTES` (the estimated 2-core CPU minutes of each preset on the real data). The HTML
report, `keras-labs reproduce`, `results/LEDGER.md` and the README's results tables all read
these declarations and the committed `results/<lab>/<preset>.json` files; nothing is typed twice.

Nothing here imports TensorFlow: `keras-labs reproduce --dry-run` answers at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from keras_labs.benchmarks import BENCHMARKS, benchmark_lines, load_figure

REPORTS = {
    "000": "report 000 (D7047E, exercises 1-5)",
    "001": "report 001 (D7047E, DeepDIVA, exercises 1-5)",
    "002": "report 002 (CIFAR template grid, deconvnet, RNNs on MNIST)",
    "003": "report 003 (minor 1: CNN and autoencoder on CIFAR-10)",
    "004": "report 004 (assignment 4: PyTorch tutorial CNN, autoencoder)",
}
VERDICTS = ("beaten", "met", "below", "qualitative-shown", "not run")
# Items whose preset takes longer than this (2-core CPU minutes) are left to the user.
RUN_LIMIT_MINUTES = 20.0


@dataclasses.dataclass(frozen=True)
class SeedItem:
    """One figure, table or claim of a seed report, and where our run measures it.

    Attributes:
        report: "000".."004".
        item: Id, unique across the ledger (e.g. "004-t1-accuracy").
        description: What the report measured or claimed, in a few words.
        seed: The report's figure as a number (accuracies as fractions), or "qualitative"
            for a picture or a claim.
        seed_text: The figure as the report states it (e.g. "~96% train vs 52.5% test").
        metric: Dotted path of our figure in the run's metrics.json
            (e.g. "results.lstm.20.test_accuracy"). For a qualitative item, the key whose
            value shows the claim (a bool that must be true, or any present value).
        preset: The lab preset that reproduces the item.
        direction: "higher" or "lower" is better; "none" compares nothing (qualitative).
        unit: "%" (fraction shown as percent) or "" (shown as is).
        tolerance: |ours - seed| within this counts as "met" (absolute, in the metric's units).
        equal_updates: A second preset that trains for as many gradient steps as the report's
            run, where our data is smaller (partial CIFAR-10); shown as a second reading.
        versus: For a claim that compares two runs ("the CNN beats the autoencoder"),
            "lab/preset:metric" of the other run; `direction` then says whether ours must be
            higher or lower than that figure for the claim to be shown.
        note: Anything the reader of the row must know (how the setting differs, and why).
        lab: Filled in by `items()`.
    """

    report: str
    item: str
    description: str
    seed: float | str
    seed_text: str
    metric: str
    preset: str
    direction: str = "higher"
    unit: str = "%"
    tolerance: float = 0.01
    equal_updates: str | None = None
    versus: str = ""
    note: str = ""
    lab: str = ""

    def __post_init__(self) -> None:
        if self.report not in REPORTS:
            raise ValueError(f"report must be one of {', '.join(REPORTS)}, got {self.report!r}")
        if self.direction not in ("higher", "lower", "none"):
            raise ValueError(f"direction must be 'higher', 'lower' or 'none', got {self.direction!r}")
        if isinstance(self.seed, str) and self.seed != "qualitative":
            raise ValueError(f"seed must be a number or 'qualitative', got {self.seed!r}")

    @property
    def qualitative(self) -> bool:
        return self.seed == "qualitative"


_OPTIONS = ("direction", "unit", "tolerance", "equal_updates", "versus")


def table(text: str, notes: dict[str, str] | None = None) -> list[SeedItem]:
    """Seed items from a Markdown table, the form the labs declare them in.

    Columns: item (its id starts with the report number), preset, metric, seed (a number, or
    `qualitative`), report's figure (as the report states it), what, options. Options are
    `key=value` pairs separated by commas (direction, unit, tolerance, equal_updates, versus);
    by default a number is better higher with the tolerance 0.01, a qualitative item compares
    nothing, and the unit is "%" when the report's figure is a percentage.

    Args:
        text: The table (a header row, a separator row, one row per item; `\\|` for a "|").
        notes: {item id: what the reader of its row must know}.

    Raises:
        ValueError: A row with the wrong number of cells, an unknown option, or a note for an
            item the table does not have.
    """
    notes = dict(notes or {})
    found = []
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines[2:]:
        cells = [cell.strip().replace("\\|", "|")
                 for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) != 7:
            raise ValueError(f"a seed table row needs 7 cells, got {len(cells)}: {line!r}")
        item, preset, metric, seed_cell, seed_text, description, option_cell = cells
        seed = "qualitative" if seed_cell == "qualitative" else float(seed_cell)
        options: dict[str, Any] = {
            "direction": "none" if seed == "qualitative" else "higher",
            "unit": "%" if "%" in seed_text and seed != "qualitative" else ""}
        for pair in filter(None, (part.strip() for part in option_cell.split(","))):
            key, _, value = pair.partition("=")
            if key not in _OPTIONS:
                raise ValueError(f"unknown seed table option {key!r} in {line!r}; valid: "
                                 f"{', '.join(_OPTIONS)}")
            options[key] = float(value) if key == "tolerance" else value
        found.append(SeedItem(report=item[:3], item=item, description=description, seed=seed,
                              seed_text=seed_text, metric=metric, preset=preset,
                              note=notes.pop(item, ""), **options))
    if notes:
        raise ValueError(f"notes for items the table does not have: {', '.join(sorted(notes))}")
    return found


# --------------------------------------------------------------------------------------------
# The declarations, gathered from the labs.


def items(report: str | None = None, lab: str | None = None, item: str | None = None
          ) -> list[SeedItem]:
    """Every lab's seed items (in tour order), optionally only one report's, lab's or item.

    Raises:
        ConfigError: An unknown report, lab or item id (the message lists the valid ones).
    """
    from keras_labs import ConfigError, labs

    if report is not None and report not in REPORTS:
        raise ConfigError(f"unknown report {report!r}; valid reports: {', '.join(REPORTS)}")
    chosen = [labs.get(lab).NAME] if lab is not None else labs.names()
    found = []
    for name in chosen:
        module = labs.get(name)
        for declared in getattr(module, "SEED_ITEMS", ()):
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
    from keras_labs import labs

    return getattr(labs.get(lab), "PRESET_MINUTES", {}).get(preset)


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
        "presets (`SEED_ITEMS`).",
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


README_BEGIN = "<!-- ledger:{lab} (generated from results/ by keras-labs reproduce; do not edit) -->"
README_END = "<!-- /ledger:{lab} -->"


def readme_block(results_dir: str | os.PathLike, lab: str) -> str:
    """The generated results table of one lab, for the README."""
    return markdown(rows(results_dir, items(lab=lab)))


def update_readme(readme: str | os.PathLike, results_dir: str | os.PathLike) -> bool:
    """Rewrites every `<!-- ledger:LAB -->` block of `readme` from the results, and the
    `<!-- ledger:benchmarks -->` block from `results/benchmarks/`; True if changed."""
    path = Path(readme)
    text = path.read_text()
    updated = text
    blocks = {lab: lambda lab=lab: readme_block(results_dir, lab)
              for lab in {entry.lab for entry in items()}}
    blocks["benchmarks"] = lambda: "\n".join(benchmark_lines(results_dir))
    for name, block in blocks.items():
        begin, end = README_BEGIN.format(lab=name), README_END.format(lab=name)
        start = updated.find(begin)
        stop = updated.find(end)
        if start < 0 or stop < start:
            continue
        updated = updated[:start + len(begin)] + "\n" + block() + "\n" + updated[stop:]
    if updated != text:
        from keras_labs.files import atomic_write

        atomic_write(path, updated)
    return updated != text


def write(results_dir: str | os.PathLike, readme: str | os.PathLike | None = None) -> Path:
    """Regenerates `results_dir/LEDGER.md` (and the README's blocks); returns the ledger's path."""
    from keras_labs.files import atomic_write

    root = Path(results_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = atomic_write(root / "LEDGER.md", render(root))
    if readme is not None and Path(readme).is_file():
        update_readme(readme, root)
    return target
