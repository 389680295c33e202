"""One self-contained HTML report over a folder of runs: for every lab, our figures next to the
seed reports' figures with a one-line verdict, the plots inline, the tables and the configs.

    keras-labs report runs --out report
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import re
from pathlib import Path
from typing import Any

from keras_labs import ConfigError, KerasLabsError, labs
from keras_labs.files import atomic_write
from keras_labs.results import ledger

RUN_NAME = re.compile(r"^\d{8}-\d{6}-(?P<preset>.+)-[0-9a-f]{4}$")
# The committed seed ledger of a clone of the project; a wheel does not carry it.
COMMITTED_RESULTS = Path(__file__).resolve().parents[2] / "results"


def run_preset(run: Path) -> str | None:
    """The preset a run folder was started with (from its `<stamp>-<preset>-<id>` name)."""
    match = RUN_NAME.match(run.name)
    return match.group("preset") if match else None


def find_runs(root: Path) -> list[Path]:
    """Run folders (holding config.json) under `root`, oldest first; hidden folders (a
    multi-worker job's non-chief scratch runs under `.workers/`) are left out."""
    found = (path.parent for path in root.rglob("config.json")
             if not any(part.startswith(".") for part in path.relative_to(root).parts))
    return sorted(found, key=lambda path: path.stat().st_mtime)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _image(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


def _format(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%" and isinstance(value, int | float):
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def seed_rows(lab: str, lab_runs: list[Path], committed: dict) -> list[tuple]:
    """(item, reading, data kind, where) per seed item of `lab`: read from the newest finished
    run of the item's own preset in `lab_runs`; else from the committed ledger (`committed`,
    results/), said so; else not run."""

    if lab not in labs.names():
        return []
    latest: dict[tuple[str, str], dict] = dict(committed)
    newest_run: dict[str, Path] = {}
    for run in lab_runs:  # oldest first, so the newest wins
        preset = run_preset(run)
        metrics = _read_json(run / "metrics.json")
        if preset and metrics:
            newest_run[preset] = run
            latest[(lab, preset)] = {"metrics": metrics}
    def read(entry, preset) -> tuple | None:
        """(reading, data kind, where) of `entry` from a run of `preset`, or None."""
        run = newest_run.get(preset)
        if run is not None:
            metrics = _read_json(run / "metrics.json")
            return (ledger.judge(entry, metrics, latest),
                    ledger.data_kind(metrics, _read_json(run / "env.json")), f"run {run.name}")
        result = committed.get((lab, preset))
        if result is not None:
            return (ledger.judge(entry, result["metrics"], latest, runs=ledger.runs_of(result)),
                    result.get("data_kind", "?"),
                    f"committed ledger (results/, commit {str(result.get('commit'))[:10]})")
        return None

    found = []
    for entry in ledger.items(lab=lab):
        main = read(entry, entry.preset) or (
            ledger.Reading("not run", "-", f"no {entry.preset!r} run here"), "-",
            ledger.command(lab, entry.preset))
        reading, kind, where = main
        if entry.equal_updates:  # the second reading of a data-limited item, beside the first
            second = read(entry, entry.equal_updates)
            if second is not None:
                extra = second[0]
                reading = ledger.Reading(
                    reading.verdict, f"{reading.ours}; equal updates: {extra.ours}",
                    "; ".join(filter(None, (reading.why, f"equal updates: {extra.verdict}"))))
                where += f"; {second[2]}"
        found.append((entry, reading, kind, where))
    return found


def verdict(found: list[tuple]) -> str:
    """One line over a lab's seed rows: how many of each verdict."""
    if not found:
        return "no seed items declared"
    tally: dict[str, int] = {}
    for _, reading, _, _ in found:
        tally[reading.verdict] = tally.get(reading.verdict, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in tally.items())


def _flat_scalars(metrics: dict, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 2:
            rows += _flat_scalars(value, f"{name}.", depth + 1)
        elif isinstance(value, int | float | str | bool) or value is None:
            rows.append((name, value))
    return rows


def build(runs_root: str | os.PathLike, out_dir: str | os.PathLike,
          results_dir: str | os.PathLike | None = None) -> Path:
    """Writes `out_dir/report.html` for every run under `runs_root`; returns its path.

    Seed rows read the runs of each item's own preset, else the committed ledger in
    `results_dir` (default: the project's `results/`). Every value the page shows is escaped
    (`html.escape`, quotes included, in text and attributes alike): folder names and the
    files in them are whatever the user or a tool wrote.

    Raises:
        ConfigError: `runs_root` does not exist or holds no run folder.
        KerasLabsError: The report cannot be written.
    """

    if results_dir is None:
        results_dir = COMMITTED_RESULTS
    committed = ledger.load_results(results_dir)
    root = Path(runs_root)
    if not root.is_dir():
        raise ConfigError(f"runs folder {str(root)!r} does not exist")
    runs = find_runs(root)
    if not runs:
        raise ConfigError(f"no run folders (with config.json) under {str(root)!r}")
    by_lab: dict[str, list[Path]] = {}
    for run in runs:
        lab = _read_json(run / "env.json").get("lab") or run.parent.name
        by_lab.setdefault(lab, []).append(run)
    sections, summary = [], []
    for lab, lab_runs in by_lab.items():
        row, section = _lab_section(lab, lab_runs, committed)
        summary.append(row)
        sections.append(section)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keras_labs report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
td, th {{ border: 1px solid #ccc; padding: .25em .6em; text-align: left; font-size: 14px; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} img {{ max-width: 560px; border: 1px solid #ddd; }}
section {{ border-top: 2px solid #888; margin-top: 2em; }} .verdict {{ background: #f4f4f0; padding: .5em; }}
</style>
<script>
// Marks how many images failed to decode, so a headless browser test can check the page.
window.addEventListener("load", () => {{
  document.body.dataset.brokenImages =
    [...document.images].filter((image) => !image.complete || image.naturalWidth === 0).length;
}});
</script></head><body>
<h1>keras_labs report</h1>
<p>Runs under <code>{html.escape(str(root.resolve()))}</code>; generated {datetime.datetime.now().isoformat(timespec='seconds')}.</p>
<table><tr><th>lab</th><th>runs</th><th>data</th><th>verdict</th></tr>{''.join(summary)}</table>
{''.join(sections)}
</body></html>
"""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        target = atomic_write(out / "report.html", page.encode("utf-8"))
    except OSError as error:
        raise KerasLabsError(f"cannot write the report to {str(out)!r}: {error.strerror}") from None
    return target


def _lab_section(lab: str, lab_runs: list[Path], committed: dict) -> tuple[str, str]:
    """(the summary table's row, the page's section) of one lab's runs. Every value from a
    run folder is escaped, attributes included: a folder's name is the user's to choose."""
    anchor = html.escape(lab, quote=True)
    latest = lab_runs[-1]
    metrics = _read_json(latest / "metrics.json")
    env = _read_json(latest / "env.json")
    kinds = {info.get("kind", "?") + (" partial" if info.get("partial") and info.get("kind") == "full" else "")
             for info in env.get("data", {}).values()} or {"?"}
    data_kind = ", ".join(sorted(kinds))
    found = seed_rows(lab, lab_runs, committed)
    line = verdict(found)
    summary = (f"<tr><td><a href='#{anchor}'>{html.escape(lab)}</a></td><td>{len(lab_runs)}</td>"
               f"<td>{html.escape(data_kind)}</td><td>{html.escape(line)}</td></tr>")
    seed_rows_html = "".join(
        f"<tr><td>{html.escape(entry.report)}</td><td>{html.escape(entry.item)}</td>"
        f"<td>{html.escape(entry.description)}</td><td>{html.escape(entry.seed_text)}</td>"
        f"<td>{html.escape(reading.ours)}</td><td>{html.escape(kind)}</td>"
        f"<td class='{html.escape(reading.verdict.split('-')[0].replace(' ', ''))}'>"
        f"{html.escape(reading.verdict + (f' ({reading.why})' if reading.why else ''))}</td>"
        f"<td>{html.escape(where)}</td></tr>"
        for entry, reading, kind, where in found)
    run_rows = "".join(
        f"<tr><td>{html.escape(run.name)}</td><td>{html.escape(str(_read_json(run / 'config.json').get('seed', '')))}</td>"
        f"<td>{_format(_read_json(run / 'metrics.json').get('test_accuracy'), '%')}</td>"
        f"<td>{_format(_read_json(run / 'metrics.json').get('wall_time_s'), '')}</td>"
        f"<td>{'FAILED' if (run / 'FAILED.txt').exists() else ('done' if (run / 'metrics.json').exists() else 'incomplete')}</td></tr>"
        for run in lab_runs)
    scalar_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_format(v, '')}</td></tr>"
                          for k, v in _flat_scalars(metrics)[:80])
    plots = "".join(_image(p) for p in sorted((latest / "plots").glob("*.png")))
    config = html.escape(json.dumps(_read_json(latest / "config.json"), indent=2))
    section = (f"""
<section id="{anchor}"><h2>{html.escape(lab)}</h2>
<p class="verdict"><b>Seed items:</b> {html.escape(line)}</p>
<p>Latest run <code>{html.escape(str(latest))}</code>, data: {html.escape(data_kind)}.</p>
<h3>Seed ledger: the reports vs ours</h3>
<table><tr><th>report</th><th>item</th><th>what</th><th>seed report</th><th>ours</th><th>data</th><th>verdict</th><th>from</th></tr>{seed_rows_html}</table>
<h3>Runs</h3>
<table><tr><th>run</th><th>seed</th><th>test accuracy</th><th>wall time (s)</th><th>status</th></tr>{run_rows}</table>
<h3>Metrics (latest run)</h3><table>{scalar_rows}</table>
<h3>Plots</h3><div class="plots">{plots or '<p>none</p>'}</div>
<details><summary>config.json</summary><pre>{config}</pre></details>
</section>""")
    return summary, section
