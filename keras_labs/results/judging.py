"""The seed ledger's verdicts: one seed item judged on one result (one run, or several seeds).

* A number: our mean over the seeds and its 95% interval, against the report's figure and the
  item's tolerance. "beaten" when the interval's lower end clears seed + tolerance (its upper
  end, for a figure better lower), "below" when its upper end misses seed - tolerance, "met"
  otherwise. For an accuracy the tolerance is never smaller than the binomial 95% half-width of
  the test set, 1.96 sqrt(p (1 - p) / n_test), and the interval is at least that wide: one run
  is one draw, scored on one finite test set. Over several seeds the interval adds the seeds'
  spread (Student's t on their standard deviation), in quadrature with the binomial part.
  A figure that is neither better nor worse when it differs (a training loss: `direction=match`)
  is "met" within the tolerance and "below" outside it, never "beaten".
* A series (a curve or table the report printed): compared point by point, "met" when the
  largest (or mean) absolute difference is within the tolerance, else "below".
* A claim: "shown" when its condition (`keras_labs.results.conditions`), its comparison with
  another run (`versus`) or its bool holds on every seed, else "not shown".
* A picture: a figure to look at; it claims nothing and is never counted as shown.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

from keras_labs.results import conditions
from keras_labs.seeds import SeedItem

BEATEN, MET, BELOW, SHOWN, NOT_SHOWN, PICTURE, NOT_RUN = (
    "beaten", "met", "below", "shown", "not shown", "picture", "not run")
VERDICTS = (BEATEN, MET, BELOW, SHOWN, NOT_SHOWN, PICTURE, NOT_RUN)
Z95 = 1.96
# Student's t, two-sided 95%, by degrees of freedom (more than 10: the normal's 1.96 is close).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228}


@dataclasses.dataclass(frozen=True)
class Reading:
    """Our figure for one seed item from one result, and its verdict.

    Attributes:
        verdict: One of `VERDICTS`.
        ours: Our figure as shown in the ledger.
        why: What the reader of the verdict must know (the interval, the failed condition...).
        points: For a series, (the report's points, ours) as compared.
    """

    verdict: str
    ours: str
    why: str = ""
    points: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def lookup(metrics: Any, path: str) -> Any:
    """The value at dotted `path` in `metrics` (list indexes as numbers, -1 the last, `*` every
    element, `a:b` a slice), or None."""
    try:
        return conditions.read_path(metrics, path)
    except conditions.Missing:
        return None


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


def spread_text(value: float, unit: str) -> str:
    """A difference or half-width in the figure's units ("3.07 points" for a percentage)."""
    return f"{100 * value:.2f} points" if unit == "%" else f"{value:.3g}"


def binomial_half_width(p: float, examples: int | None) -> float:
    """The binomial 95% half-width of an accuracy `p` scored on `examples` test examples."""
    if not examples or not 0.0 <= p <= 1.0:
        return 0.0
    return Z95 * math.sqrt(p * (1.0 - p) / examples)


def test_examples(entry: SeedItem, metrics: dict) -> int | None:
    """How many test examples the item's accuracy was scored on: the item's `test_examples`
    (a number, or a path in the metrics), else the metrics' `test_examples` beside the figure
    or at the top; None for a figure that is not a test accuracy."""
    if entry.test_examples:
        declared = entry.test_examples
        value = float(declared) if declared.replace(".", "", 1).isdigit() else lookup(metrics, declared)
    elif entry.metric.rsplit(".", 1)[-1] == "test_accuracy":
        parent = entry.metric.rpartition(".")[0]
        value = lookup(metrics, f"{parent}.test_examples" if parent else "test_examples")
        value = value if value is not None else lookup(metrics, "test_examples")
    else:
        return None
    return int(value) if isinstance(value, int | float) and value > 0 else None


def t95(runs: int) -> float:
    """Student's t for a 95% interval of the mean of `runs` values."""
    return _T95.get(runs - 1, Z95)


def judge(entry: SeedItem, metrics: dict | None, results: dict | None = None,
          preset: str | None = None, *, runs: list[dict] | None = None) -> Reading:
    """The verdict of `entry` on a result.

    Args:
        entry: The seed item.
        metrics: The run's metrics.json (the first seed's, for several); None: not run.
        results: {(lab, preset): committed result}, for items that read another run.
        preset: Unused; kept for callers that name the preset they judge.
        runs: Every seed's metrics, when the result holds several (default: `[metrics]`).
    """
    del preset
    if metrics is None:
        return Reading(NOT_RUN, "-")
    runs = runs or [metrics]
    if entry.picture:
        return Reading(PICTURE, format_value(lookup(metrics, entry.metric), entry.unit),
                       "a figure to look at, no claim")
    if entry.qualitative:
        return _claim(entry, runs, results or {})
    if entry.series:
        return _series(entry, runs)
    return _number(entry, runs)


def _number(entry: SeedItem, runs: list[dict]) -> Reading:
    values = [lookup(metrics, entry.metric) for metrics in runs]
    if any(value is None for value in values):
        return Reading(NOT_RUN, "-", f"the run has no {entry.metric!r}")
    if not all(isinstance(value, int | float) and not isinstance(value, bool)
               and math.isfinite(value) for value in values):
        return Reading(BELOW, format_value(values[0], entry.unit), "not a finite number")
    values = [float(value) * entry.scale for value in values]
    mean = math.fsum(values) / len(values)
    examples = test_examples(entry, runs[0])
    seed = float(entry.seed)
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    half = math.hypot(binomial_half_width(mean, examples),
                      t95(len(values)) * deviation / math.sqrt(len(values)))
    tolerance = max(entry.tolerance, binomial_half_width(seed, examples))
    ours = format_value(mean, entry.unit)
    if len(values) > 1:
        ours += f" ± {spread_text(deviation, entry.unit).removesuffix(' points')} (n={len(values)})"
    shown = (f"interval {format_value(mean - half, entry.unit)} to "
             f"{format_value(mean + half, entry.unit)}" if half else "")
    against = f"{format_value(seed, entry.unit)}, tolerance {spread_text(tolerance, entry.unit)}"
    if entry.direction == "match":
        verdict = MET if abs(mean - seed) <= tolerance + half else BELOW
        return Reading(verdict, ours, f"{shown + '; ' if shown else ''}report "
                       f"{against}{'' if verdict == MET else ': not reproduced'}")
    sign = 1.0 if entry.direction == "higher" else -1.0
    low, high = sorted((sign * (mean - half), sign * (mean + half)))
    if low > sign * seed + tolerance:
        verdict = BEATEN
    elif high < sign * seed - tolerance:
        verdict = BELOW
    else:
        verdict = MET
    return Reading(verdict, ours, f"{shown} vs {against}" if shown else f"vs {against}")


NOISE_SEEDS = 3
NOISE_STANDARD_ERRORS = 3.0
SMALL_TEST_SET = 1_000


def within_noise(entry: SeedItem, runs: list[dict]) -> bool:
    """Whether a number row rests on fewer than `NOISE_SEEDS` seeds where one draw's noise could
    carry it across the report's figure: its margin to the seed under three binomial standard
    errors, or a test set under 1,000 examples. Such a row needs more seeds before its verdict
    says anything (`keras-labs reproduce --noisy`)."""
    if entry.qualitative or entry.series or entry.picture or len(runs) >= NOISE_SEEDS:
        return False
    values = [lookup(metrics, entry.metric) for metrics in runs]
    if not values or not all(isinstance(value, int | float) and not isinstance(value, bool)
                             for value in values):
        return False
    try:
        seed = float(entry.seed)
    except (TypeError, ValueError):
        return False
    mean = math.fsum(values) / len(values) * entry.scale
    examples = test_examples(entry, runs[0])
    if not examples:
        return False
    standard_error = binomial_half_width(mean, examples) / Z95
    return examples < SMALL_TEST_SET or abs(mean - seed) < NOISE_STANDARD_ERRORS * standard_error


def _series(entry: SeedItem, runs: list[dict]) -> Reading:
    curves = [lookup(metrics, entry.metric) for metrics in runs]
    if any(not isinstance(curve, list) or not curve for curve in curves):
        return Reading(NOT_RUN, "-", f"the run has no series {entry.metric!r}")
    length = min(len(curve) for curve in curves)
    try:
        ours = tuple(math.fsum(float(curve[index]) for curve in curves) / len(curves) * entry.scale
                     for index in range(length))
    except (TypeError, ValueError):
        return Reading(BELOW, "-", f"{entry.metric!r} is not a series of numbers")
    count = min(len(ours), len(entry.seed))
    differences = [abs(mine - theirs) for mine, theirs in
                   zip(ours[:count], entry.seed[:count], strict=True)]
    distance = max(differences) if entry.distance == "max" else math.fsum(differences) / count
    verdict = MET if distance <= entry.tolerance else BELOW
    name = "largest" if entry.distance == "max" else "mean"
    text = (f"{name} absolute difference {spread_text(distance, entry.unit)} over {count} of "
            f"{len(entry.seed)} points" + (f" (n={len(curves)})" if len(curves) > 1 else ""))
    return Reading(verdict, text, f"tolerance {spread_text(entry.tolerance, entry.unit)}",
                   points=(tuple(entry.seed[:count]), ours[:count]))


def _versus(entry: SeedItem, value: Any, results: dict) -> tuple[bool | None, str]:
    other_lab, _, rest = entry.versus.partition("/")
    other_preset, _, other_metric = rest.partition(":")
    other = results.get((other_lab, other_preset))
    other_value = lookup(other["metrics"], other_metric) if other else None
    if not isinstance(other_value, int | float) or not isinstance(value, int | float):
        return None, f"needs {other_lab} {other_preset} ({other_metric})"
    holds = value > other_value if entry.direction == "higher" else value < other_value
    return holds, (f"{format_value(value, entry.unit)} vs {format_value(other_value, entry.unit)} "
                   f"({other_lab} {other_preset})")


def _claim_once(entry: SeedItem, metrics: dict, results: dict) -> tuple[bool | None, str]:
    """Whether the claim holds on one run (None: a figure it needs is missing), and the figures."""
    holds, shown = True, []
    value = lookup(metrics, entry.metric)
    if entry.versus:
        verdict, text = _versus(entry, value, results)
        if verdict is None:
            return None, text
        holds, shown = verdict, [text]
    if entry.condition:
        try:
            verdict, text = conditions.evaluate(entry.condition, metrics, results)
        except conditions.Missing as missing:
            return None, f"the run has no {missing.path!r}"
        holds, shown = holds and verdict, shown + [text]
    if not entry.versus and not entry.condition:
        holds, shown = value is True, [format_value(value, entry.unit)]
        if value is None:
            return None, f"the run has no {entry.metric!r}"
    return holds, "; ".join(shown)


def _claim(entry: SeedItem, runs: list[dict], results: dict) -> Reading:
    outcomes = [_claim_once(entry, metrics, results) for metrics in runs]
    missing = next((text for holds, text in outcomes if holds is None), None)
    if missing is not None:
        return Reading(NOT_RUN, "-", missing)
    held = sum(bool(holds) for holds, _ in outcomes)
    ours = outcomes[0][1] + (f" (n={len(runs)})" if len(runs) > 1 else "")
    stated = f"when {entry.condition}" if entry.condition else ""
    if held == len(runs):
        return Reading(SHOWN, ours, stated)
    why = (f"holds on {held} of {len(runs)} seeds" if len(runs) > 1 else
           "the comparison goes the other way" if entry.versus and not entry.condition else
           "not shown by our run")
    return Reading(NOT_SHOWN, ours, f"{why}; shown {stated}" if stated else why)
