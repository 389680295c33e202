"""The measurable conditions of the seed ledger's claims: small expressions over a run's
metrics.json that say when a qualitative claim of a seed report holds.

    fall(losses.validation) >= 0.1 and validation_accuracy >= 0.2
    classifier_fid < gan/non_saturating-20k:classifier_fid
    mean(over_training.class_entropy.0:5) > mean(over_training.class_entropy.-5:)
    abs(results.gru.10.train_accuracy - results.gru.10.test_accuracy) <= 0.02

A path is dotted as in `keras_labs.results.ledger.lookup`: keys, list indexes (-1 the last),
`*` (every element of a list: `running_loss.*.loss`) and slices (`0:5`, `-5:`). A path
prefixed `lab/preset:` reads another committed result; its preset may be a pattern with `*`
(`cifar-cnn/report002-*:test_accuracy`, every matching preset's value in a list), which skips
the `-equal-updates` presets unless it names them. Functions of a list: first, last, min, max,
mean, len, fall ((first - last) / |first|: the share a curve fell by), rise (last - first);
abs of a number. Comparisons: < <= > >= ==; arithmetic: + - * /; clauses joined by `and`. A
bare path must be a true bool.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from collections.abc import Callable
from typing import Any

FUNCTIONS = ("first", "last", "min", "max", "mean", "len", "fall", "rise", "abs")
# Figures a rounding error apart count as equal: 0.99 - 0.97 <= 0.02 holds.
_CLOSE = 1e-9
COMPARISONS = {"<": lambda a, b: a < b - _CLOSE, "<=": lambda a, b: a <= b + _CLOSE,
               ">": lambda a, b: a > b + _CLOSE, ">=": lambda a, b: a >= b - _CLOSE,
               "==": lambda a, b: abs(a - b) <= _CLOSE}
EQUAL_UPDATES = "-equal-updates"
_SEGMENT = r"(?:[A-Za-z_]\w*|-?\d*:-?\d*|-?\d+|\*)"
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?![\w.]))"
    rf"|(?P<path>(?:[a-z][a-z0-9-]*/[\w.*-]+:)?[A-Za-z_]\w*(?:\.{_SEGMENT})*)"
    r"|(?P<op><=|>=|==|[<>()+\-*/,]))")
_OTHER = re.compile(r"[a-z][a-z0-9-]*/[\w.*-]+:")


class ConditionError(ValueError):
    """A condition that does not parse, or reads values of the wrong kind."""


class Missing(Exception):
    """A path the metrics do not have (the verdict is "not run")."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


