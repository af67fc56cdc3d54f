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
