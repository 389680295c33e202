"""Targeted gradient attacks on an image classifier that returns probabilities.

Every attack keeps the pixels in [0, 1]; the gradients are compiled once per model and reused
by every step. The adversarial lab (`experiment.py`, beside this module) runs them on MNIST
(report 000/001, exercise 5).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# Checks on what goes into an attack


def check_images(images, model: keras.Model) -> np.ndarray:
    """Returns `images` as float32 after checking they fit `model` and lie in [0, 1].

    Raises:
        ValueError: Not numbers, a shape other than (N,) + the model's input shape, a NaN, or a
            pixel outside [0, 1] (the message quotes the shape or the range found).
    """
    array = np.asarray(images)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"images must be numbers; got dtype {array.dtype}")
    expected = tuple(model.input_shape[1:])
    if array.ndim != len(expected) + 1 or tuple(array.shape[1:]) != expected or not len(array):
        raise ValueError(f"images of shape {array.shape} do not fit the classifier: expected "
                         f"(N, {', '.join(map(str, expected))}) with N >= 1")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("images contain NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"pixel values must lie in [0, 1]; got [{low:.4g}, {high:.4g}]"
                         + (" (uint8 images: divide by 255)" if high > 1.0 else ""))
    return array


def check_target(target, model: keras.Model) -> int:
    classes = int(model.output_shape[-1])
    if isinstance(target, bool) or not isinstance(target, int | np.integer) \
            or not 0 <= target < classes:
        raise ValueError(f"target={target!r} is not a class of this classifier (0..{classes - 1})")
    return int(target)


# Gradients and the attacks


class _Gradients:
    """Compiled gradient computations for one classifier (traced once, reused by every step)."""

    _cache: dict[int, _Gradients] = {}

    def __init__(self, model: keras.Model):
        self.model = model

        @tf.function(reduce_retracing=True)
        def loss_gradient(images, target):
            with tf.GradientTape() as tape:
                tape.watch(images)
                probabilities = model(images, training=False)
                # -log p(target | x): descending it is ascending log p(target)
                loss = -tf.math.log(tf.maximum(probabilities[:, target], 1e-30))
            return tape.gradient(loss, images), probabilities

        self.loss_gradient = loss_gradient

    def probability_gradient(self, images, target):
        """d p(target) / d x = -p(target) * d(-log p(target)) / d x (one compiled function)."""
        gradient, probabilities = self.loss_gradient(images, target)
        scale = -tf.reshape(probabilities[:, target], [-1] + [1] * (len(gradient.shape) - 1))
        return gradient * scale

    @classmethod
    def of(cls, model: keras.Model) -> _Gradients:
        if id(model) not in cls._cache or cls._cache[id(model)].model is not model:
            cls._cache[id(model)] = cls(model)
        return cls._cache[id(model)]


def l2_norms(values: np.ndarray) -> np.ndarray:
    """The L2 norm of each item of a batch."""
    return np.sqrt((values.reshape(len(values), -1) ** 2).sum(axis=1))


def pgd_attack(model: keras.Model, images, target: int, *, norm: str, epsilon: float,
               steps: int = 100, step_size: float | None = None, batch_size: int = 1000
               ) -> np.ndarray:
    """Targeted projected gradient descent: images the model should call `target`, each within
    `epsilon` of its original in the `norm` ("linf" or "l2") and inside [0, 1].

    Args:
        model: A classifier returning probabilities.
        images: (N,) + input shape, in [0, 1].
        target: The class to reach.
        norm: "linf" (signed steps) or "l2" (L2-normalized steps).
        epsilon: The radius of the ball around each original.
        steps: Iterations.
        step_size: Length of one step (L-inf or L2); default 2.5 * epsilon / steps.
        batch_size: Images per gradient computation.

    Raises:
        ValueError: Bad images (see `check_images`), target, norm or epsilon.
    """
    originals = check_images(images, model)
    target = check_target(target, model)
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm={norm!r} is not valid; valid values: linf, l2")
    if not epsilon > 0:
        raise ValueError(f"epsilon={epsilon!r} must be > 0")
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    gradients = _Gradients.of(model)
    results = []
    for start in range(0, len(originals), batch_size):
        original = originals[start:start + batch_size]
        adversarial = original.copy()
        for _ in range(steps):
            gradient, _ = gradients.loss_gradient(tf.constant(adversarial), target)
            gradient = gradient.numpy()
            if norm == "linf":
                adversarial = adversarial - step_size * np.sign(gradient)
                adversarial = np.clip(adversarial, original - epsilon, original + epsilon)
            else:
                lengths = np.maximum(l2_norms(gradient), 1e-12).reshape(-1, *[1] * (gradient.ndim - 1))
                adversarial = adversarial - step_size * gradient / lengths
                delta = adversarial - original
                scale = np.minimum(1.0, epsilon / np.maximum(l2_norms(delta), 1e-12))
                adversarial = original + delta * scale.reshape(lengths.shape)
            # Clipping to the valid range only shrinks the perturbation: it stays in the ball.
            adversarial = np.clip(adversarial, 0.0, 1.0)
        results.append(adversarial)
    return np.concatenate(results).astype(np.float32)


def unconstrained_attack(model: keras.Model, images, target: int, *, steps: int = 500,
                         step_length: float = 0.1, stop_confidence: float = 0.999,
                         batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The reports' input optimization: gradient ascent on log p(target | x) with no distance
    budget, pixels clipped to [0, 1]; each image stops once p(target) >= `stop_confidence`.

    Returns:
        (the optimized images, the mean p(target) before every step and after the last one:
        shape (steps + 1,)).

    Raises:
        ValueError: Bad images (see `check_images`) or target.
    """
    originals = check_images(images, model)
    target = check_target(target, model)

    def step(adversarial, gradient, confidence):
        active = (confidence < stop_confidence).reshape(-1, *[1] * (adversarial.ndim - 1))
        if not active.any():
            return None
        lengths = np.maximum(l2_norms(gradient), 1e-12).reshape(active.shape)
        return np.where(active, np.clip(adversarial - step_length * gradient / lengths, 0.0, 1.0),
                        adversarial)

    images, curves = _ascend(model, originals, target, steps, batch_size, step)
    # A batch that stopped early keeps its last confidence for the steps it did not take.
    curves = [curve + [curve[-1]] * (steps + 1 - len(curve)) for curve in curves]
    return images, np.concatenate([np.stack(curve) for curve in curves], axis=1).mean(axis=1)


