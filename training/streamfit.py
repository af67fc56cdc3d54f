"""Stream training: fine-tune a recurrent model with its state carried from clip to clip.

A model fitted on single clips from a zero state has never seen the state a
continuous stream leaves behind: on a camera that never resets, LSTM cell
states can grow far beyond their within-clip range and predictions get stuck.
This phase runs after the normal fit. It plays ``B`` parallel streams, each a
seeded random sequence of training clips, and carries every recurrent state
from one clip into the next (no reset inside a stream; all streams restart from
zero at each epoch). The loss is each clip's label on the last part of it
(``tail_share``: half by default), so the model learns to let go of the
previous clip within a few steps. A share of clips (``reset_share``) starts from
the zero state instead, so per-clip accuracy does not regress. Gradients stop
at clip boundaries (truncated back-propagation through time).

The training graph is a functional *stream model* built from the trained
model's own layer objects: the same layers (so the same weights), except that
each LSTM/GRU layer is re-wrapped around its own cell with explicit initial
state inputs and final state outputs, and every recurrent layer returns its
sequence so the head classifies each step. The saved model keeps the normal
architecture; only its weights change.

Layers are classified, and states named, by :mod:`training.layers` exactly as
the step-model builder does (``state_i_h``/``state_i_c``).

Limits: a causal ``Conv1D`` front end (``rnn`` models) still zero-pads each
clip here, whereas the streaming runtime carries its buffer; only LSTM/GRU
states are carried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edge.errors import HybridEdgeError
from training.layers import Role, layer_infos, streaming_problem


@dataclass(frozen=True)
class StreamFitConfig:
    """Settings of the stream fine-tuning phase."""

    epochs: int
    batch_size: int = 16  # parallel streams
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    reset_share: float = 0.5  # share of clips that start from the zero state (quickstart data: 0.902 per-clip test accuracy after the phase; 0.860-0.882 with 0.25)
    tail_share: float = 0.5  # loss on the last half of each clip's real steps: it must switch to a new clip's label quickly
    state_penalty: float = 1.0  # weight of mean(relu(|state| - state_bound)^2) on carried states (bounds LSTM cells)
    state_bound: float = 2.0
    feature_noise: float = 0.1  # std of Gaussian noise on the recurrent stack's input while training
    train_front: bool = True  # also train the layers before the first recurrent layer (the frame encoder)
    cosine: bool = False  # decay the learning rate to 0 over all epochs (cosine) instead of keeping it constant
    seed: int = 0


@dataclass
class StreamModel:
    """Functional view of a trained model with explicit recurrent state.

    Inputs: ``[x, *states]``; outputs: ``[per-step probabilities (B, T, K), *new states]``.
    """

    model: Any
    state_shapes: list[tuple[int, ...]]  # without the batch axis
    mask_value: float | None
    front: list[Any]  # layers before the first recurrent layer
    has_conv_buffer: bool  # a causal Conv1D whose buffer is zeroed per clip here (not carried)

    def zero_states(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, *s), np.float32) for s in self.state_shapes]


def build_stream_model(model: Any, feature_noise: float = 0.0, seed: int = 0) -> StreamModel:
    """The stream model of ``model`` (a linear chain; see :mod:`training.models`), sharing its weights.

    ``feature_noise`` > 0 adds training-only Gaussian noise to the first recurrent layer's input.

    Raises:
        HybridEdgeError: the model has no LSTM/GRU layer or reads the future.
    """
    import keras

    infos = layer_infos(model)
    problem = streaming_problem(model)
    if problem:
        raise HybridEdgeError(f"{problem}; the model cannot be stream-trained")
    x_in = keras.Input(tuple(model.inputs[0].shape[1:]), name="stream_input")
    x = x_in
    state_inputs: list[Any] = []
    state_outputs: list[Any] = []
    shapes: list[tuple[int, ...]] = []
    mask_value = None
    front: list[Any] = []
    for info in infos:
        layer = info.layer
        if info.role is Role.MASKING:
            mask_value = float(layer.mask_value)
        if info.role is Role.RECURRENT and info.states:  # LSTM/GRU: states named as in the bundle
            ins = [keras.Input(s.shape, name=s.name) for s in info.states]
            if feature_noise and not state_inputs:
                x = keras.layers.GaussianNoise(feature_noise, seed=seed, name="stream_feature_noise")(x)
            wrapper = keras.layers.RNN(layer.cell, return_sequences=True, return_state=True, name=f"{layer.name}_stream")
            outs = wrapper(x, initial_state=ins if len(ins) > 1 else ins[0])
            x = outs[0]
            state_inputs += ins
            state_outputs += list(outs[1:])
            shapes += [s.shape for s in info.states]
        else:
            x = layer(x)
            if not state_inputs:
                front.append(layer)
    if not state_inputs:
        raise HybridEdgeError(f"model {model.name!r} has no LSTM/GRU layer to carry state through")
    stream = keras.Model([x_in, *state_inputs], [x, *state_outputs], name=f"{model.name}_stream")
    has_conv = any(info.role is Role.CAUSAL_CONV for info in infos)
    return StreamModel(stream, shapes, mask_value, front, has_conv)


def real_steps(x: np.ndarray, mask_value: float | None) -> np.ndarray:
    """(N, T) bool: steps the model reads (sequence padding equal to ``mask_value`` is skipped)."""
    if mask_value is None or x.ndim != 3:
        return np.ones(x.shape[:2], bool)
    return ~np.all(x == np.float32(mask_value), axis=-1)


def _forward(stream: StreamModel):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(x, states):
        return stream.model([x, *states], training=False)

    return run


def stream_accuracy(stream: StreamModel, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Play ``x`` in order as one stream with no reset; score every real step against the clip playing.

    Returns per-step accuracy, accuracy at each clip's last step, the step count,
    and the largest absolute state value seen (a symptom of unbounded growth).
    """
    run = _forward(stream)
    real = real_steps(x, stream.mask_value)
    states = stream.zero_states(1)
    hits = ends = steps = 0
    state_max = 0.0
    for i in range(len(x)):
        outs = run(x[i : i + 1], states)
        probs = np.asarray(outs[0])[0]
        states = [np.asarray(s) for s in outs[1:]]
        state_max = max(state_max, *(float(np.abs(s).max()) for s in states))
        pred = probs[real[i]].argmax(-1)
        hits += int(np.sum(pred == y[i]))
        steps += len(pred)
        ends += int(len(pred) > 0 and pred[-1] == y[i])
    return {
        "clips": int(len(x)),
        "steps": int(steps),
        "accuracy_per_step": hits / max(steps, 1),
        "accuracy_at_clip_end": ends / max(len(x), 1),
        "state_max_abs": state_max,
    }


