"""Recurrent language models: a GRU recurrence with a hand-written gradient (`gru_recurrence`),
the `HoistedGRU` layer built on it, and `build_language_model`.

`build_language_model` returns a training model (token ids in, next-token logits out) and a
*step model* that shares its layers and also takes and returns the recurrent states, so a prime
runs through the RNN in one call and sampling then continues from the kept state.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers, ops


def gru_recurrence(projected: tf.Tensor, initial_state: tf.Tensor, recurrent_kernel: tf.Tensor,
                   recurrent_bias: tf.Tensor) -> tf.Tensor:
    """The GRU recurrence (Keras's math, reset gate after the product) over precomputed inputs.

    Args:
        projected: (time, batch, 3 * units), every step's `x_t @ kernel + input_bias`, gates in
            Keras's order z, r, h.
        initial_state: (batch, units).
        recurrent_kernel: (units, 3 * units).
        recurrent_bias: (3 * units,).

    Returns:
        The states, (time, batch, units).

    The gradient is written by hand. Differentiating the loop lets TensorFlow accumulate the
    recurrent kernel's gradient inside the backward loop, one thin (units x batch) @ (batch x
    3 * units) product per step; here the backward loop only carries the state's gradient
    (one product per step) and the kernel's gradient is a single wide product over all steps
    afterwards.
    """
    units = recurrent_kernel.shape[0]

    @tf.custom_gradient
    def recurrence(projected, initial_state, recurrent_kernel, recurrent_bias):
        states, updates, resets, candidates, inner_candidates = _gru_scan(
            projected, initial_state, recurrent_kernel, recurrent_bias)

        def gradient(upstream):
            zeros = tf.zeros_like(initial_state)
            previous_states = tf.concat([initial_state[None], states[:-1]], axis=0)
            transposed_kernel = tf.transpose(recurrent_kernel)

            def back(carry, inputs):
                upstream_t, previous, update, reset, candidate, inner_candidate = inputs
                d_state = carry[0] + upstream_t
                d_update = d_state * (previous - candidate) * update * (1.0 - update)
                d_candidate = d_state * (1.0 - update) * (1.0 - candidate * candidate)
                d_reset = d_candidate * inner_candidate * reset * (1.0 - reset)
                d_inner = tf.concat([d_update, d_reset, d_candidate * reset], axis=-1)
                d_previous = d_state * update + tf.matmul(d_inner, transposed_kernel)
                return d_previous, d_inner, d_candidate

            d_previous, d_inner, d_candidate = tf.scan(
                back, (upstream, previous_states, updates, resets, candidates, inner_candidates),
                initializer=(zeros, tf.zeros_like(projected[0]), zeros), reverse=True)
            d_projected = tf.concat([d_inner[..., :2 * units], d_candidate], axis=-1)
            d_kernel = tf.einsum("tbu,tbg->ug", previous_states, d_inner)
            return d_projected, d_previous[0], d_kernel, tf.reduce_sum(d_inner, axis=(0, 1))

        return states, gradient

    return recurrence(projected, initial_state, recurrent_kernel, recurrent_bias)


def _gru_scan(projected, initial_state, recurrent_kernel, recurrent_bias):
    """The GRU's forward loop: (states, update gates, reset gates, candidates, the recurrent
    half of the candidates), each (time, batch, units)."""
    units = recurrent_kernel.shape[0]

    def step(carry, projected_t):
        previous = carry[0]
        inner = tf.matmul(previous, recurrent_kernel) + recurrent_bias
        gates = tf.sigmoid(projected_t[:, :2 * units] + inner[:, :2 * units])
        update, reset = gates[:, :units], gates[:, units:]
        inner_candidate = inner[:, 2 * units:]
        candidate = tf.tanh(projected_t[:, 2 * units:] + reset * inner_candidate)
        state = candidate + update * (previous - candidate)
        return state, update, reset, candidate, inner_candidate

    zeros = tf.zeros_like(initial_state)
    return tf.scan(step, projected, initializer=(initial_state, zeros, zeros, zeros, zeros))


# Saved models name the layer "keras_labs>HoistedGRU": keep the package and class name.
@keras.saving.register_keras_serializable(package="keras_labs")
class HoistedGRU(layers.Layer):
    """A GRU (Keras's `GRU` math: reset gate after the product, gates z, r, h) that computes
    the input projection of every time step in one matrix product before the recurrence.

    Keras's CPU GRU multiplies each step's input by the kernel inside its loop: for a batch of
    64 that is a hundred thin products where one wide one does the same work. Hoisting it out
    leaves only `h @ recurrent_kernel` in the loop, and `gru_recurrence`'s hand-written
    gradient does the same for the backward pass. Weights have the shapes and order of
    `keras.layers.GRU`'s, so they load into either.

    Call: `sequence, state = layer(inputs, initial_state=[h0])` (`initial_state` optional).
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.units),
                                      initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units),
                                                initializer="orthogonal", name="recurrent_kernel")
        self.bias = self.add_weight(shape=(2, 3 * self.units), initializer="zeros", name="bias")

    def _recurrence_inputs(self, inputs, initial_state):
        """(projected inputs, initial state, recurrent kernel, recurrent bias) of `gru_recurrence`."""
        kernel = ops.cast(self.kernel, self.compute_dtype)
        recurrent_kernel = ops.cast(self.recurrent_kernel, self.compute_dtype)
        bias = ops.cast(self.bias, self.compute_dtype)
        # Keras's Embedding hands on its float32 table's rows under mixed_bfloat16 too, and
        # oneDNN's einsum takes no mixed dtypes.
        inputs = ops.cast(inputs, self.compute_dtype)
        # (time, batch, 3 * units): the input half of every gate, for all steps at once.
        projected = tf.einsum("btf,fg->tbg", inputs, kernel) + bias[0]
        if initial_state is None:
            state = tf.zeros((tf.shape(inputs)[0], self.units), self.compute_dtype)
        else:
            state = ops.cast(initial_state[0], self.compute_dtype)
        return projected, state, tf.convert_to_tensor(recurrent_kernel), bias[1]

    def call(self, inputs, initial_state=None):
        states = gru_recurrence(*self._recurrence_inputs(inputs, initial_state))
        return tf.transpose(states, (1, 0, 2)), states[-1]

    def state_sequences(self, inputs, initial_state=None) -> dict[str, tf.Tensor]:
        """Every step's state and gates, (batch, time, units) each, for TensorBoard's probes
        (`instrumentation.HiddenStates`): "hidden_states", "gates/update", "gates/reset" and
        "gates/candidate" (the candidate state the update gate mixes in). Forward only."""
        states, updates, resets, candidates, _ = _gru_scan(
            *self._recurrence_inputs(inputs, initial_state))
        sequences = {"hidden_states": states, "gates/update": updates, "gates/reset": resets,
                     "gates/candidate": candidates}
        return {key: tf.transpose(value, (1, 0, 2)) for key, value in sequences.items()}

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        return (inputs_shape[0], inputs_shape[1], self.units), (inputs_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build_language_model(vocabulary_size: int, *, cell: str = "gru", units: int = 256,
                         num_layers: int = 2, embedding_dim: int = 64, dropout: float = 0.0,
                         compute_dtype: str = "float32", name: str = "language_model",
                         implementation: str = "keras"
                         ) -> tuple[keras.Model, keras.Model, list[int]]:
    """An embedding, a stack of GRU or LSTM layers and a softmax head over the vocabulary.

    Args:
        vocabulary_size: Output classes (id 0 is the out-of-vocabulary token).
        cell: "gru" or "lstm".
        units: Width of every recurrent layer.
        num_layers: Recurrent layers stacked.
        embedding_dim: Width of the token embedding.
        dropout: Dropout on the embedding and between layers (training only).
        compute_dtype: "float32", or "bfloat16" to run the matrix products in bfloat16 (worth
            it only with hardware support: GPUs, CPUs with AVX512-BF16 or AMX; emulated, it is
            slower); weights, logits and states stay float32.
        name: The training model's name.
        implementation: "keras" (`keras.layers.GRU`/`LSTM`: cuDNN on a GPU) or "hoisted"
            (GRU only: `HoistedGRU`, faster on a CPU).

    Returns:
        (training model: ids (batch, time) -> logits (batch, time, vocabulary);
         step model: [ids, *states] -> [logits, *states], sharing the training model's weights;
         the width of each state tensor, in the order the step model takes them).
    """
    if cell not in ("gru", "lstm"):
        raise ValueError(f"cell={cell!r} is not valid; valid values: gru, lstm")
    if implementation not in ("keras", "hoisted"):
        raise ValueError(f"implementation={implementation!r} is not valid; valid values: keras, "
                         "hoisted")
    if implementation == "hoisted" and cell != "gru":
        raise ValueError(f"implementation='hoisted' is a GRU; cell={cell!r} needs 'keras'")
    if compute_dtype not in ("float32", "bfloat16"):
        raise ValueError(f"compute_dtype={compute_dtype!r} is not valid; valid values: "
                         "float32, bfloat16")
    policy = "mixed_bfloat16" if compute_dtype == "bfloat16" else None
    embedding = layers.Embedding(vocabulary_size, embedding_dim, name="embedding", dtype=policy)
    recurrent = []
    for index in range(1, num_layers + 1):
        if implementation == "hoisted":
            recurrent.append(HoistedGRU(units, name=f"{cell}{index}", dtype=policy))
            continue
        layer_class = layers.GRU if cell == "gru" else layers.LSTM
        recurrent.append(layer_class(units, return_sequences=True, return_state=True,
                                     name=f"{cell}{index}", dtype=policy))
    dropouts = [layers.Dropout(dropout, name=f"dropout{index}") for index in range(num_layers + 1)]
    head = layers.Dense(vocabulary_size, name="logits", dtype="float32")
    states_per_layer = 1 if cell == "gru" else 2

    def stack(ids, initial_states=None):
        x = dropouts[0](embedding(ids))
        final_states = []
        for index, layer in enumerate(recurrent):
            initial = None
            if initial_states is not None:
                initial = initial_states[index * states_per_layer:(index + 1) * states_per_layer]
            x, *states = layer(x, initial_state=initial)
            final_states.extend(ops.cast(state, "float32") for state in states)
            x = dropouts[index + 1](x)
        return head(x), final_states

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    logits, _ = stack(ids)
    model = keras.Model(ids, logits, name=name)

    step_ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    state_inputs = [keras.Input(shape=(units,), name=f"state{index}")
                    for index in range(num_layers * states_per_layer)]
    step_logits, step_states = stack(step_ids, state_inputs)
    step_model = keras.Model([step_ids, *state_inputs], [step_logits, *step_states],
                             name=f"{name}_step")
    return model, step_model, [units] * len(state_inputs)


def zero_states(state_sizes: Sequence[int], batch_size) -> list[tf.Tensor]:
    """Float32 zero states of `batch_size` rows, one per width of `state_sizes`."""
    return [tf.zeros((batch_size, size), tf.float32) for size in state_sizes]
