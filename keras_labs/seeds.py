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
}
SEEDS_FILE = "seeds.md"
_OPTIONS = ("direction", "unit", "tolerance", "equal_updates", "versus")
_ITEM_COLUMNS = ("item", "preset", "metric", "seed", "report's figure", "what", "options", "note")


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
        lab: The lab whose folder declares the item (filled in by `read`).
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


@dataclasses.dataclass(frozen=True)
class LabSeeds:
    """What one lab folder's `seeds.md` declares."""

    items: tuple[SeedItem, ...]
    minutes: dict[str, float]

    def figure(self, metric: str) -> SeedItem | None:
        """The (numeric) item whose metric path is `metric`, if the lab declares one."""
        return next((item for item in self.items
                     if item.metric == metric and not item.qualitative), None)


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("\\|", "|")
            for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in `text`, as rows of cells, header and separator dropped."""
    tables, current = [], None
    for line in text.splitlines():
        if line.strip().startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append(line)
        else:
            current = None
    return [[_cells(row) for row in rows[2:]] for rows in tables]


def table(text: str, notes: dict[str, str] | None = None, lab: str = "") -> list[SeedItem]:
    """Seed items from a Markdown table.

    Columns: item (its id starts with the report number), preset, metric, seed (a number, or
    `qualitative`), report's figure (as the report states it), what, options and, optionally,
    note. Options are `key=value` pairs separated by commas (direction, unit, tolerance,
    equal_updates, versus); by default a number is better higher with the tolerance 0.01, a
    qualitative item compares nothing, and the unit is "%" when the report's figure is a
    percentage.

    Args:
        text: The table (a header row, a separator row, one row per item; `\\|` for a "|").
        notes: {item id: what the reader of its row must know}, for tables without a note column.
        lab: The lab the items belong to.

    Raises:
        ValueError: A row with the wrong number of cells, an unknown option, or a note for an
            item the table does not have.
    """
    notes = dict(notes or {})
    found = [_item(cells, notes, lab) for cells in (_tables(text) or [[]])[0]]
    if notes:
        raise ValueError(f"notes for items the table does not have: {', '.join(sorted(notes))}")
    return found


def _item(cells: list[str], notes: dict[str, str], lab: str) -> SeedItem:
    if len(cells) not in (7, 8):
        raise ValueError(f"a seed table row needs 7 or 8 cells, got {len(cells)}: {cells!r}")
    item, preset, metric, seed_cell, seed_text, description, option_cell = cells[:7]
    note = cells[7] if len(cells) == 8 else notes.pop(item, "")
    seed = "qualitative" if seed_cell == "qualitative" else float(seed_cell)
    options: dict[str, Any] = {
        "direction": "none" if seed == "qualitative" else "higher",
        "unit": "%" if "%" in seed_text and seed != "qualitative" else ""}
    for pair in filter(None, (part.strip() for part in option_cell.split(","))):
        key, _, value = pair.partition("=")
        if key not in _OPTIONS:
            raise ValueError(f"unknown seed table option {key!r} in the row of {item!r}; valid: "
                             f"{', '.join(_OPTIONS)}")
        options[key] = float(value) if key == "tolerance" else value
    return SeedItem(report=item[:3], item=item, description=description, seed=seed,
                    seed_text=seed_text, metric=metric, preset=preset, note=note, lab=lab,
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
        rows = (_tables(minutes_part) or [[]])[0]
        minutes = {preset: float(value) for preset, value in rows}
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return LabSeeds(items=tuple(items), minutes=minutes)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


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
        options = []
        if item.direction != ("none" if item.qualitative else "higher"):
            options.append(f"direction={item.direction}")
        default_unit = "%" if "%" in item.seed_text and not item.qualitative else ""
        if item.unit != default_unit:
            options.append(f"unit={item.unit}")
        if item.tolerance != 0.01:
            options.append(f"tolerance={item.tolerance:g}")
        if item.equal_updates:
            options.append(f"equal_updates={item.equal_updates}")
        if item.versus:
            options.append(f"versus={item.versus}")
        seed = "qualitative" if item.qualitative else f"{item.seed:g}"
        cells = [item.item, item.preset, item.metric, seed, item.seed_text, item.description,
                 ", ".join(options), item.note]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", "## Preset minutes", "",
              "Estimated minutes of each preset on the 2-core CPU with the real data, start-up "
              "and evaluation included.", "", "| preset | minutes |", "|---|---|"]
    lines += [f"| {preset} | {value:g} |" for preset, value in minutes.items()]
    return "\n".join(lines) + "\n"
