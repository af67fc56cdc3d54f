"""Custom Keras layers of the registered models (imports Keras: load lazily).

Models saved with these layers load through :func:`training.registry.load_keras_model`,
which imports this module first so Keras's safe loader knows them.
"""

from __future__ import annotations

import keras
from keras import ops

from edge.compat import call_takes_training


@keras.saving.register_keras_serializable(package="hybrid_edge")
class FrameEncoder(keras.layers.TimeDistributed):
    """``TimeDistributed`` that runs its sub-model once on all frames of the batch.

    Keras's own ``TimeDistributed`` loops over a static time axis and calls the
    sub-model once per frame, each on a batch of B frames; folding time into the
    batch gives one call on B*T frames, the same arithmetic at about half the
    training time of a small per-frame CNN on two cores. Being a
    ``TimeDistributed``, the streaming converter applies its sub-model to one
    frame exactly as before.
    """

    def call(self, inputs, training=None, mask=None):
        shape = ops.shape(inputs)
        frames = ops.reshape(inputs, (-1, *inputs.shape[2:]))
        kwargs = {"training": training} if call_takes_training(self.layer) else {}
        out = self.layer(frames, **kwargs)
        return ops.reshape(out, (shape[0], shape[1], *out.shape[1:]))


@keras.saving.register_keras_serializable(package="hybrid_edge")
class MaskedConv1D(keras.layers.Conv1D):
    """A causal ``Conv1D`` that sees masked (padding) steps as zeros and passes the mask on.

    A stream starts from a zero buffer; zeroing the padded steps of a front-padded
    batch makes training compute exactly that, at every depth of a conv stack
    (BatchNormalization and ReLU turn padding into non-zero values that a plain
    second convolution would read). The streaming converter treats it as any
    causal ``Conv1D``: a buffer of the last ``(kernel - 1) * dilation`` inputs.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return super().call(inputs)

    def compute_mask(self, inputs, mask=None):
        return mask


@keras.saving.register_keras_serializable(package="hybrid_edge")
class RunningMeanStep(keras.layers.Layer):
    """One step of a masked ``GlobalAveragePooling1D``: ``(x, mean, count) -> (mean', count')``.

    The pooled mean over the steps so far is state, with the number of steps:
    ``n' = n + 1``, ``m' = m + (x - m) / n'``; after a sequence's last step it
    equals the pooling layer's output over the whole (unpadded) sequence.

    The update runs in float32 in every bundle (the converter keeps it out of
    int8): in int8 the increment ``(x - m) / n`` falls below one quantization
    step after a few dozen steps and the mean would freeze.
    """

    def call(self, x, mean, count):
        n = count + 1.0
        return mean + (x - mean) / n, n


class LstmUpdateStep(keras.layers.Layer):
    """The element-wise half of one LSTM step: ``(x W + b, h U, c) -> (h', c')``.

    The matrix products stay ordinary ``Dense`` layers, so they quantize as
    usual; this layer sums them into the gate pre-activations, applies the gate
    activations and the cell update ``c' = f c + i g``, ``h' = o act(c')`` in
    Keras's gate order (i, f, g, o). Converted to int8 with its cell state kept
    float32 (:mod:`converters.tflite`), the cell state keeps its resolution over
    a long stream (in int8 it is one of 256 levels over its whole range, and its
    rounding error feeds back every step), and so does the gate sum, which the
    sigmoids and tanh read where they are steepest.
    """

    def __init__(self, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)

    def call(self, x_gates, h_gates, c):
        i, f, g, o = ops.split(x_gates + h_gates, 4, axis=-1)
        c_new = self.recurrent_activation(f) * c + self.recurrent_activation(i) * self.activation(g)
        return self.recurrent_activation(o) * self.activation(c_new), c_new


class GruUpdateStep(keras.layers.Layer):
    """The element-wise half of one GRU step (``reset_after=True``): ``(x W + b_x, h U + b_h, h) -> h'``.

    Gate order (z, r, candidate) as Keras's ``GRUCell``:
    ``h' = z h + (1 - z) act(x_c + r (h U)_c)``. Kept float32 in int8 bundles
    with its state, for the reason :class:`LstmUpdateStep` gives.
    """

    def __init__(self, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)

    def call(self, x_gates, h_gates, h):
        xz, xr, xc = ops.split(x_gates, 3, axis=-1)
        hz, hr, hc = ops.split(h_gates, 3, axis=-1)
        z = self.recurrent_activation(xz + hz)
        r = self.recurrent_activation(xr + hr)
        return z * h + (1.0 - z) * self.activation(xc + r * hc)