def _ascend(model: keras.Model, originals: np.ndarray, target: int, steps: int, batch_size: int,
            step) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """The gradient-ascent loop of the input attacks, batch by batch: up to `steps` calls of
    `step(images, d loss / d images, p(target))` -> the next images (None: stop the batch),
    where the loss is -log p(target | x).

    Returns:
        (the final images, per batch the list of p(target) before every step taken and after
        the last one).
    """
    gradients = _Gradients.of(model)
    results, curves = [], []
    for start in range(0, len(originals), batch_size):
        adversarial = originals[start:start + batch_size].copy()
        curve = []
        for _ in range(steps):
            gradient, probabilities = gradients.loss_gradient(tf.constant(adversarial), target)
            confidence = probabilities.numpy()[:, target]
            curve.append(confidence)
            moved = step(adversarial, gradient.numpy(), confidence)
            if moved is None:
                break
            adversarial = moved
        curve.append(np.asarray(model(adversarial, training=False))[:, target])
        results.append(adversarial)
        curves.append(curve)
    return np.concatenate(results).astype(np.float32), curves


def gradient_map(model: keras.Model, images, target: int) -> np.ndarray:
    """d p(target | x) / d x for each image: where a pixel change moves the target's probability."""
    images = check_images(images, model)
    target = check_target(target, model)
    return _Gradients.of(model).probability_gradient(tf.constant(images), target).numpy()


def summarize(model: keras.Model, originals: np.ndarray, adversarials: np.ndarray,
              target: int) -> dict:
    """Success rate (predicted class == target), mean confidence in the target, and the mean
    and max perturbation in L2 and L-inf."""
    probabilities = np.asarray(model.predict(adversarials, batch_size=1000, verbose=0))
    delta = (adversarials - originals).reshape(len(originals), -1)
    l2, linf = np.sqrt((delta ** 2).sum(axis=1)), np.abs(delta).max(axis=1)
    return {
        "success_rate": float((probabilities.argmax(axis=1) == target).mean()),
        "mean_confidence": float(probabilities[:, target].mean()),
        "mean_l2": float(l2.mean()), "max_l2": float(l2.max()),
        "mean_linf": float(linf.mean()), "max_linf": float(linf.max()),
        "min_pixel": float(adversarials.min()), "max_pixel": float(adversarials.max()),
    }


