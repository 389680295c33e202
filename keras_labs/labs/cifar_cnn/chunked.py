"""A leaner multi-step training execution for small batches: `ChunkedExecution`.

With `steps_per_execution` > 1, Keras 3.15's TensorFlow trainer reads every step's batch from
the iterator as a `tf.experimental.Optional` and runs the step inside a `tf.cond` of a
`tf.while_loop`, so that a finite input may end inside an execution. At batch 4 on a CPU, where
one step of the report-004 network takes under a millisecond, that per-step plumbing and the
per-step call into tf.data are measurable: with them an epoch took 1.04-1.80x as long (median
1.19x) in 5 interleaved rounds (`results/benchmarks/cifar-chunked-vs-pytorch.json`, variants
keras-lab and keras-lab-stock of `scripts/benchmark_cifar.py`). The labs' training inputs
are endless streams (`training.Backup.stream`), so an execution never meets the end of its
input: it can read its `steps_per_execution` batches as one element of the stream batched once
more, and step through them in a plain loop. The steps, their order, the batches and the logs
are Keras's own.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _step_slice(chunk, step):
    return tf.nest.map_structure(lambda tensor: tensor[step], chunk)


class ChunkedExecution(keras.Model):
    """A model whose `fit` takes `steps_per_execution` batches as one input element.

    Build it from a functional model (`ChunkedExecution(model.input, model.output,
    name=model.name)` shares the model's layers and weights) and give `fit` an endless stream
    batched once more by `batches_per_element` (`training.Backup.stream` does both). Each
    execution then reads one element and runs `train_step` on each of its batches in turn. On
    several replicas, or with one step per execution, the model is Keras's own: one batch per
    element.
    """

    @property
    def batches_per_element(self) -> int:
        """Batches in one element of the training input `fit` expects."""
        if self.steps_per_execution > 1 and self.distribute_strategy.num_replicas_in_sync == 1:
            return int(self.steps_per_execution)
        return 1

    def make_train_function(self, force=False):
        steps = self.batches_per_element
        if steps == 1:
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        train_step = self.train_step
        if self.jit_compile:
            train_step = tf.function(train_step, jit_compile=True, reduce_retracing=True)

        # Not autograph: `train_step` stays the Python Keras traces in its own loop.
        @tf.autograph.experimental.do_not_convert
        def execution(iterator):
            chunk = next(iterator)
            logs = train_step(_step_slice(chunk, 0))

            def body(step, _):
                return step + 1, train_step(_step_slice(chunk, step))

            _, logs = tf.while_loop(lambda step, _: step < steps, body, (tf.constant(1), logs))
            return logs

        if not self.run_eagerly:
            execution = tf.function(execution, reduce_retracing=True)
        self.train_function = execution
        return execution
