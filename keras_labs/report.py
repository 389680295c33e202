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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_labs import KerasLabsError
from keras_labs.files import atomic_write


@dataclass(frozen=True)
class SeedFigure:
    """A number from a seed report and where our comparable number is in metrics.json."""

    label: str
    seed: str  # the report's figure, as the report states it
    ours: Callable[[dict], Any]  # metrics -> our figure (None when the run has none)
    target: Callable[[Any], bool] | None = None  # our figure -> does it meet the bar?
    unit: str = ""


def _get(*keys):
    def read(metrics):
        value = metrics
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value
    return read


def _percent(value):
    return f"{100 * value:.2f}%" if isinstance(value, int | float) else "n/a"


SEED_FIGURES: dict[str, list[SeedFigure]] = {
    "mnist-cnn": [SeedFigure("test accuracy (report 000, ex. 2)", "95%", _get("test_accuracy"),
                             lambda v: v >= 0.95, "%")],
    "cifar-cnn": [SeedFigure("test accuracy (report 004 tutorial: 54%; report 001: 23.11 / 60.45 / "
                             "52.94%; report 003: 82%; report 002: ~52-58%)", "54%",
                             _get("test_accuracy"), lambda v: v >= 0.54, "%")],
    "transfer": [
        SeedFigure("from scratch (report 000, ImageNet AlexNet on CIFAR-10)", "67%",
                   _get("scratch", "accuracy"), None, "%"),
        SeedFigure("fine-tuning", "62%", _get("fine_tune", "accuracy"), None, "%"),
        SeedFigure("feature extraction", "83%", _get("feature_extraction", "accuracy"), None, "%"),
    ],
    "embeddings": [SeedFigure("trained vs untrained (reports 000/001 showed pictures only)",
                              "clusters appear after training", _get("silhouette_trained_tsne"),
                              None)],
    "char-rnn": [SeedFigure("loss in nats/char (report 001 logged ~1.35 train loss after 2000 "
                            "iterations)", "1.35", _get("validation_loss"), lambda v: v <= 1.45)],
    "word-rnn": [SeedFigure("word perplexity (report 000, task 4: a curve only)", "curve",
                            _get("perplexity"), None)],
    "mnist-rnn": [SeedFigure("LSTM-20 test accuracy (report 002: ~95%)", "95%",
                             _get("results", "lstm", "20", "test_accuracy"), lambda v: v >= 0.95, "%")],
    "gan": [SeedFigure("largest class share (report 001: minimax collapsed to 1s)",
                       "mode collapse", _get("largest_class_share"), lambda v: v <= 0.2, "%")],
    "adversarial": [
        SeedFigure("noise -> 9 confidence (report 001)", "99%", _get("noise", "confidence"),
                   lambda v: v >= 0.99, "%"),
        SeedFigure("zeros -> 9 confidence (report 001)", "59%", _get("zeros", "confidence"),
                   lambda v: v >= 0.99, "%"),
    ],
    "deconvnet": [SeedFigure("projections of conv 1 and 2 (report 002: pictures only)",
                             "figures", lambda m: len(m.get("figures", [])) or None, None)],
    "autoencoder": [SeedFigure("test accuracy of the classification head (report 004)", "56.15%",
                               _get("test_accuracy"), lambda v: v >= 0.5615, "%")],
}


def find_runs(root: Path) -> list[Path]:
    """Run folders (holding config.json) under `root`, oldest first."""
    return sorted((path.parent for path in root.rglob("config.json")),
                  key=lambda path: path.stat().st_mtime)


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
        return "n/a"
    if unit == "%" and isinstance(value, int | float):
        return _percent(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def verdict(lab: str, metrics: dict, data_kind: str) -> str:
    """One line: how the run compares with the seed report."""
    figures = SEED_FIGURES.get(lab, [])
    if not metrics:
        return "no metrics: the run did not finish"
    parts = []
    for figure in figures:
        ours = figure.ours(metrics)
        if ours is None:
            continue
        text = f"{_format(ours, figure.unit)} vs {figure.seed}"
        if figure.target is not None and isinstance(ours, int | float):
            text += " (meets the bar)" if figure.target(ours) else " (below the bar)"
        parts.append(text)
    line = "; ".join(parts) or "ran; no figure comparable with the seed report"
    if data_kind != "full":
        line += f" [on {data_kind} data: not comparable with full-data figures]"
    return line


def _flat_scalars(metrics: dict, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 2:
            rows += _flat_scalars(value, f"{name}.", depth + 1)
        elif isinstance(value, int | float | str | bool) or value is None:
            rows.append((name, value))
    return rows


def build(runs_root: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Writes `out_dir/report.html` for every run under `runs_root`; returns its path."""
    root = Path(runs_root)
    if not root.is_dir():
        raise KerasLabsError(f"runs folder {str(root)!r} does not exist")
    runs = find_runs(root)
    if not runs:
        raise KerasLabsError(f"no run folders (with config.json) under {str(root)!r}")
    by_lab: dict[str, list[Path]] = {}
    for run in runs:
        lab = _read_json(run / "env.json").get("lab") or run.parent.name
        by_lab.setdefault(lab, []).append(run)
    sections, summary = [], []
    for lab, lab_runs in by_lab.items():
        latest = lab_runs[-1]
        metrics = _read_json(latest / "metrics.json")
        env = _read_json(latest / "env.json")
        kinds = {info.get("kind", "?") + (" partial" if info.get("partial") and info.get("kind") == "full" else "")
                 for info in env.get("data", {}).values()} or {"?"}
        data_kind = ", ".join(sorted(kinds))
        line = verdict(lab, metrics, "full" if all(k.startswith("full") for k in kinds) else data_kind)
        summary.append(f"<tr><td><a href='#{lab}'>{html.escape(lab)}</a></td><td>{len(lab_runs)}</td>"
                       f"<td>{html.escape(data_kind)}</td><td>{html.escape(line)}</td></tr>")
        seed_rows = "".join(
            f"<tr><td>{html.escape(f.label)}</td><td>{html.escape(f.seed)}</td>"
            f"<td>{_format(f.ours(metrics), f.unit)}</td></tr>" for f in SEED_FIGURES.get(lab, []))
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
        sections.append(f"""
<section id="{lab}"><h2>{html.escape(lab)}</h2>
<p class="verdict"><b>Verdict:</b> {html.escape(line)}</p>
<p>Latest run <code>{html.escape(str(latest))}</code>, data: {html.escape(data_kind)}.</p>
<h3>Seed reports vs ours</h3>
<table><tr><th>figure</th><th>seed report</th><th>ours</th></tr>{seed_rows}</table>
<h3>Runs</h3>
<table><tr><th>run</th><th>seed</th><th>test accuracy</th><th>wall time (s)</th><th>status</th></tr>{run_rows}</table>
<h3>Metrics (latest run)</h3><table>{scalar_rows}</table>
<h3>Plots</h3><div class="plots">{plots or '<p>none</p>'}</div>
<details><summary>config.json</summary><pre>{config}</pre></details>
</section>""")
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
