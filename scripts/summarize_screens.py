"""One-seed screens of a preset's ingredients, summarized from their run folders.

    python scripts/summarize_screens.py LAB BASE_PRESET RUN_ROOT [RUN_ROOT ...]
        --json results/benchmarks/screens-LAB-fast.json [--chosen RUN_ROOT]

Each RUN_ROOT holds one finished run (`keras-labs run LAB --preset BASE --set ...`, as
`--out`). For each: the config fields that differ from BASE, the validation figures (the
only ones a choice may rest on: the test split's figures are left out), the steps or epochs,
the training and wall seconds, and the commit it ran; the document records the commit it was
summarized at and the data kind (full or partial), as every benchmark file does. The
ledger's benchmarks section renders the document (`results.benchmarks`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from keras_labs import labs

# The figures a screen may be judged on, per lab: validation only.
# cifar-cnn's scored and per-view figures are those of runs whose code records them.
VALIDATION = {"cifar-cnn": ("validation_accuracy", "validation_loss", "validation_accuracy_scored",
                            "validation_accuracy_by_view"),
              "char-rnn": ("validation_loss", "validation_loss_windowed")}


def screen(lab: str, base: dict, root: Path) -> dict:
    """The summary of the one run under `root`."""
    (run_dir,) = [path.parent for path in root.rglob("metrics.json")]
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    env = json.loads((run_dir / "env.json").read_text())
    # compared as JSON: config.json has lists where the preset has tuples
    changed = {key: value for key, value in config.items()
               if key not in ("data_dir", "export_dir", "data")
               and json.dumps(base.get(key)) != json.dumps(value)}
    training_s = metrics.get("train_time_s") or sum(metrics.get("epoch_time_s") or []) or None
    return {"label": root.name, "changed": changed,
            "validation": {key: metrics[key] for key in VALIDATION[lab] if key in metrics},
            "steps": metrics.get("steps"), "epochs": metrics.get("epochs_run"),
            "training_s": training_s,
            "wall_s": metrics.get("wall_time_s"), "policy": env.get("strategy", {}).get("policy"),
            "commit": env.get("git", {}).get("commit"), "dirty": env.get("git", {}).get("dirty"),
            "data": {name: "partial" if source.get("partial") else source.get("kind")
                     for name, source in env.get("data", {}).items()},
            "cpus": env.get("cpu_count")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lab", choices=sorted(VALIDATION))
    parser.add_argument("base")
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--chosen", help="the label of the screen the preset took")
    args = parser.parse_args(argv)
    base = labs.resolve_config(labs.get(args.lab), args.base, None, data="full").to_dict()
    screens = [screen(args.lab, base, root) for root in args.roots]
    kinds = {kind for entry in screens for kind in entry["data"].values()}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    document = {"kind": "screens", "lab": args.lab, "base": args.base, "chosen": args.chosen,
                "command": " ".join(["python", *sys.argv]), "commit": commit,
                "data_kind": kinds.pop() if len(kinds) == 1 else "mixed", "screens": screens}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
