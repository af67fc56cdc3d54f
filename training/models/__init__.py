"""Model builders; each module registers its models with :mod:`training.registry`.

Contract with :mod:`converters.streaming` (which builds a one-step model from
a trained sequence model by walking its layers) — every model registered with
``streamable=True`` keeps it:

Input kinds (``training.registry.InputKind``, recorded in the model card as
``input.kind``):

* ``clip`` — (T, H, W, C) float frames (``cnn_lstm``, ``cnn_gru``): one step is one frame;
* ``sequence`` — (T, F) float feature vectors (``rnn``, ``tcn``): one step is one sample;
  T is ``None`` (any length) unless the config fixes ``timesteps``;
* ``image`` — (H, W, C) (``cnn``): no time axis, never streamable.

Layers: the model is a linear chain (one input, one output) of

* ``InputLayer``;
* ``TimeDistributed(frame_encoder)`` — the per-frame encoder sub-model is named
  ``frame_encoder`` (its wrapper ``frame_encoder_td``); a step applies the sub-model;
* ``Conv1D(padding="causal")`` (``conv_0``; may be dilated, has no bias; or
  ``MaskedConv1D``, which reads masked steps as zeros so that a stack of them
  computes what a stream from zero buffers computes) — a step keeps a buffer
  state of the last ``(kernel - 1) * dilation`` inputs, zero-initialised;
* ``GlobalAveragePooling1D`` (``pool``, masked) — the mean over the real steps;
  a step keeps the running mean and the step count (float32 in every bundle);
* ``Masking`` (``mask``, ``mask_value=0.0``) — identity for a step (the runtime
  streams real steps only, see below);
* ``LSTM`` / ``GRU`` named ``rnn_0``, ``rnn_1``, … (every one but the last
  returns sequences; the last one's output feeds the head);
* ``Dropout`` (identity), ``Dense`` (the head is ``classifier``, softmax),
  ``Activation``, ``BatchNormalization``, ``LayerNormalization`` — per step.

``Bidirectional`` layers (``rnn_bidir``) read the future and are registered
``streamable=False``.

Variable length: sequences are padded at the *front* with zeros after
preprocessing (loaders mark padding as NaN in the raw arrays and carry
``Split.lengths``; ``edge.preprocess.Preprocessing.normalize`` standardises and turns padding
into 0.0). ``mask`` sits after the bias-free causal conv, so padded steps are
exactly zero there and are skipped by the recurrent layers. Hence the model's
output for a front-padded sequence equals its output for the real steps alone,
which is what streaming those steps from zero state (zero conv buffer, zero
recurrent state) gives. Corner case: a real step that is exactly zero in every
feature at ``mask`` is skipped by Keras but not by a step model; with float
sensor data this does not occur in practice.
"""
