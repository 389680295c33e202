"""The seed reports' figures and claims as data: each lab folder's `seeds.md`, parsed.

A lab keeps the items of the seed reports its presets measure, and its presets' estimated
minutes on the 2-core CPU, in `keras_labs/labs/<lab>/seeds.md`: two Markdown tables a reader
can edit and a reviewer can diff. The results layer (`keras_labs.results.ledger`) judges them
against the committed results; a lab that prints a comparison of its own reads them here.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

REPORTS = {
    "000": "report 000 (D7047E, exercises 1-5)",
    "001": "report 001 (D7047E, DeepDIVA, exercises 1-5)",
    "002": "report 002 (CIFAR template grid, deconvnet, RNNs on MNIST)",
    "003": "report 003 (minor 1: CNN and autoencoder on CIFAR-10)",
    "004": "report 004 (assignment 4: PyTorch tutorial CNN, autoencoder)",
    # Not a report: how far the 2-core CPU gets, against published anchors (item ids "rec-...").
    "rec": "records beyond the reports (2-core CPU, against published anchors)",
}
SEEDS_FILE = "seeds.md"
_OPTIONS = ("direction", "unit", "tolerance", "equal_updates", "versus", "test_examples",
            "distance", "scale", "attempts")
DIRECTIONS = ("higher", "lower", "match", "none")
DISTANCES = ("max", "mean")
# A seed cell: a number, "qualitative" (a claim: a condition, a comparison or a bool says when it
# holds), "picture" (a figure to look at, no claim) or a series "[2.246, 1.935, ...]".
QUALITATIVE, PICTURE = "qualitative", "picture"
_REQUIRED = ("item", "preset", "metric", "seed", "report's figure", "what", "options")
_ITEM_COLUMNS = ("item", "preset", "metric", "seed", "report's figure", "what", "condition",
                 "options", "assumed", "note")


@dataclasses.dataclass(frozen=True)
class SeedItem:
    """One figure, table or claim of a seed report, and where our run measures it.

    Attributes:
        report: "000".."004", or "rec" for a record beyond the reports.
        item: Id, unique across the ledger (e.g. "004-t1-accuracy").
        description: What the report measured or claimed, in a few words.
        seed: The report's figure as a number (accuracies as fractions); a series of numbers
            (a curve or table the report printed, compared point by point); "qualitative" for
            a claim; or "picture" for a figure to look at, which claims nothing and counts as
            shown nowhere.
        seed_text: The figure as the report states it (e.g. "~96% train vs 52.5% test").
        metric: Dotted path of our figure in the run's metrics.json
            (e.g. "results.lstm.20.test_accuracy"; `running_loss.*.loss` for a series). For a
            claim, the lab's own bool for it (when it records one) or the figure the claim is
            about; `condition` says when it holds.
        preset: The lab preset that reproduces the item.
        direction: "higher" or "lower" is better; "match" (a figure that is neither better nor
            worse when it differs, such as a training loss: met within the tolerance, below
            outside it); "none" compares nothing (a claim or a picture).
        unit: "%" (fraction shown as percent) or "" (shown as is).
        tolerance: |ours - seed| within this counts as "met" (absolute, in the metric's units);
            never smaller than the test set's binomial 95% half-width (`test_examples`). For a
            series, the largest allowed `distance` between the two.
        equal_updates: A second preset that trains for as many gradient steps as the report's
            run, where our data is smaller (partial CIFAR-10); shown as a second reading.
        versus: For a claim that compares two runs ("the CNN beats the autoencoder"),
            "lab/preset:metric" of the other run; `direction` then says whether ours must be
            higher or lower than that figure for the claim to be shown.
        condition: For a claim, the measurable condition under which it holds, over the run's
            metrics (`keras_labs.results.conditions`: "fall(losses.validation) >= 0.1 and
            validation_accuracy >= 0.2"); an untrained or broken run must fail it.
        test_examples: For an accuracy, the number of test examples it was scored on, or the
            dotted path of that number in the metrics (default: the metrics' `test_examples`).
        distance: For a series, how the two are compared: "max" (the largest absolute
            difference of a point) or "mean" (the mean absolute difference).
        scale: Ours is multiplied by this before it is compared (a figure in other units).
        attempts: For a claim our run does not show, the ids of other items ("+" between them)
            that try it again in a setting nearer the report's, each with its own preset and
            condition; the row names every attempt with its figure, and says "not reproduced"
            when none shows it.
        assumed: The settings of our run that the report does not state: config fields of the
            preset (shown with their values) or words, separated by commas.
        note: Anything the reader of the row must know (how the setting differs, and why).
        lab: The lab whose folder declares the item (filled in by `read`).
    """

    report: str
    item: str
    description: str
    seed: float | str | tuple[float, ...]
    seed_text: str
    metric: str
    preset: str
    direction: str = "higher"
    unit: str = "%"
    tolerance: float = 0.01
    equal_updates: str | None = None
    versus: str = ""
    condition: str = ""
    test_examples: str = ""
    distance: str = "max"
    scale: float = 1.0
    attempts: str = ""
    assumed: str = ""
    note: str = ""
    lab: str = ""

    def __post_init__(self) -> None:
        if self.report not in REPORTS:
            raise ValueError(f"report must be one of {', '.join(REPORTS)}, got {self.report!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r} is not valid; valid: "
                             f"{', '.join(DIRECTIONS)}")
        if isinstance(self.seed, str) and self.seed not in (QUALITATIVE, PICTURE):
            raise ValueError(f"seed must be a number, a series, 'qualitative' or 'picture', "
                             f"got {self.seed!r}")
        if self.distance not in DISTANCES:
            raise ValueError(f"distance={self.distance!r} is not valid; valid: "
                             f"{', '.join(DISTANCES)}")
        if self.condition and not self.qualitative:
            raise ValueError(f"{self.item}: a condition belongs to a 'qualitative' item, not to "
                             f"seed={self.seed!r}")

    @property
    def qualitative(self) -> bool:
        """A claim or a picture: no figure of the report to compare ours with."""
        return self.seed in (QUALITATIVE, PICTURE)

    @property
    def picture(self) -> bool:
        return self.seed == PICTURE

    @property
    def series(self) -> bool:
        return isinstance(self.seed, tuple)


@dataclasses.dataclass(frozen=True)
class LabSeeds:
    """What one lab folder's `seeds.md` declares."""

    items: tuple[SeedItem, ...]
    minutes: dict[str, float]

    def figure(self, metric: str) -> SeedItem | None:
        """The (single-number) item whose metric path is `metric`, if the lab declares one."""
        return next((item for item in self.items
                     if item.metric == metric and isinstance(item.seed, float)), None)


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("\\|", "|")
            for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in `text`, as rows of cells: the header first, the separator
    dropped."""
    tables, current = [], None
    for line in text.splitlines():
        if line.strip().startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append(line)
        else:
            current = None
    return [[_cells(row) for row in rows[:1] + rows[2:]] for rows in tables]


def table(text: str, notes: dict[str, str] | None = None, lab: str = "") -> list[SeedItem]:
    """Seed items from a Markdown table.

    The header names the columns: item (its id starts with the report number), preset, metric,
    seed (a number, a series `[a, b, ...]`, `qualitative` or `picture`), report's figure (as
    the report states it), what and options; optionally condition, assumed and note, in any
    order. Options are `key=value` pairs separated by commas (direction, unit, tolerance,
    equal_updates, versus, test_examples, distance, scale); by default a number is better
    higher with the tolerance 0.01, a series must match, a qualitative item compares nothing,
    and the unit is "%" when the report's figure is a percentage.

    Args:
        text: The table (a header row, a separator row, one row per item; `\\|` for a "|").
        notes: {item id: what the reader of its row must know}, for tables without a note column.
        lab: The lab the items belong to.

    Raises:
        ValueError: A header without the required columns, a row with another number of
            cells than the header, an unknown option, or a note for an item the table does not
            have.
    """
    notes = dict(notes or {})
    rows = (_tables(text) or [[]])[0]
    header = rows[0] if rows else list(_REQUIRED)
    unknown = [name for name in header if name not in _ITEM_COLUMNS]
    missing = [name for name in _REQUIRED if name not in header]
    if unknown or missing:
        raise ValueError(f"a seed table's header needs the columns {', '.join(_REQUIRED)} (and "
                         f"may have condition, assumed, note); unknown: {unknown}, "
                         f"missing: {missing}")
    found = []
    for cells in rows[1:]:
        if len(cells) != len(header):
            raise ValueError(f"a seed table row needs {len(header)} cells (as its header), got "
                             f"{len(cells)}: {cells!r}")
        found.append(_item(dict(zip(header, cells, strict=True)), notes, lab))
    if notes:
        raise ValueError(f"notes for items the table does not have: {', '.join(sorted(notes))}")
    return found


def _seed(cell: str) -> float | str | tuple[float, ...]:
    if cell in (QUALITATIVE, PICTURE):
        return cell
    if cell.startswith("[") and cell.endswith("]"):
        return tuple(float(value) for value in cell[1:-1].split(","))
    return float(cell)


def _item(cells: dict[str, str], notes: dict[str, str], lab: str) -> SeedItem:
    item = cells["item"]
    note = cells.get("note") or notes.pop(item, "")
    seed = _seed(cells["seed"])
    qualitative = seed in (QUALITATIVE, PICTURE)
    options: dict[str, Any] = {
        "direction": "none" if qualitative else "match" if isinstance(seed, tuple) else "higher",
        "unit": "%" if "%" in cells["report's figure"] and not qualitative else ""}
    for pair in filter(None, (part.strip() for part in cells["options"].split(","))):
        key, _, value = pair.partition("=")
        if key not in _OPTIONS:
            raise ValueError(f"unknown seed table option {key!r} in the row of {item!r}; valid: "
                             f"{', '.join(_OPTIONS)}")
        options[key] = float(value) if key in ("tolerance", "scale") else value
    return SeedItem(report=item[:3], item=item, description=cells["what"], seed=seed,
                    seed_text=cells["report's figure"], metric=cells["metric"],
                    preset=cells["preset"], note=note, lab=lab,
                    condition=cells.get("condition", ""), assumed=cells.get("assumed", ""),
                    **options)


def read(path: str | Path, lab: str = "") -> LabSeeds:
    """Parses a lab's `seeds.md`: the table before "## Preset minutes" holds the items, the
    one after it each preset's minutes.

    Raises:
        ValueError: A malformed row (the message names the file).
    """
    path = Path(path)
    items_part, _, minutes_part = path.read_text(encoding="utf-8").partition("## Preset minutes")
    try:
        items = table(items_part, lab=lab)
        rows = (_tables(minutes_part) or [[]])[0][1:]
        minutes = {preset: float(value) for preset, value in rows}
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return LabSeeds(items=tuple(items), minutes=minutes)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _seed_cell(item: SeedItem) -> str:
    if item.series:
        return "[" + ", ".join(f"{value:g}" for value in item.seed) + "]"
    return item.seed if item.qualitative else f"{item.seed:g}"


def _option_cell(item: SeedItem) -> str:
    options = []
    default_direction = "none" if item.qualitative else "match" if item.series else "higher"
    if item.direction != default_direction:
        options.append(f"direction={item.direction}")
    default_unit = "%" if "%" in item.seed_text and not item.qualitative else ""
    if item.unit != default_unit:
        options.append(f"unit={item.unit}")
    if item.tolerance != 0.01:
        options.append(f"tolerance={item.tolerance:g}")
    if item.distance != "max":
        options.append(f"distance={item.distance}")
    if item.scale != 1.0:
        options.append(f"scale={item.scale:g}")
    options += [f"{key}={getattr(item, key)}" for key in ("equal_updates", "versus",
                                                           "test_examples", "attempts")
                if getattr(item, key)]
    return ", ".join(options)


def write_text(lab: str, items: list[SeedItem], minutes: dict[str, float], intro: str = "") -> str:
    """The `seeds.md` text declaring `items` and `minutes` (the inverse of `read`)."""
    lines = [f"# {lab}: seed items", "",
             intro or ("The figures and claims of the seed reports that this lab's presets "
                       "measure, and each preset's estimated minutes on the 2-core CPU. The "
                       "ledger (`keras-labs report`, `results/LEDGER.md`) reads this file; "
                       "`keras_labs/seeds.py` says what each column means."), "",
             "| " + " | ".join(_ITEM_COLUMNS) + " |",
             "|" + "---|" * len(_ITEM_COLUMNS)]
    for item in items:
        cells = [item.item, item.preset, item.metric, _seed_cell(item), item.seed_text,
                 item.description, item.condition, _option_cell(item), item.assumed, item.note]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", "## Preset minutes", "",
              "Estimated minutes of each preset on the 2-core CPU with the real data, start-up "
              "and evaluation included.", "", "| preset | minutes |", "|---|---|"]
    lines += [f"| {preset} | {value:g} |" for preset, value in minutes.items()]
    return "\n".join(lines) + "\n"