def budget_attack(model: keras.Model, images, target: int, *, steps: int, step_size: float,
                  objective: str = "log_probability", batch_size: int = 1000
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Plain gradient ascent for a fixed budget: every image takes exactly `steps` steps
    x <- clip(x + step_size * d objective / d x, 0, 1), with no early stop, so the confidence
    reached measures the attack rather than a stopping threshold.

    Args:
        model: A classifier returning probabilities.
        images: (N,) + input shape, in [0, 1].
        target: The class to reach.
        steps: Gradient steps, the same for every image.
        step_size: The learning rate, the same for every image (the steps are not normalized,
            so a flat start moves less, as in plain gradient ascent).
        objective: "log_probability" (ascend log p(target | x)) or "probability"
            (ascend p(target | x)).
        batch_size: Images per gradient computation.

    Returns:
        (the images after the budget, p(target) of every image after k steps for k = 0..steps:
        shape (steps + 1, N), row 0 the start).

    Raises:
        ValueError: Bad images (see `check_images`), target, objective, steps or step size.
    """
    originals = check_images(images, model)
    target = check_target(target, model)
    if objective not in ("log_probability", "probability"):
        raise ValueError(f"objective={objective!r} is not valid; valid values: "
                         "log_probability, probability")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    if not step_size > 0:
        raise ValueError(f"step_size={step_size!r} must be > 0")

    def step(adversarial, gradient, confidence):
        ascent = -gradient  # the loss is -log p(target)
        if objective == "probability":  # d p / d x = p * d log p / d x
            ascent = ascent * confidence.reshape(-1, *[1] * (ascent.ndim - 1))
        return np.clip(adversarial + step_size * ascent, 0.0, 1.0)

    images, curves = _ascend(model, originals, target, steps, batch_size, step)
    return images, np.concatenate([np.stack(curve) for curve in curves],
                                  axis=1).astype(np.float64)


def first_step_reaching(confidences, level: float) -> int | None:
    """The first k with confidences[k] >= level (k = number of steps taken), or None."""
    reached = np.nonzero(np.asarray(confidences) >= level)[0]
    return int(reached[0]) if len(reached) else None


def budget_summary(model: keras.Model, images, target: int, *, steps: int, step_size: float,
                   objective: str = "log_probability") -> tuple[dict, np.ndarray, np.ndarray]:
    """One start set through the fixed budget of `budget_attack`, summarized.

    Args:
        model: A classifier returning probabilities.
        images: The start images, (N,) + input shape, in [0, 1].
        target: The class to reach.
        steps, step_size, objective: The budget, as in `budget_attack`.

    Returns:
        (the figures: confidence reached (mean and lowest), success rate, steps to 90% / 99%,
        mean L2 change and the mean confidence after every step; the images after the budget;
        the mean p(target) after k steps for k = 0..steps).
    """
    found, confidences = budget_attack(model, images, target, steps=steps, step_size=step_size,
                                       objective=objective)
    mean = confidences.mean(axis=1)
    predictions = np.asarray(model.predict(found, batch_size=1000, verbose=0)).argmax(axis=1)
    summary = {
        "examples": len(images),
        "start_confidence": float(mean[0]),
        "confidence": float(confidences[-1].mean()),
        "confidence_min": float(confidences[-1].min()),
        "success_rate": float((predictions == target).mean()),
        # Steps taken (0: the start) until the mean confidence, or every image's, reached 99%.
        "steps_to_99": first_step_reaching(mean, 0.99),
        "steps_to_99_every_image": first_step_reaching(confidences.min(axis=1), 0.99),
        "steps_to_90": first_step_reaching(mean, 0.9),
        "mean_l2_change": float(l2_norms(found - images).mean()),
        # The mean confidence after steps 1..steps.
        "curve": [round(float(value), 6) for value in mean[1:]],
    }
    return summary, found, mean


def universal_perturbation(model: keras.Model, images, target: int, *, epsilon: float,
                           steps: int = 200, step_size: float | None = None,
                           batch_size: int = 128, seed: int = 0) -> np.ndarray:
    """One perturbation that pushes every image of a set towards `target` when added to it.

    Signed gradient steps on the mean -log p(target | clip(x + delta, 0, 1)) over seeded
    minibatches of `images`, projected onto the L-inf ball of radius `epsilon`. Only `images`
    is seen: score it afterwards on images it was not fitted on.

    Args:
        model: A classifier returning probabilities.
        images: The fitting images, (N,) + input shape, in [0, 1].
        target: The class to reach.
        epsilon: The L-inf bound of the perturbation.
        steps: Minibatch steps.
        step_size: L-inf length of one step; default 2.5 * epsilon / steps.
        batch_size: Images per step.
        seed: Seed of the minibatch draws.

    Returns:
        The perturbation, shaped like one image (float32, in [-epsilon, epsilon]).

    Raises:
        ValueError: Bad images (see `check_images`), target or epsilon.
    """
    originals = check_images(images, model)
    target = check_target(target, model)
    if not epsilon > 0:
        raise ValueError(f"epsilon={epsilon!r} must be > 0")
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    gradients = _Gradients.of(model)
    rng = np.random.default_rng(seed)
    delta = np.zeros(originals.shape[1:], np.float32)
    for _ in range(steps):
        batch = originals[rng.choice(len(originals), min(batch_size, len(originals)),
                                     replace=False)]
        gradient, _ = gradients.loss_gradient(tf.constant(np.clip(batch + delta, 0.0, 1.0)),
                                              target)
        delta = np.clip(delta - step_size * np.sign(np.asarray(gradient).mean(axis=0)),
                        -epsilon, epsilon).astype(np.float32)
    return delta


def apply_perturbation(images, perturbation) -> np.ndarray:
    """`images` + `perturbation` (broadcast), clipped to [0, 1]."""
    return np.clip(np.asarray(images, np.float32) + perturbation, 0.0, 1.0).astype(np.float32)


def fit_universal(model: keras.Model, fit_images, validation_images, heldout_images,
                  target: int, *, epsilons, goal: float, steps: int, step_scale: float = 2.5,
                  seed: int = 0) -> tuple[dict, np.ndarray]:
    """Fits one `universal_perturbation` per L-inf epsilon on `fit_images`, keeps the smallest
    epsilon whose perturbation turns a share `goal` of `validation_images` into `target` (else
    the largest), and scores only that one on `heldout_images`: they choose nothing.

    Args:
        model: A classifier returning probabilities.
        fit_images: The images the perturbations are fitted on, in [0, 1].
        validation_images: The images the epsilon is chosen on (None or empty: the largest).
        heldout_images: The images the kept perturbation is scored on.
        target: The class to reach.
        epsilons: The L-inf bounds tried.
        goal: The success rate on validation the kept epsilon must reach.
        steps: Minibatch steps of each fit.
        step_scale: Step = step_scale * epsilon / steps.
        seed: Seed of the minibatch draws and of the random-sign control.

    Returns:
        (the figures: the epsilon kept, success rates on validation per epsilon, on the fitting
        and held-out images, and on the held-out images unperturbed and with a random-sign
        pattern of the same L-inf size; the kept perturbation).
    """
    def scores(images, perturbation):
        probabilities = np.asarray(model.predict(apply_perturbation(images, perturbation),
                                                 batch_size=1000, verbose=0))
        return (float((probabilities.argmax(axis=1) == target).mean()),
                float(probabilities[:, target].mean()))

    fitted, validation = {}, {}
    for epsilon in sorted(epsilons):
        fitted[epsilon] = universal_perturbation(
            model, fit_images, target, epsilon=epsilon, steps=steps,
            step_size=step_scale * epsilon / steps, seed=seed)
        if validation_images is not None and len(validation_images):
            validation[epsilon] = scores(validation_images, fitted[epsilon])[0]
    reaching = [epsilon for epsilon, rate in validation.items() if rate >= goal]
    epsilon = min(reaching) if reaching else max(fitted)
    perturbation = fitted[epsilon]
    # The same L-inf size with random signs: what a pattern not fitted to the class does.
    random_signs = np.random.default_rng(seed).choice(
        [-epsilon, epsilon], size=perturbation.shape).astype(np.float32)
    heldout_rate, heldout_confidence = scores(heldout_images, perturbation)
    return {
        "epsilon": epsilon,
        "epsilons_tried": sorted(epsilons),
        "goal_on_validation": goal,
        "success_rate_validation_by_epsilon": {f"{key:g}": rate for key, rate in validation.items()},
        "success_rate_validation": validation.get(epsilon),
        "train_images": len(fit_images),
        "validation_images": 0 if validation_images is None else len(validation_images),
        "heldout_images": len(heldout_images),
        "success_rate_train": scores(fit_images, perturbation)[0],
        "success_rate_heldout": heldout_rate,
        "mean_confidence_heldout": heldout_confidence,
        "clean_target_rate_heldout": scores(heldout_images, 0.0)[0],
        "random_sign_success_rate_heldout": scores(heldout_images, random_signs)[0],
        "l2": float(np.sqrt((perturbation ** 2).sum())),
        "steps": steps,
    }, perturbation


def mean_gradient_map(model: keras.Model, images, target: int, batch_size: int = 1000
                      ) -> np.ndarray:
    """The mean direction of d log p(target | x) / d x over `images`: each image's map scaled
    to unit L2 norm first, so every start counts alike whatever its confidence."""
    images = check_images(images, model)
    target = check_target(target, model)
    gradients = _Gradients.of(model)
    total = np.zeros(images.shape[1:], np.float64)
    for start in range(0, len(images), batch_size):
        gradient, _ = gradients.loss_gradient(tf.constant(images[start:start + batch_size]),
                                              target)
        gradient = -np.asarray(gradient, np.float64)
        lengths = np.maximum(l2_norms(gradient), 1e-30).reshape(-1, *[1] * (gradient.ndim - 1))
        total += (gradient / lengths).sum(axis=0)
    return total / len(images)


def mean_change_map(starts, found) -> np.ndarray:
    """The mean direction of what an attack changed: each image's change (`found - starts`)
    scaled to unit L2 norm first, so every start counts alike whatever the distance it moved.
    Unlike `mean_gradient_map` (the first step's direction), this depends on the budget."""
    starts, found = np.asarray(starts, np.float64), np.asarray(found, np.float64)
    if starts.shape != found.shape:
        raise ValueError(f"start images of shape {starts.shape} and attacked images of shape "
                         f"{found.shape} cannot be compared")
    change = found - starts
    lengths = np.maximum(l2_norms(change), 1e-30).reshape(-1, *[1] * (change.ndim - 1))
    return (change / lengths).mean(axis=0)


def map_correlation(first, second) -> float:
    """Pearson correlation of two maps over their pixels.

    Raises:
        ValueError: The shapes differ, or a map is constant (no correlation is defined).
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        raise ValueError(f"maps of shapes {first.shape} and {second.shape} cannot be compared")
    first, second = first.ravel() - first.mean(), second.ravel() - second.mean()
    scale = np.sqrt((first ** 2).sum() * (second ** 2).sum())
    if scale == 0:
        raise ValueError("a constant map has no correlation with anything")
    return float((first * second).sum() / scale)


def gradient_map_correlations(model: keras.Model, starts: dict, target: int, *, reference: str,
                              control: tuple[str, int] | None = None
                              ) -> tuple[dict, dict, dict | None]:
    """The `mean_gradient_map` towards `target` of every named start set, and how each one
    correlates with that of the `reference` set (hotspots in the same areas or not).

    Args:
        model: A classifier returning probabilities.
        starts: Name -> images, in [0, 1]; one of them is `reference`.
        target: The class the maps point to.
        reference: The name of the set the others are compared with.
        control: (name of a start set, another class): the map of that set towards that class
            against the reference map, the correlation of unrelated directions.

    Returns:
        (name -> mean map, name -> correlation with the reference map for every other set,
        {"class", "correlation"} of the control or None).

    Raises:
        ValueError: `reference` or the control's set is not in `starts`.
    """
    for name in (reference, *(control[:1] if control else ())):
        if name not in starts:
            raise ValueError(f"{name!r} is not a start set; valid names: {', '.join(starts)}")
    maps = {name: mean_gradient_map(model, images, target) for name, images in starts.items()}
    correlations = {name: map_correlation(maps[reference], value)
                    for name, value in maps.items() if name != reference}
    if control is None:
        return maps, correlations, None
    name, label = control
    return maps, correlations, {"class": label, "correlation": map_correlation(
        maps[reference], mean_gradient_map(model, starts[name], label))}
