"""Build a *step model* from a trained sequence model, sharing its weights.

Keras 3 LSTM/GRU layers convert to TFLite WHILE loops (and full-int8 conversion
of those crashes), so we export one step instead: the frame (or sensor sample)
plus every recurrent state in, probabilities plus new states out, batch 1. The
session on the board feeds the states back.

The walk is generic over a linear chain of layers:

* ``TimeDistributed(m)`` -> ``m`` applied to the one frame;
* ``LSTM`` / ``GRU`` -> a fresh, uniquely named cell with the trained weights
  (stacked layers would all be called ``lstm_cell``); states ``state_i_h``/``_c``;
* ``Conv1D(padding="causal")`` -> a valid convolution over a buffer of the last
  ``(k-1)*dilation`` inputs, kept as a zero-initialised state ``buffer_i``;
* ``Masking`` -> pass-through (the runtime simply does not feed padding);
* ``Dropout`` & co. -> dropped; ``Dense``/``Activation``/normalisation -> applied per step.

A model without any recurrent layer whose input is one image converts as a plain
single-frame classifier. Bidirectional or backwards layers read the future and
are refused for streaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.errors import ConversionError

# layers that act on the last axis only, so they apply to one step unchanged
_PER_STEP = ("Dense", "Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU",
             "BatchNormalization", "LayerNormalization")
_SKIPPED = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")


@dataclass(frozen=True)
class StepState:
    """One recurrent state tensor of the step model (batch 1 included in ``shape``)."""

    name: str  # the step model's input name
    output_index: int  # position among the step model's outputs
    shape: tuple[int, ...]
    kind: str  # "lstm_h", "lstm_c", "gru_h" or "conv_buffer"


@dataclass(frozen=True)
class StepModel:
    """A Keras graph to convert and how its inputs/outputs are laid out.

    ``frame_input`` is the name of the per-step input (``frame``, ``sample`` or,
    for the recurrent head of a ``mixed`` bundle, ``features``); output 0 is the
    probabilities (or features, for a CNN front end), then one output per state.
    """

    model: Any
    frame_input: str
    frame_shape: tuple[int, ...]
    states: tuple[StepState, ...]
    input_kind: str  # "clip", "sequence" or "image"
    output_role: str = "probabilities"
    mask_value: float | None = None  # samples equal to it everywhere are skipped


def check_safe(model: Any) -> None:
    """Refuse Lambda layers (arbitrary Python), including inside sub-models."""
    import keras

    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.Lambda):
            raise ConversionError(f"layer {layer.name!r} is a Lambda layer; arbitrary code is not converted")


def walk_layers(model: Any):
    """Every layer, depth first, through sub-models and wrappers."""
    import keras

    for layer in model.layers:
        yield layer
        inner = getattr(layer, "layer", None)
        if inner is not None:
            yield inner
            if isinstance(inner, keras.Model):
                yield from walk_layers(inner)
        for attr in ("forward_layer", "backward_layer"):
            if getattr(layer, attr, None) is not None:
                yield getattr(layer, attr)
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer)


def input_kind(model: Any) -> str:
    """``clip`` (T,H,W,C), ``sequence`` (T,F) or ``image`` (H,W,C) from the model's input rank."""
    rank = len(model.inputs[0].shape)
    if rank == 5:
        return "clip"
    if rank == 3:
        return "sequence" if has_recurrence(model) else "image"
    if rank == 4:
        return "clip" if has_recurrence(model) else "image"
    raise ConversionError(f"model {model.name!r}: input shape {tuple(model.inputs[0].shape)} is not a clip, sequence or image")


def has_recurrence(model: Any) -> bool:
    """True if a top-level layer carries state over time (RNN, Bidirectional, Conv1D)."""
    import keras

    return any(isinstance(l, (keras.layers.RNN, keras.layers.Bidirectional, keras.layers.Conv1D)) for l in model.layers)


