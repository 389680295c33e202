"""Hyperparameter sweeps: the product of a grid of config values, run one after the other.

    keras-labs sweep LAB --grid activation=relu,tanh --grid optimizer=adam,momentum [--preset P]

A sweep lives in one folder, `out/<lab>/sweep-<label>-<digest>/`, whose name is derived from the
lab, the base configuration and the grid, so running the same command again finds it. Each
combination runs in its own run folder inside it (a normal run folder: config.json, metrics.json,
tb/, plots/), with its SavedModel under the sweep's `saved_models/`. A run counts as finished
when its `metrics.json` exists: an interrupted sweep, run again, skips the finished runs and
redoes the one that was cut off.

Every run's TensorBoard folder holds its hyperparameters and final metrics for the HParams
dashboard (as every run's does: `runs.Run`), so `tensorboard --logdir <sweep folder>` compares
the sweep's runs and `tensorboard --logdir runs` shows them among all the others; the sweep
writes one table of train/test accuracy and loss per run, as `results.csv` and `results.md`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import os
import re
import shutil
from pathlib import Path
from types import ModuleType

from keras_labs import ConfigError, KerasLabsError, labs, run_folders
from keras_labs.config import LabConfig, apply_overrides, field_names
from keras_labs.files import atomic_write

# Reported per run, in this order; a lab's metrics.json or its history.csv supplies them.
RESULT_COLUMNS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "wall_time_s")


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """Parses repeated `--grid key=v1,v2,...` options into {key: [values]}.

    Raises:
        ConfigError: An item without `=`, without values, or a key given twice.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid expects key=value1,value2,..., got {item!r}")
        if key in grid:
            raise ConfigError(f"--grid {key!r} is given twice; list all its values in one --grid")
        parsed = [value.strip() for value in values.split(",") if value.strip()]
        if not parsed:
            raise ConfigError(f"--grid {item!r} has no values")
        grid[key] = parsed
    return grid


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """The product of the grid, in a stable order (first key varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def sweep_id(lab_name: str, base_config: LabConfig, grid: dict[str, list[str]],
             label: str | None = None) -> str:
    """The sweep's folder name: the same lab, base config and grid always give the same name."""
    essence = {key: value for key, value in base_config.to_dict().items() if key != "export_dir"}
    payload = json.dumps({"lab": lab_name, "config": essence, "grid": grid}, sort_keys=True,
                         default=str)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    slug = _slug(label) if label else ""
    return f"sweep-{slug}-{digest}" if slug else f"sweep-{digest}"


def run_name(index: int, combination: dict[str, str]) -> str:
    """A run folder name such as `03-activation-tanh_optimizer-adam`."""
    parts = "_".join(f"{key}-{value}" for key, value in combination.items())
    return f"{index:02d}-{_slug(parts)}"[:120]


def grid_configs(base_config: LabConfig, grid: dict[str, list[str]]
                 ) -> tuple[list[dict[str, str]], list[LabConfig]]:
    """The grid's combinations and their validated configs.

    Every combination is checked before anything runs (the CLI does so before TensorFlow
    loads): a typo in the last value must not surface an hour into the sweep.

    Raises:
        ConfigError: No grid, an unknown key, or a value that does not parse or validate.
    """
    if not grid:
        raise ConfigError("a sweep needs at least one --grid key=value1,value2")
    valid = field_names(type(base_config))
    for key in grid:
        if key not in valid:
            raise ConfigError(f"unknown config key {key!r} in --grid; valid keys: {', '.join(valid)}")
    combos = combinations(grid)
    return combos, [apply_overrides(base_config, combo).validate() for combo in combos]


