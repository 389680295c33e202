"""Optimizers, learning-rate schedules and losses chosen by name, from explicit arguments.

`learning_rate_schedule` is the suite's one schedule builder: every lab that decays its rate
asks it for one. The cifar-cnn lab's optimizer knobs go through `make_optimizer`; a benchmark
builds the same optimizer from the same names.
"""

from __future__ import annotations

import keras

from keras_labs.models.specs import OPTIMIZERS, SCHEDULES


def learning_rate_schedule(learning_rate: float, total_steps: int, schedule: str = "constant",
                           warmup_fraction: float = 0.2, *, warmup_steps: int = 0,
                           final_fraction: float = 0.0):
    """The learning rate over a run of `total_steps` steps.

    Args:
        learning_rate: The (peak) learning rate.
        total_steps: Training steps of the whole run.
        schedule: One of `SCHEDULES`: "constant"; "cosine" (decay to zero); "onecycle" (linear
            warm-up from a tenth of the peak over `warmup_fraction` of the steps, then cosine
            decay to zero); "step" (divided by 10 at half and three quarters of the run).
        warmup_fraction: onecycle: fraction of the steps spent warming up.
        warmup_steps: cosine: steps of linear warm-up from 0 before the decay (0: none).
        final_fraction: cosine: the rate decays to this fraction of `learning_rate`.

    Returns:
        A float (constant) or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    rate = learning_rate
    if schedule == "constant":
        return rate
    if schedule == "cosine":
        warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
        return keras.optimizers.schedules.CosineDecay(
            rate if warmup_steps == 0 else 0.0, decay_steps=max(total_steps - warmup_steps, 1),
            alpha=final_fraction, warmup_target=rate if warmup_steps else None,
            warmup_steps=warmup_steps)
    if schedule == "onecycle":
        # linear warm-up from a tenth of the peak, then cosine annealing to zero
        warmup = int(total_steps * warmup_fraction)
        return keras.optimizers.schedules.CosineDecay(
            rate / 10, decay_steps=max(total_steps - warmup, 1), warmup_target=rate,
            warmup_steps=warmup)
    if schedule != "step":
        raise ValueError(f"schedule={schedule!r} is not valid; valid values: {', '.join(SCHEDULES)}")
    # step: divide by 10 at half and three quarters of the run
    boundaries = [max(total_steps // 2, 1), max(total_steps * 3 // 4, 2)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [rate, rate / 10, rate / 100])


def make_optimizer(name: str, learning_rate: float, total_steps: int, *,
                   schedule: str = "constant", warmup_fraction: float = 0.2,
                   momentum: float = 0.9, weight_decay: float = 0.0
                   ) -> keras.optimizers.Optimizer:
    """The optimizer `name` on `learning_rate_schedule(learning_rate, total_steps, ...)`.

    Args:
        name: One of `OPTIMIZERS`: "sgd" (no momentum), "momentum", "nesterov", "adam",
            "adamw", "adagrad", "rmsprop".
        learning_rate: The (peak) learning rate.
        total_steps: Training steps of the whole run (the schedule's length).
        schedule: See `learning_rate_schedule`.
        warmup_fraction: See `learning_rate_schedule`.
        momentum: Momentum of momentum, nesterov and rmsprop.
        weight_decay: Decoupled weight decay of the kernels (0: none); biases and batch norm
            scales and offsets are not decayed.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} is not valid; valid values: {', '.join(OPTIMIZERS)}")
    rate = learning_rate_schedule(learning_rate, total_steps, schedule, warmup_fraction)
    decay = {"weight_decay": weight_decay or None}
    if name == "sgd":
        optimizer = keras.optimizers.SGD(rate, **decay)
    elif name in ("momentum", "nesterov"):
        optimizer = keras.optimizers.SGD(rate, momentum=momentum, nesterov=name == "nesterov",
                                         **decay)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(rate, **decay)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=weight_decay)
    elif name == "adagrad":
        optimizer = keras.optimizers.Adagrad(rate, **decay)
    else:
        optimizer = keras.optimizers.RMSprop(rate, momentum=momentum, **decay)
    if weight_decay:
        # decay the kernels only: shrinking biases and batch-norm scales does not regularize
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def logits_crossentropy(num_classes: int, label_smoothing: float = 0.0):
    """Cross-entropy on logits and integer labels, optionally with label smoothing.

    Args:
        num_classes: Width of the logits (the labels are one-hot encoded to it when smoothing).
        label_smoothing: Weight moved from the true class to a uniform distribution (0: none).
    """
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def smoothed_crossentropy(labels, logits):
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32"),
                                    num_classes)
        return keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True,
                                                     label_smoothing=label_smoothing)

    return smoothed_crossentropy