def streaming_problem(model: Any) -> str | None:
    """Why the model cannot stream (it reads the future), or None."""
    import keras

    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.Bidirectional):
            return f"layer {layer.name!r} is Bidirectional: its backward half reads future frames"
        if isinstance(layer, keras.layers.RNN) and getattr(layer, "go_backwards", False):
            return f"layer {layer.name!r} runs backwards in time (go_backwards=True)"
        if isinstance(layer, keras.layers.Conv1D) and layer.get_config().get("padding") != "causal":
            return f"layer {layer.name!r} is a Conv1D with padding={layer.get_config().get('padding')!r}; only causal convolutions stream"
    return None


def _fresh_cell(layer: Any, index: int) -> tuple[Any, list[tuple[str, int]]]:
    """A new named cell with the layer's config; returns (cell, [(kind, units)])."""
    import keras

    cell = layer.cell
    cfg = cell.get_config()
    cfg.update(name=f"rnn_{index}_step", dropout=0.0, recurrent_dropout=0.0)
    if isinstance(layer, keras.layers.LSTM):
        return keras.layers.LSTMCell.from_config(cfg), [("lstm_h", cell.units), ("lstm_c", cell.units)]
    if isinstance(layer, keras.layers.GRU):
        return keras.layers.GRUCell.from_config(cfg), [("gru_h", cell.units)]
    raise ConversionError(f"recurrent layer {layer.name!r} ({type(layer).__name__}) has no step form")


class _Chain:
    """Applies layers to one step's symbolic tensor, collecting state inputs/outputs."""

    def __init__(self) -> None:
        self.state_inputs: dict[str, Any] = {}
        self.state_outputs: list[Any] = []
        self.states: list[StepState] = []
        self.rnn_index = 0
        self.conv_index = 0
        self.reshape_index = 0

    def _add_state(self, name: str, shape: tuple[int, ...]) -> Any:
        import keras

        inp = keras.Input(shape[1:], batch_size=1, name=name)
        self.state_inputs[name] = inp
        return inp

    def _bind(self, name: str, kind: str, shape: tuple[int, ...], out: Any) -> None:
        self.states.append(StepState(name, 1 + len(self.state_outputs), shape, kind))
        self.state_outputs.append(out)

    def apply(self, layer: Any, x: Any) -> Any:
        import keras

        kind = type(layer).__name__
        if isinstance(layer, keras.layers.TimeDistributed):
            return layer.layer(x)
        if isinstance(layer, keras.layers.Bidirectional) or getattr(layer, "go_backwards", False):
            raise ConversionError(f"{streaming_problem_for(layer)}; it cannot stream, convert with --window")
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            return self._rnn(layer, x)
        if isinstance(layer, keras.layers.Conv1D):
            return self._causal_conv(layer, x)
        if isinstance(layer, keras.layers.Masking) or kind in _SKIPPED:
            return x
        if kind in _PER_STEP:
            return self._per_step(layer, x)
        raise ConversionError(f"layer {layer.name!r} ({kind}) has no streaming form")

    def _per_step(self, layer: Any, x: Any) -> Any:
        """Apply a last-axis layer to one step, as the (1, 1, F) sequence it was built for if need be."""
        import keras

        built_on = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input  # (x, mask) after Masking
        if len(built_on.shape) != 3:
            return layer(x)
        self.reshape_index += 1
        y = layer(keras.layers.Reshape((1, int(x.shape[-1])), name=f"step_in_{self.reshape_index}")(x))
        return keras.layers.Reshape((int(y.shape[-1]),), name=f"step_out_{self.reshape_index}")(y)

    def _rnn(self, layer: Any, x: Any) -> Any:
        cell, sizes = _fresh_cell(layer, self.rnn_index)
        suffix = {"lstm_h": "h", "lstm_c": "c", "gru_h": "h"}
        names = [f"state_{self.rnn_index}_{suffix[k]}" for k, _ in sizes]
        ins = [self._add_state(nm, (1, n)) for nm, (_, n) in zip(names, sizes)]
        y, new_states = cell(x, ins if len(ins) > 1 else ins[0])
        cell.set_weights(layer.cell.get_weights())
        new_states = new_states if isinstance(new_states, (list, tuple)) else [new_states]
        for nm, (k, n), out in zip(names, sizes, new_states):
            self._bind(nm, k, (1, n), out)
        self.rnn_index += 1
        return y

    def _causal_conv(self, layer: Any, x: Any) -> Any:
        """Causal Conv1D as a valid conv over [buffer, x]; the buffer is state."""
        import keras

        cfg = layer.get_config()
        if cfg.get("padding") != "causal":
            raise ConversionError(f"layer {layer.name!r}: Conv1D padding={cfg.get('padding')!r} is not causal; it cannot stream")
        strides = cfg["strides"][0] if isinstance(cfg["strides"], (list, tuple)) else cfg["strides"]
        if strides != 1:
            raise ConversionError(f"layer {layer.name!r}: Conv1D with strides={strides} drops steps; it cannot stream one step at a time")
        k = cfg["kernel_size"][0] if isinstance(cfg["kernel_size"], (list, tuple)) else cfg["kernel_size"]
        d = cfg["dilation_rate"][0] if isinstance(cfg["dilation_rate"], (list, tuple)) else cfg["dilation_rate"]
        channels = int(x.shape[-1])
        i = self.conv_index
        self.conv_index += 1
        cfg.update(name=f"conv1d_{i}_step", padding="valid")
        conv = keras.layers.Conv1D.from_config(cfg)
        window = keras.layers.Reshape((1, channels), name=f"conv1d_{i}_frame")(x)
        history = (k - 1) * d
        if history:
            name = f"buffer_{i}"
            buf = self._add_state(name, (1, history, channels))
            window = keras.layers.Concatenate(axis=1, name=f"conv1d_{i}_window")([buf, window])
            self._bind(name, "conv_buffer", (1, history, channels), keras.layers.Cropping1D((1, 0), name=f"conv1d_{i}_shift")(window))
        y = conv(window)
        conv.set_weights(layer.get_weights())
        return keras.layers.Reshape((int(y.shape[-1]),), name=f"conv1d_{i}_out")(y)