def sweep(lab_module: ModuleType, base_config: LabConfig, grid: dict[str, list[str]],
          out_dir: str | os.PathLike, *, label: str | None = None, log=print) -> Path:
    """Runs the lab for every combination of `grid` applied to `base_config`.

    Args:
        lab_module: A lab's config module (`labs.get(name)`: NAME, Config, PRESETS).
        base_config: The configuration every run starts from (a preset with overrides).
        grid: {config field: [values as strings]}, as `--set` would take them.
        out_dir: Root of run folders; the sweep goes to `out_dir/<lab>/sweep-.../`.
        label: Readable part of the sweep folder name (the CLI passes the preset).
        log: Where progress lines go.

    Returns:
        The sweep folder (with results.csv, results.md, sweep.json and the run folders).

    Raises:
        ConfigError: An unknown key or a value that does not parse or validate (checked for all
            combinations before the first run starts).
    """
    combos, configs = grid_configs(base_config, grid)
    folder = Path(out_dir).expanduser() / lab_module.NAME / sweep_id(lab_module.NAME, base_config,
                                                                     grid, label)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise KerasLabsError(f"cannot create sweep folder {str(folder)!r}: {error.strerror}") from None
    exports = folder / "saved_models"
    manifest = {"lab": lab_module.NAME, "label": label, "grid": grid,
                "base_config": base_config.to_dict(),
                "runs": [run_name(i, combo) for i, combo in enumerate(combos)]}
    _write_json(folder / "sweep.json", manifest)

    rows = []
    for index, (combo, config) in enumerate(zip(combos, configs, strict=True)):
        name = run_name(index, combo)
        workdir = folder / name
        config = dataclasses.replace(config, export_dir=str(exports))
        if not (workdir / "metrics.json").is_file():
            if workdir.exists():
                # cut off last time: start it again from nothing (its export too)
                log(f"sweep: {name} was interrupted; running it again")
                shutil.rmtree(workdir)
                for version in run_folders.exports_of_run(exports, lab_module.NAME, name):
                    shutil.rmtree(version, ignore_errors=True)
            log(f"sweep: run {index + 1}/{len(combos)} {name} ({_describe(combo)})")
            _clear_session()
            labs.run(lab_module.NAME, config, str(workdir))
        else:
            log(f"sweep: run {index + 1}/{len(combos)} {name} finished earlier; skipped")
        results = read_results(workdir)
        rows.append({"run": name, **combo, **results})
        write_table(folder, list(grid), rows)  # after every run: a cut-off sweep shows its part

    log(f"sweep: {len(rows)} runs; table in {folder / 'results.md'}; "
        f"HParams: tensorboard --logdir {folder}")
    return folder


def read_results(workdir: Path) -> dict[str, float | None]:
    """Train/test accuracy and loss of a finished run: metrics.json, else history.csv's last row."""
    metrics = json.loads((workdir / "metrics.json").read_text())
    results = {column: metrics.get(column) for column in RESULT_COLUMNS}
    history_path = workdir / "history.csv"
    if history_path.is_file():
        with open(history_path, newline="") as handle:
            history = list(csv.DictReader(handle))
        last = history[-1] if history else {}
        fallbacks = {"train_accuracy": "accuracy", "train_loss": "loss",
                     "test_accuracy": "val_accuracy", "test_loss": "val_loss"}
        for column, key in fallbacks.items():
            if results[column] is None and last.get(key) not in (None, ""):
                results[column] = float(last[key])
    return results


def write_table(folder: Path, keys: list[str], rows: list[dict]) -> tuple[Path, Path]:
    """results.csv and results.md: one row per run, the grid values, then the results."""
    columns = ["run", *keys, *RESULT_COLUMNS]
    csv_path, md_path = folder / "results.csv", folder / "results.md"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(column), column) for column in columns)
                     + " |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


# --------------------------------------------------------------------------------------------


def _clear_session() -> None:
    import keras

    keras.backend.clear_session()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _describe(combo: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in combo.items())


def _format(value, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if column.endswith("_s") else f"{value:.4f}"
    return str(value)


def _write_json(path: Path, payload) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True, default=str))