@dataclasses.dataclass(frozen=True)
class Node:
    kind: str  # "number", "path", "call", "unary", "binary", "compare", "and"
    value: Any = None
    children: tuple = ()

    def text(self) -> str:
        if self.kind == "number":
            return f"{self.value:g}"
        if self.kind == "path":
            return str(self.value)
        if self.kind == "call":
            return f"{self.value}({self.children[0].text()})"
        if self.kind == "unary":
            return f"-{self.children[0].text()}"
        joiner = " and " if self.kind == "and" else f" {self.value} "
        return joiner.join(child.text() for child in self.children)


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ConditionError(f"condition {text!r} is not valid at {text[position:]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "path" and value in ("and",):
            kind = "and"
        found.append((kind, value))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise ConditionError(f"condition {self.text!r}: expected {value!r}, "
                                 f"got {token[1] or 'the end'!r}")
        self.position += 1
        return token

    def parse(self) -> Node:
        clauses = [self.comparison()]
        while self.peek()[0] == "and":
            self.take()
            clauses.append(self.comparison())
        if self.peek()[0] != "end":
            raise ConditionError(f"condition {self.text!r}: unexpected {self.peek()[1]!r}")
        return clauses[0] if len(clauses) == 1 else Node("and", children=tuple(clauses))

    def comparison(self) -> Node:
        left = self.sum()
        if self.peek()[1] in COMPARISONS:
            operator = self.take()[1]
            return Node("compare", operator, (left, self.sum()))
        return left

    def sum(self) -> Node:
        node = self.product()
        while self.peek()[1] in ("+", "-"):
            node = Node("binary", self.take()[1], (node, self.product()))
        return node

    def product(self) -> Node:
        node = self.atom()
        while self.peek()[1] in ("*", "/"):
            node = Node("binary", self.take()[1], (node, self.atom()))
        return node

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "number":
            return Node("number", float(value))
        if value == "-":
            return Node("unary", "-", (self.atom(),))
        if value == "(":
            node = self.sum()
            self.take(")")
            return node
        if kind == "path" and self.peek()[1] == "(":
            if value not in FUNCTIONS:
                raise ConditionError(f"condition {self.text!r}: unknown function {value!r}; "
                                     f"valid: {', '.join(FUNCTIONS)}")
            self.take("(")
            argument = self.sum()
            self.take(")")
            return Node("call", value, (argument,))
        if kind == "path":
            return Node("path", value)
        raise ConditionError(f"condition {self.text!r}: unexpected {value or 'end'!r}")


def parse(text: str) -> Node:
    """The parsed condition.

    Raises:
        ConditionError: It does not parse (the message quotes it).
    """
    return _Parser(text).parse()


def read_path(metrics: Any, path: str) -> Any:
    """The value at dotted `path` in `metrics`; `*` maps over a list, `a:b` slices it.

    Returns:
        The value; None where metrics.json holds null (a figure the run could not compute).

    Raises:
        Missing: A key or index the metrics do not have.
    """
    value = metrics
    keys = path.split(".")
    for position, key in enumerate(keys):
        if key == "*" or ":" in key:
            if not isinstance(value, list):
                raise Missing(path)
            start, _, stop = key.partition(":")
            chosen = value if key == "*" else value[int(start) if start else None:
                                                     int(stop) if stop else None]
            rest = ".".join(keys[position + 1:])
            return [read_path(element, rest) if rest else element for element in chosen]
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", key) and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            raise Missing(path)
    return value


def other_presets(reference: str, results: dict[tuple[str, str], dict]) -> list[dict]:
    """The committed results that `lab/preset-pattern` names, in preset order."""
    lab, _, pattern = reference.partition("/")
    return [result for (other_lab, preset), result in sorted(results.items())
            if other_lab == lab and fnmatch.fnmatchcase(preset, pattern)
            and (EQUAL_UPDATES in pattern or not preset.endswith(EQUAL_UPDATES))]


def _numbers(value: Any, name: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ConditionError(f"{name}() needs a non-empty list, got {value!r}")
    if not all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
        raise ConditionError(f"{name}() needs numbers, got {value!r}")
    return [float(item) for item in value]


def _number(value: Any, node: Node) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionError(f"{node.text()} is {value!r}, not a number")
    return float(value)


def _call(name: str, value: Any) -> float:
    if name == "abs":
        return abs(_number(value, Node("call", "abs", (Node("path", "..."),))))
    if name == "len":
        return float(len(value)) if isinstance(value, list) else 1.0
    numbers = _numbers(value, name)
    if name == "fall":
        return (numbers[0] - numbers[-1]) / abs(numbers[0]) if numbers[0] else 0.0
    return {"first": numbers[0], "last": numbers[-1], "min": min(numbers), "max": max(numbers),
            "mean": math.fsum(numbers) / len(numbers), "rise": numbers[-1] - numbers[0]}[name]


class Evaluation:
    """Evaluates a parsed condition on one run's metrics; `shown` collects the figures read."""

    def __init__(self, metrics: dict, others: Callable[[str], list[dict]]):
        self.metrics = metrics
        self.others = others
        self.shown: list[str] = []

    def value(self, node: Node) -> Any:
        if node.kind == "number":
            return node.value
        if node.kind == "path":
            return self._path(node.value)
        if node.kind == "call":
            return _call(node.value, self.value(node.children[0]))
        if node.kind == "unary":
            return -_number(self.value(node.children[0]), node.children[0])
        left, right = (_number(self.value(child), child) for child in node.children)
        if node.value == "/" and right == 0:
            raise ConditionError(f"{node.text()}: division by zero")
        return {"+": lambda: left + right, "-": lambda: left - right,
                "*": lambda: left * right, "/": lambda: left / right}[node.value]()

    def _path(self, path: str) -> Any:
        if _OTHER.match(path):
            reference, _, inner = path.partition(":")
            found = []
            for result in self.others(reference):
                found.append(read_path(result.get("metrics") or {}, inner))
            if not found:
                raise Missing(path)
            return found if "*" in reference else found[0]
        value = read_path(self.metrics, path)
        # null (a figure the run could not compute): every comparison with it fails.
        return math.nan if value is None else value

    def holds(self, node: Node) -> bool:
        if node.kind == "and":
            results = [self.holds(child) for child in node.children]
            return all(results)
        if node.kind == "compare":
            left, right = (self.value(child) for child in node.children)
            self._show(node.children[0], left)
            if node.children[1].kind != "number":
                self._show(node.children[1], right)
            return bool(COMPARISONS[node.value](_number(left, node.children[0]),
                                                _number(right, node.children[1])))
        value = self.value(node)
        self._show(node, value)
        if not isinstance(value, bool):
            raise ConditionError(f"{node.text()} is {value!r}, not a bool; compare it with a number")
        return value

    def _show(self, node: Node, value: Any) -> None:
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list):
            text = f"list of {len(value)}"
        else:
            text = "null" if math.isnan(float(value)) else f"{float(value):.4g}"
        if f"{node.text()} = {text}" not in self.shown:
            self.shown.append(f"{node.text()} = {text}")


def evaluate(condition: str, metrics: dict, results: dict[tuple[str, str], dict] | None = None
             ) -> tuple[bool, str]:
    """Whether `condition` holds on `metrics` (other presets read from `results`), and the
    figures it read ("fall(losses.validation) = 0.124; validation_accuracy = 0.372").

    Raises:
        Missing: The metrics lack a path the condition reads.
        ConditionError: The condition does not parse, or a value has the wrong kind.
    """
    evaluation = Evaluation(metrics, lambda reference: other_presets(reference, results or {}))
    holds = evaluation.holds(parse(condition))
    return holds, "; ".join(evaluation.shown)
