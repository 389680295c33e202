"""Callbacks shared by the labs; Keras's own (TensorBoard, CSVLogger, TerminateOnNaN) are wired
in `training.standard_callbacks`.
"""

from __future__ import annotations

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch in the logs (`epoch_time_s`), so history.csv has it."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start