def streaming_problem_for(layer: Any) -> str:
    import keras

    if isinstance(layer, keras.layers.Bidirectional):
        return f"layer {layer.name!r} is Bidirectional: its backward half reads future frames"
    return f"layer {layer.name!r} runs backwards in time (go_backwards=True)"


def _layers(model: Any) -> list[Any]:
    import keras

    return [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]


def _mask_value(model: Any) -> float | None:
    """The Masking value if the mask really reaches the first recurrent layer.

    Keras drops a mask at any layer that does not support masking (a Conv1D, for
    instance); then padding is computed on like data and must be fed, not skipped.
    """
    import keras

    value = None
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Masking):
            value = float(layer.mask_value)
        elif isinstance(layer, keras.layers.RNN):
            return value
        elif value is not None and not getattr(layer, "supports_masking", False):
            return None
    return value


def _first_stateful(layers: list[Any]) -> int:
    import keras

    for i, layer in enumerate(layers):
        if isinstance(layer, (keras.layers.RNN, keras.layers.Conv1D, keras.layers.Bidirectional)):
            return i
    return len(layers)


def build_step_model(model: Any) -> StepModel:
    """Turn ``sequence -> per-step layers/RNN/head -> probs`` into a one-step model.

    Raises:
        ConversionError: a Lambda layer, a layer with no streaming form, or a
            layer that reads the future (Bidirectional, go_backwards).
    """
    import keras

    check_safe(model)
    kind = input_kind(model)
    if kind == "image":
        return build_single_model(model)
    problem = streaming_problem(model)
    if problem:
        raise ConversionError(f"model {model.name!r} cannot stream: {problem}; convert it with --window")
    step_shape = tuple(int(v) for v in model.inputs[0].shape[2:])
    in_name = "frame" if kind == "clip" else "sample"
    frame = keras.Input(step_shape, batch_size=1, name=in_name)
    chain = _Chain()
    x = frame
    for layer in _layers(model):
        x = chain.apply(layer, x)
    if not chain.states:
        raise ConversionError(f"model {model.name!r} has no recurrent layer; nothing to stream")
    step = keras.Model({in_name: frame, **chain.state_inputs}, [x, *chain.state_outputs], name=f"{model.name}_step")
    return StepModel(step, in_name, (1, *step_shape), tuple(chain.states), kind, mask_value=_mask_value(model))


