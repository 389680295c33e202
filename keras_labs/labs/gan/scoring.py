"""Scoring generated images with a trained classifier: the spread of the predicted classes (a
measure of mode collapse) and the Frechet distance between the classifier's penultimate
features on generated and on real images (a "classifier FID"); the floor of real images
scored the same way; and the ranges of training curves recorded in a CSV file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np

# The scalar scores a run logs after every interval (TensorBoard, the epoch logs).
SUMMARY_KEYS = ("largest_class_share", "class_entropy", "classifier_fid")


def frechet_distance(mean_a, covariance_a, mean_b, covariance_b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the distance between two Gaussians."""
    covariance_a = np.atleast_2d(np.asarray(covariance_a, dtype=np.float64))
    covariance_b = np.atleast_2d(np.asarray(covariance_b, dtype=np.float64))
    # Tr (S_a S_b)^(1/2) = Tr (S_a^(1/2) S_b S_a^(1/2))^(1/2): a symmetric matrix, so its
    # eigenvalues are real (clipped at 0 against round-off) and no complex sqrtm is needed.
    values, vectors = np.linalg.eigh(covariance_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = root_a @ covariance_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    difference = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    value = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b) - 2 * trace_root
    return float(max(value, 0.0))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and covariance of feature vectors (one per row)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


class SampleScorer:
    """Scores generated images with a trained classifier against real images.

    Args:
        classifier: Maps [0, 1] images to class probabilities and has a layer named
            "features" (its penultimate representation).
        real_images: Real images in [0, 1], the reference of the Frechet distance.
        num_classes: Length of the class histogram.
    """

    def __init__(self, classifier: keras.Model, real_images: np.ndarray, num_classes: int = 10):
        self.classifier = classifier
        self.num_classes = num_classes
        self.features = keras.Model(classifier.input, [classifier.get_layer("features").output,
                                                       classifier.output])
        real_features, _ = self._run(real_images)
        self.reference = feature_statistics(real_features)

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, probabilities = [], []
        for start in range(0, len(images), 1000):
            batch_features, batch_probabilities = self.features(images[start:start + 1000],
                                                                training=False)
            features.append(np.asarray(batch_features))
            probabilities.append(np.asarray(batch_probabilities))
        return np.concatenate(features), np.concatenate(probabilities)

    def score(self, images: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """`class_histogram` (fractions), `largest_class_share` and `largest_class` (the most
        frequent predicted class; the lowest on a tie), `class_entropy` (bits),
        `classifier_fid` and `predicted` (the class of each image) of [0, 1] images; with
        `labels` (the class each image should show) also `label_agreement`, the share of images
        predicted as their label."""
        features, probabilities = self._run(np.asarray(images, dtype=np.float32))
        predicted = probabilities.argmax(axis=1)
        histogram = np.bincount(predicted, minlength=self.num_classes) / len(predicted)
        nonzero = histogram[histogram > 0]
        agreement = {} if labels is None else {"label_agreement":
                                               float((predicted == labels).mean())}
        return {
            "class_histogram": [round(float(share), 4) for share in histogram],
            "largest_class_share": float(histogram.max()),
            "largest_class": int(histogram.argmax()),
            "class_entropy": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,  # never -0.0
            "classifier_fid": frechet_distance(*feature_statistics(features), *self.reference),
            "predicted": predicted,
            **agreement,
        }


def split_floor(classifier: keras.Model, real_images: np.ndarray, count: int,
                num_classes: int = 10, split: str = "test") -> tuple[SampleScorer, dict]:
    """A scorer whose Frechet reference is real images, and the "floor": real images it scores.

    `real_images` is cut in two: its first images (`count`, at most half of them) are scored
    exactly as generated ones would be; the rest are the reference of the Frechet distance, so
    the floor's images are never part of the reference.

    Args:
        classifier: As for `SampleScorer`.
        real_images: Real images in [0, 1] from one split.
        count: Images to score (as many as the generated ones scored).
        num_classes: Length of the class histogram.
        split: The split's name, recorded in the floor.

    Returns:
        The `SampleScorer` and the floor: the split, the two counts and the scores of the
        first images (without the per-image predictions).
    """
    count = min(count, len(real_images) // 2)
    scorer = SampleScorer(classifier, real_images[count:], num_classes)
    scores = scorer.score(real_images[:count])
    floor = {"split": split, "examples": count, "reference_examples": len(real_images) - count,
             "digits": f"{split}[:{count}] against the reference "
                       f"{split}[{count}:{len(real_images)}]",
             **{key: scores[key] for key in ("largest_class_share", "largest_class",
                                             "class_entropy", "classifier_fid",
                                             "class_histogram")}}
    return scorer, floor


def mode_collapse(score: dict, *, collapse_share: float, spread_share: float) -> dict:
    """The largest class of `score` (from `SampleScorer.score`) and its verdicts:
    `mode_collapse` (its share is at least `collapse_share`) and `no_mode_collapse` (at most
    `spread_share`)."""
    share = score["largest_class_share"]
    return {"largest_class_share": share, "largest_class": score["largest_class"],
            "mode_collapse": share >= collapse_share, "no_mode_collapse": share <= spread_share}


def read_curves(path, keys) -> dict[str, tuple[list[int], list[float]]]:
    """The columns `keys` of a CSV file with a "step" column, each as (steps, values)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = [int(row["step"]) for row in rows]
    return {key: (steps, [float(row[key]) for row in rows]) for key in keys}


def curve_ranges(path, names: dict[str, str], *, after_step: float) -> dict:
    """max - min of each column of a CSV curve file (see `read_curves`), over the rows whose
    step is greater than `after_step`; None for a column without such a row.

    Args:
        path: The CSV file (a "step" column and one column per curve).
        names: Column -> the name of its range in the result.
        after_step: Rows at this step or before are left out (a curve's fast start).
    """
    curves = read_curves(path, names)
    ranges = {}
    for key, name in names.items():
        steps, values = curves[key]
        kept = [value for step, value in zip(steps, values, strict=True) if step > after_step]
        ranges[name] = round(max(kept) - min(kept), 5) if kept else None
    return ranges


def load_scores(path, until_step: int) -> list[dict]:
    """The records of a JSON list of scores (each with a "step") up to `until_step`, as a
    resumed run keeps them; [] when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    return [entry for entry in json.loads(path.read_text()) if entry["step"] <= until_step]