def _tail_weights(real: np.ndarray, share: float) -> np.ndarray:
    """(N, T) float: 1 on the last ``share`` of each clip's real steps (at least one), normalised to sum 1 per clip."""
    rank = np.cumsum(real[:, ::-1], axis=1)[:, ::-1]  # 1 at the last real step, 2 before it, ...
    tail = np.maximum(1, np.ceil(share * real.sum(axis=1, keepdims=True)))
    w = (real & (rank <= tail)).astype(np.float32)
    return w / np.maximum(w.sum(axis=1, keepdims=True), 1.0)


def stream_fit(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    cfg: StreamFitConfig,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    progress: Callable[[str], None] = print,
    on_clip: Callable[[int, list[np.ndarray], list[np.ndarray]], None] | None = None,
) -> list[dict[str, float]]:
    """Fine-tune ``model`` in place on carried-state streams; return one metrics dict per epoch.

    With a validation split, the weights of the epoch with the best validation
    score (mean of per-clip accuracy and no-reset per-step stream accuracy) are
    kept. ``on_clip(step, states_in, states_out)`` sees every batch's states
    (tests use it to check the carry).
    """
    import keras
    import tensorflow as tf

    stream = build_stream_model(model, cfg.feature_noise, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n, b = len(x_train), int(cfg.batch_size)
    steps = max(1, -(-n // b))
    weights_all = _tail_weights(real_steps(x_train, stream.mask_value), cfg.tail_share)
    rate = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, cfg.epochs * steps) if cfg.cosine else cfg.learning_rate
    optimizer = keras.optimizers.Adam(rate, clipnorm=cfg.clipnorm or None)
    frozen = set() if cfg.train_front else {id(v) for layer in stream.front for v in layer.trainable_variables}
    variables = [v for v in stream.model.trainable_variables if id(v) not in frozen]
    y_train = np.asarray(y_train, np.int32)

    @tf.function(reduce_retracing=True)
    def train_step(x, y, w, states):
        with tf.GradientTape() as tape:
            outs = stream.model([x, *states], training=True)
            probs = outs[0]
            ce = keras.losses.sparse_categorical_crossentropy(tf.broadcast_to(y[:, None], tf.shape(probs)[:2]), probs)
            loss = tf.reduce_sum(ce * w) / tf.cast(tf.shape(x)[0], tf.float32)
            if cfg.state_penalty:
                excess = [tf.reduce_mean(tf.square(tf.nn.relu(tf.abs(s) - cfg.state_bound))) for s in outs[1:]]
                loss += cfg.state_penalty * tf.add_n(excess)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        hit = tf.cast(tf.equal(tf.argmax(probs[:, -1], -1, output_type=tf.int32), y), tf.float32)
        return loss, tf.reduce_mean(hit), outs[1:]

    from edge.progress import Progress, bars

    bar = Progress(cfg.epochs * steps, "stream training", unit="steps") if bars() else None
    history: list[dict[str, float]] = []
    best_score, best_weights = -1.0, None
    has_val = x_val is not None and y_val is not None and len(y_val) > 0
    for epoch in range(cfg.epochs):
        order = np.concatenate([rng.permutation(n) for _ in range(-(-steps * b // n))])[: steps * b].reshape(b, steps)
        resets = rng.random((steps, b)) < cfg.reset_share
        states = stream.zero_states(b)
        losses, accs = [], []
        for k in range(steps):
            idx = order[:, k]
            keep = (~resets[k]).astype(np.float32)[:, None]
            states_in = [s * keep for s in states]
            loss, acc, new = train_step(x_train[idx], y_train[idx], weights_all[idx], states_in)
            states = [np.asarray(s) for s in new]
            if on_clip is not None:
                on_clip(k, states_in, states)
            losses.append(float(loss))
            accs.append(float(acc))
            if bar is not None:
                bar.update()
        row = {"loss": float(np.mean(losses)), "accuracy": float(np.mean(accs))}
        if has_val:
            row["val_accuracy"] = float(np.mean(np.argmax(model.predict(x_val, verbose=0, batch_size=64), -1) == y_val))
            row["val_stream_accuracy_per_step"] = stream_accuracy(stream, x_val, np.asarray(y_val))["accuracy_per_step"]
            score = (row["val_accuracy"] + row["val_stream_accuracy_per_step"]) / 2
            if score > best_score:
                best_score, best_weights = score, model.get_weights()
        history.append(row)
        val = (f" val_acc {row['val_accuracy']:.3f} val_stream_step_acc {row['val_stream_accuracy_per_step']:.3f}"
               if has_val else "")
        line = f"stream epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.3f} acc {row['accuracy']:.3f}{val}"
        if bar is None:
            progress(line)
        else:
            bar.note(line.split(": ", 1)[1])
    if bar is not None:
        bar.close()
    if best_weights is not None:
        model.set_weights(best_weights)
    return history
