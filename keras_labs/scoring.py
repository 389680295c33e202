"""Scoring generated images with a trained classifier: the spread of the predicted classes (a
measure of mode collapse) and the Frechet distance between the classifier's penultimate
features on generated and on real images (a "classifier FID")."""

from __future__ import annotations

import keras
import numpy as np


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

    def score(self, images: np.ndarray) -> dict:
        """`class_histogram` (fractions), `largest_class_share` and `largest_class` (the most
        frequent predicted class; the lowest on a tie), `class_entropy` (bits),
        `classifier_fid` and `predicted` (the class of each image) of [0, 1] images."""
        features, probabilities = self._run(np.asarray(images, dtype=np.float32))
        predicted = probabilities.argmax(axis=1)
        histogram = np.bincount(predicted, minlength=self.num_classes) / len(predicted)
        nonzero = histogram[histogram > 0]
        return {
            "class_histogram": [round(float(share), 4) for share in histogram],
            "largest_class_share": float(histogram.max()),
            "largest_class": int(histogram.argmax()),
            "class_entropy": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,  # never -0.0
            "classifier_fid": frechet_distance(*feature_statistics(features), *self.reference),
            "predicted": predicted,
        }