def split_step_model(model: Any) -> tuple[StepModel, StepModel]:
    """The step model cut in two for ``mixed`` bundles: a stateless front end and a stateful head.

    The front end is every layer before the first recurrent/causal-conv layer (the
    per-frame CNN); its output is the ``features`` the head takes.

    Raises:
        ConversionError: the model has no per-frame front end to cut off.
    """
    import keras

    full = build_step_model(model)
    if full.input_kind == "image":
        raise ConversionError(f"model {model.name!r} has no recurrent head; mixed needs a CNN front end and a recurrent head")
    layers = _layers(model)
    cut = _first_stateful(layers)
    front_layers = [l for l in layers[:cut] if type(l).__name__ not in _SKIPPED and not isinstance(l, keras.layers.Masking)]
    if not front_layers:
        raise ConversionError(
            f"model {model.name!r} has no per-step front end before its first recurrent layer; "
            "mixed splits a CNN front end (int8) from the recurrent head, use int8 or int16x8 instead"
        )
    frame = keras.Input(full.frame_shape[1:], batch_size=1, name=full.frame_input)
    chain = _Chain()
    x = frame
    for layer in layers[:cut]:
        x = chain.apply(layer, x)
    front = keras.Model({full.frame_input: frame}, [x], name=f"{model.name}_front")
    feats = keras.Input(tuple(int(v) for v in x.shape[1:]), batch_size=1, name="features")
    chain = _Chain()
    y = feats
    for layer in layers[cut:]:
        y = chain.apply(layer, y)
    head = keras.Model({"features": feats, **chain.state_inputs}, [y, *chain.state_outputs], name=f"{model.name}_head")
    return (
        StepModel(front, full.frame_input, full.frame_shape, (), full.input_kind, output_role="features", mask_value=full.mask_value),
        StepModel(head, "features", (1, *feats.shape[1:]), tuple(chain.states), full.input_kind, mask_value=full.mask_value),
    )


def build_single_model(model: Any) -> StepModel:
    """A plain image classifier with a batch-1 ``frame`` input (no state)."""
    import keras

    check_safe(model)
    shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    frame = keras.Input(shape, batch_size=1, name="frame")
    single = keras.Model({"frame": frame}, [model(frame)], name=f"{model.name}_single")
    return StepModel(single, "frame", (1, *shape), (), "image")


def build_window_model(model: Any, length: int | None = None) -> StepModel:
    """The whole-clip model with a fixed batch-1 input (``--window``): no external state.

    ``length`` fixes T for models trained on variable-length sequences.
    """
    import keras

    check_safe(model)
    kind = input_kind(model)
    if kind == "image":
        return build_single_model(model)
    shape = tuple(model.inputs[0].shape[1:])
    if shape[0] is None and length:
        shape = (int(length), *shape[1:])
    if any(v is None or v <= 0 for v in shape):
        raise ConversionError(f"model {model.name!r}: --window needs a fixed clip length, got input shape {shape}")
    name = "frame" if kind == "clip" else "sample"
    clip = keras.Input(shape, batch_size=1, name=name)
    window = keras.Model({name: clip}, _unrolled(model, clip).outputs, name=f"{model.name}_window")
    return StepModel(window, name, (1, *shape), (), kind, mask_value=None)


def _unrolled(model: Any, clip: Any) -> Any:
    """A copy of ``model`` with every recurrent layer unrolled over its fixed length.

    A rolled Keras 3 LSTM/GRU becomes a TensorList WHILE loop that the builtin op
    set cannot express; unrolled, the window is a plain feed-forward graph.
    """
    import keras

    def clone(layer: Any) -> Any:
        cfg = layer.get_config()
        if isinstance(layer, keras.layers.RNN):
            cfg["unroll"] = True
        elif isinstance(layer, keras.layers.Bidirectional):
            cfg["layer"]["config"]["unroll"] = True
            if cfg.get("backward_layer"):
                cfg["backward_layer"]["config"]["unroll"] = True
        return layer.__class__.from_config(cfg)

    copy = keras.models.clone_model(model, input_tensors=clip, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
