"""A/B of two settings as a user runs them: one lab preset with one field changed.

    python scripts/benchmark_ab.py [--compare precision|threads] [--lab cifar-cnn]
        [--preset tutorial] [--set batch_size=128] [--rounds 3] [--data-dir .cache/tfds]
        [--json results/benchmarks/precision-bf16-cifar-tutorial-batch128.json]

`--compare precision` runs float32 against `--mixed-precision bf16`; `--compare threads` the
old pinned `threads=1` against the automatic choice (threads=0). Each round runs
`keras-labs run LAB --preset P --set ...` end to end with each variant in a fresh process, one
after the other, the order alternating between rounds (interleaved, so a slow spell of a shared
machine falls on both), round r at seed r. The rounds give the speed (steady-state training
images/s: every epoch but the first, which traces) and, at 3 seeds, each variant's accuracy
spread. The load average before each run is recorded. A speed figure is quoted only from a
quiet machine: nothing else running.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import _machine, run_process, summarize_run  # noqa: E402

from keras_labs.results.jobs import steal_seconds  # noqa: E402

# What each comparison runs: (name, extra arguments) for the baseline, then the challenger.
COMPARISONS = {
    "precision": (("float32", ["--mixed-precision", "off"]),
                  ("bf16", ["--mixed-precision", "bf16"])),
    # threads=1 was the tutorial preset's pin before threads=0 chose from the batch size
    "threads": (("threads=1", ["--set", "threads=1"]), ("auto", [])),
}


def run_once(args: argparse.Namespace, variant: str, extra: list[str], seed: int,
             root: Path) -> dict:
    """One end-to-end run of a variant at a seed, summarized from its run folder."""
    out = root / f"{variant}-seed{seed}"
    command = [sys.executable, "-m", "keras_labs", "run", args.lab, "--preset", args.preset,
               *extra, "--seed", str(seed), "--data", "full",
               "--out", str(out), "--export-dir", str(root / "saved_models")]
    command += [part for setting in args.set for part in ("--set", setting)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    load = os.getloadavg()[0]
    code, wall_s, peak_mb = run_process(command, root / f"{variant}-seed{seed}.log")
    if code != 0:
        raise SystemExit(f"{variant} seed {seed} failed: see {root / f'{variant}-seed{seed}.log'}")
    run_dir = next((out / args.lab).iterdir())
    row = summarize_run(args.lab, args.preset, run_dir, wall_s, peak_mb)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    env = json.loads((run_dir / "env.json").read_text())
    row.update({"variant": variant, "seed": seed, "load_average_before": round(load, 2),
                "test_accuracy": metrics.get("test_accuracy"),
                "train_images_per_s": metrics.get("train_images_per_s"),
                "validation_accuracy": metrics.get("validation_accuracy"),
                "policy": env.get("strategy", {}).get("policy"),
                "threads_chosen": env.get("threads_chosen")})
    return row


def summary(rows: list[dict], variants: tuple[str, str]) -> dict:
    """Median and range of speed and accuracy per variant, and the second's speed over the
    first's, round by round."""
    result = {}
    for variant in variants:
        mine = [row for row in rows if row["variant"] == variant]
        rates = [row["examples_per_s"] for row in mine if "examples_per_s" in row]
        accuracy = [row["test_accuracy"] for row in mine if row["test_accuracy"] is not None]
        result[variant] = {
            "images_per_s_median": statistics.median(rates), "images_per_s_range": [min(rates), max(rates)],
            "wall_s_median": statistics.median(row["wall_s"] for row in mine),
            "test_accuracy_mean": round(statistics.mean(accuracy), 4),
            "test_accuracy_range": [min(accuracy), max(accuracy)], "seeds": len(mine)}
    ratios = []
    for seed in sorted({row["seed"] for row in rows}):
        pair = {row["variant"]: row for row in rows if row["seed"] == seed}
        ratios.append(round(pair[variants[1]]["examples_per_s"]
                            / pair[variants[0]]["examples_per_s"], 3))
    result["speed_ratio"] = {"per_round": ratios, "median": statistics.median(ratios)}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="precision")
    parser.add_argument("--lab", default="cifar-cnn")
    parser.add_argument("--preset", default="tutorial")
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--keep", default="runs/benchmark-ab")
    parser.add_argument("--json", help="write the rounds and their summary here")
    args = parser.parse_args()
    # No hidden default: an A/B of a preset runs the preset as it is unless --set says otherwise.
    args.set = args.set or []
    root = Path(args.keep) / time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True)
    rows, load_before, steal_start = [], round(os.getloadavg()[0], 2), steal_seconds()
    for seed in range(args.rounds):
        pairs = COMPARISONS[args.compare]
        for variant, extra in (pairs if seed % 2 == 0 else pairs[::-1]):
            rows.append(run_once(args, variant, extra, seed, root))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    machine = {**_machine(), "cpus": os.cpu_count(), "load_average_before": load_before,
               "load_average_after": round(os.getloadavg()[0], 2),
               "steal_s": round(steal_seconds() - steal_start, 1)}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    variants = tuple(name for name, _ in COMPARISONS[args.compare])
    document = {"kind": "a/b", "compare": args.compare, "variants": variants, "command": "python " + " ".join(sys.argv),
                "commit": commit.strip(), "lab": args.lab, "preset": args.preset,
                "data_kind": "partial" if "partial" in rows[0].get("data", "") else "full",
                "set": args.set, "machine": machine, "rounds": rows,
                "summary": summary(rows, variants)}
    text = json.dumps(document, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(json.dumps(document["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
