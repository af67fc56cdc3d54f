"""Build a *step model* from a trained sequence model, sharing its weights.

Keras 3 LSTM/GRU layers convert to TFLite WHILE loops (and full-int8 conversion
of those crashes), so we export one step instead: the frame (or sensor sample)
plus every recurrent state in, probabilities plus new states out, batch 1. The
session on the board feeds the states back.

The walk is generic over a linear chain of layers, classified (and their
states named) by :mod:`training.layers`, the same way stream training sees them:

* ``TimeDistributed(m)`` -> ``m`` applied to the one frame;
* ``LSTM`` / ``GRU`` -> a fresh, uniquely named cell with the trained weights
  (stacked layers would all be called ``lstm_cell``); states ``state_i_h``/``_c``;
* ``Conv1D(padding="causal")`` -> a valid convolution over a buffer of the last
  ``(k-1)*dilation`` inputs, kept as a zero-initialised state ``buffer_i``;
* ``GlobalAveragePooling1D`` (masked) -> a running mean with states
  ``pool_i_mean`` and ``pool_i_count``, kept float32 in every bundle;
* ``Masking`` -> pass-through (the runtime simply does not feed padding);
* ``Dropout`` & co. -> dropped; ``Dense``/``Activation``/normalisation -> applied per step.

A model without any recurrent layer whose input is one image converts as a plain
single-frame classifier. Bidirectional or backwards layers read the future and
are refused for streaming.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConversionError, UnsafeModelError
from training.layers import (
    FLOAT_STATE_KINDS,
    TEMPORAL,
    LayerInfo,
    Role,
    future_problem,
    is_temporal,
    layer_infos,
    mask_value,
    streaming_problem,
    walk_layers,
)


@dataclass(frozen=True)
class StepState:
    """One recurrent state tensor of the step model (batch 1 included in ``shape``)."""

    name: str  # the step model's input name
    output_index: int  # position among the step model's outputs
    shape: tuple[int, ...]
    kind: str  # "lstm_h", "lstm_c", "gru_h", "conv_buffer", "pool_mean" or "pool_count"


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
    first: FirstLayer | None = None  # the causal convolution on the raw samples, if the chain starts with one

    @property
    def state_pairs(self) -> tuple[tuple[str, str], ...]:
        """(signature input, signature output) name of each state."""
        return tuple((s.name, f"output_{s.output_index}") for s in self.states)

    def float_island(self, recurrent: bool = False, first: bool = False) -> FloatIsland:
        """The states an integer graph keeps float32, with the layers that update them: the running mean
        always (:data:`training.layers.FLOAT_STATE_KINDS`); with ``recurrent`` also each LSTM cell state and
        GRU state whose update has the split form (``rnn_i_update``); with ``first`` also the input itself, the
        causal convolution that reads it (with its BatchNorm and activation) and that convolution's buffer."""
        kinds = FLOAT_STATE_KINDS + (RECURRENT_FLOAT_KINDS if recurrent else ())
        layers = [(pair, island_layer(s)) for pair, s in zip(self.state_pairs, self.states) if s.kind in kinds]
        names = {layer.name for layer in self.model.layers}
        kept = [(pair, layer) for pair, layer in layers if layer in names]  # a Keras cell (no split form) stays int8
        pairs, kept_layers = tuple(pair for pair, _ in kept), {layer for _, layer in kept}
        inputs: tuple[str, ...] = ()
        if first and self.first is not None:
            pairs += tuple(pair for pair, s in zip(self.state_pairs, self.states) if s.name in self.first.states)
            kept_layers |= set(self.first.layers)
            inputs = (self.frame_input,)
        return FloatIsland(pairs, tuple(sorted(kept_layers)), inputs)


@dataclass(frozen=True)
class FirstLayer:
    """The step-model layers of a causal convolution applied to the raw samples (with the per-step layers
    right after it: its BatchNorm and activation) and the names of its buffer states."""

    layers: tuple[str, ...]
    states: tuple[str, ...]


#: state kinds an int8 graph can keep float32 with their update (``convert --recurrent-state float``)
RECURRENT_FLOAT_KINDS = ("lstm_c", "gru_h")


@dataclass(frozen=True)
class FloatIsland:
    """States an integer graph keeps float32: (input, output) signature names, and the step-model layers
    whose ops stay float with them."""

    pairs: tuple[tuple[str, str], ...] = ()
    layers: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # signature inputs (not states) that stay float32: the samples

    def __bool__(self) -> bool:
        return bool(self.pairs or self.inputs)


def check_safe(model: Any) -> None:
    """Refuse Lambda layers (arbitrary Python), including inside sub-models.

    Raises:
        UnsafeModelError: a Lambda layer was found.
    """
    import keras

    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.Lambda):
            raise UnsafeModelError(f"layer {layer.name!r} is a Lambda layer; arbitrary code is not converted")


def check_safe_file(path: Path) -> None:
    """Refuse a saved ``.keras`` model whose config holds a Lambda layer, before Keras deserialises it.

    Raises:
        UnsafeModelError: a Lambda layer, at any depth of the saved config.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ConversionError(f"{path}: not a readable .keras model ({exc})") from None

    def classes(node: Any):
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str):
                yield node["class_name"]
            for value in node.values():
                yield from classes(value)
        elif isinstance(node, list):
            for value in node:
                yield from classes(value)

    if "Lambda" in set(classes(config)):
        raise UnsafeModelError(f"{path}: refused to load: the model contains a Lambda layer (arbitrary code)")


def input_kind(model: Any) -> str:
    """``clip`` (T,H,W,C), ``sequence`` (T,F) or ``image`` (H,W,C) from the model's input rank."""
    rank = len(model.inputs[0].shape)
    if rank == 5:
        return "clip"
    if rank == 3:
        return "sequence" if is_temporal(model) else "image"
    if rank == 4:
        return "clip" if is_temporal(model) else "image"
    raise ConversionError(f"model {model.name!r}: input shape {tuple(model.inputs[0].shape)} is not a clip, sequence or image")


def _splits(layer: Any) -> bool:
    """Whether a recurrent layer's step has the split form of :func:`_split_cell`: LSTM, and GRU with
    ``reset_after=True`` (with ``False`` the reset gate acts before a matrix product)."""
    import keras

    return isinstance(layer, keras.layers.LSTM) or (
        isinstance(layer, keras.layers.GRU) and layer.cell.get_config().get("reset_after", True))


def _split_cell(info: LayerInfo, x: Any, states: list[Any]) -> tuple[Any, list[Any]]:
    """One LSTM/GRU step as ``Dense`` matrix products plus the element-wise update layer ``rnn_i_update`` (which
    also sums the products).

    The same function as the Keras cell; the split lets an int8 bundle keep the
    update and its state float32 (:func:`island_layer`)."""
    import keras

    from training.models.layers import GruUpdateStep, LstmUpdateStep

    layer, i = info.layer, info.index
    cfg = layer.cell.get_config()
    acts = {"activation": cfg["activation"], "recurrent_activation": cfg["recurrent_activation"]}
    weights = layer.cell.get_weights()
    units, bias = int(cfg["units"]), bool(cfg["use_bias"])
    if isinstance(layer, keras.layers.LSTM):
        h, c = states
        gx = keras.layers.Dense(4 * units, use_bias=bias, name=f"rnn_{i}_x")
        gh = keras.layers.Dense(4 * units, use_bias=False, name=f"rnn_{i}_h")
        xg, hg = gx(x), gh(h)
        gx.set_weights([weights[0], *weights[2:3]])
        gh.set_weights([weights[1]])
        h_new, c_new = LstmUpdateStep(**acts, name=f"rnn_{i}_update")(xg, hg, c)
        return h_new, [h_new, c_new]
    (h,) = states
    gx = keras.layers.Dense(3 * units, use_bias=bias, name=f"rnn_{i}_x")
    gh = keras.layers.Dense(3 * units, use_bias=bias, name=f"rnn_{i}_h")
    xg, hg = gx(x), gh(h)
    gx.set_weights([weights[0], weights[2][0]] if bias else [weights[0]])
    gh.set_weights([weights[1], weights[2][1]] if bias else [weights[1]])
    h_new = GruUpdateStep(**acts, name=f"rnn_{i}_update")(xg, hg, h)
    return h_new, [h_new]


def island_layer(state: StepState) -> str | None:
    """The step-model layer whose update a state belongs to, if the converter can keep it float32 in int8."""
    if state.kind in ("pool_mean", "pool_count"):
        return "pool_" + state.name.split("_")[1] + "_step"
    if state.kind in ("lstm_c", "gru_h"):
        return "rnn_" + state.name.split("_")[1] + "_update"
    return None


def _fresh_cell(info: LayerInfo) -> Any:
    """A new cell named after the layer's index, with the layer's config (dropout off)."""
    import keras

    layer = info.layer
    cfg = layer.cell.get_config()
    cfg.update(name=f"rnn_{info.index}_step", dropout=0.0, recurrent_dropout=0.0)
    if isinstance(layer, keras.layers.LSTM):
        return keras.layers.LSTMCell.from_config(cfg)
    if isinstance(layer, keras.layers.GRU):
        return keras.layers.GRUCell.from_config(cfg)
    raise ConversionError(f"recurrent layer {layer.name!r} ({type(layer).__name__}) has no step form")


class _Chain:
    """Applies layers to one step's symbolic tensor, collecting state inputs/outputs."""

    def __init__(self) -> None:
        self.state_inputs: dict[str, Any] = {}
        self.state_outputs: list[Any] = []
        self.states: list[StepState] = []
        self.reshape_index = 0
        self.first: FirstLayer | None = None  # see StepModel.first
        self._first_open = True  # still at the raw samples or inside the first layer's per-step tail
        self._made: list[str] = []  # names of the layers the causal-conv and per-step forms built, in order

    def _add_state(self, name: str, shape: tuple[int, ...]) -> Any:
        import keras

        inp = keras.Input(shape[1:], batch_size=1, name=name)
        self.state_inputs[name] = inp
        return inp

    def _bind(self, name: str, kind: str, shape: tuple[int, ...], out: Any) -> None:
        self.states.append(StepState(name, 1 + len(self.state_outputs), shape, kind))
        self.state_outputs.append(out)

    def apply(self, info: LayerInfo, x: Any) -> Any:
        states, made = len(self.states), len(self._made)
        y = self._apply(info, x)
        if self._first_open and info.role not in (Role.INPUT, Role.MASKING, Role.INERT):
            names = tuple(self._made[made:])
            if self.first is None and info.role is Role.CAUSAL_CONV:
                self.first = FirstLayer(names, tuple(s.name for s in self.states[states:]))
            elif self.first is not None and info.role is Role.PER_STEP:
                self.first = FirstLayer(self.first.layers + names, self.first.states)
            else:
                self._first_open = False
        return y

    def _built(self, layer: Any) -> Any:
        """``layer``, its name noted as built for this step (what :attr:`first` lists)."""
        self._made.append(layer.name)
        return layer

    def _apply(self, info: LayerInfo, x: Any) -> Any:
        layer = info.layer
        if info.role is Role.FUTURE:
            raise ConversionError(f"{future_problem(layer)}; it cannot stream, convert with --window")
        if info.role is Role.RECURRENT:
            return self._rnn(info, x)
        if info.role is Role.CAUSAL_CONV:
            return self._causal_conv(info, x)
        if info.role is Role.POOLING:
            return self._pool(info, x)
        if info.role in (Role.MASKING, Role.INERT):
            return x
        if info.role is Role.PER_STEP:
            return self._per_step(layer, x)
        raise ConversionError(f"layer {layer.name!r} ({type(layer).__name__}) has no streaming form")

    def _per_step(self, layer: Any, x: Any) -> Any:
        """Apply a last-axis layer to one step, as the (1, 1, F) sequence it was built for if need be."""
        import keras

        if isinstance(layer, keras.layers.TimeDistributed):
            return self._built(layer.layer)(x)
        built_on = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input  # (x, mask) after Masking
        if len(built_on.shape) != 3:
            return self._built(layer)(x)
        self.reshape_index += 1
        y = self._built(layer)(self._built(keras.layers.Reshape((1, int(x.shape[-1])), name=f"step_in_{self.reshape_index}"))(x))
        return self._built(keras.layers.Reshape((int(y.shape[-1]),), name=f"step_out_{self.reshape_index}"))(y)

    def _rnn(self, info: LayerInfo, x: Any) -> Any:
        ins = [self._add_state(s.name, (1, *s.shape)) for s in info.states]
        if _splits(info.layer):
            y, new_states = _split_cell(info, x, ins)
        else:
            cell = _fresh_cell(info)
            y, new_states = cell(x, ins if len(ins) > 1 else ins[0])
            cell.set_weights(info.layer.cell.get_weights())
            new_states = new_states if isinstance(new_states, (list, tuple)) else [new_states]
        for s, out in zip(info.states, new_states):
            self._bind(s.name, s.kind, (1, *s.shape), out)
        return y

    def _causal_conv(self, info: LayerInfo, x: Any) -> Any:
        """Causal Conv1D as a valid conv over [buffer, x]; the buffer is state."""
        import keras

        layer, i = info.layer, info.index
        cfg = layer.get_config()
        strides = cfg["strides"][0] if isinstance(cfg["strides"], (list, tuple)) else cfg["strides"]
        if strides != 1:
            raise ConversionError(f"layer {layer.name!r}: Conv1D with strides={strides} drops steps; it cannot stream one step at a time")
        channels = int(x.shape[-1])
        cfg.update(name=f"conv1d_{i}_step", padding="valid")
        conv = self._built(keras.layers.Conv1D.from_config(cfg))
        window = self._built(keras.layers.Reshape((1, channels), name=f"conv1d_{i}_frame"))(x)
        for s in info.states:  # the buffer of the last (k-1)*dilation inputs, if any
            buf = self._add_state(s.name, (1, *s.shape))
            window = self._built(keras.layers.Concatenate(axis=1, name=f"conv1d_{i}_window"))([buf, window])
            self._bind(s.name, s.kind, (1, *s.shape), self._built(keras.layers.Cropping1D((1, 0), name=f"conv1d_{i}_shift"))(window))
        y = conv(window)
        conv.set_weights(layer.get_weights())
        return self._built(keras.layers.Reshape((int(y.shape[-1]),), name=f"conv1d_{i}_out"))(y)


    def _pool(self, info: LayerInfo, x: Any) -> Any:
        """Masked global average pooling as a running mean; mean and count are state."""
        from training.models.layers import RunningMeanStep

        mean_s, count_s = info.states
        mean, count = (self._add_state(s.name, (1, *s.shape)) for s in info.states)
        new_mean, new_count = RunningMeanStep(name=f"pool_{info.index}_step")(x, mean, count)
        self._bind(mean_s.name, mean_s.kind, (1, *mean_s.shape), new_mean)
        self._bind(count_s.name, count_s.kind, (1, *count_s.shape), new_count)
        return new_mean


def _first_temporal(infos: list[LayerInfo]) -> int:
    return next((i for i, info in enumerate(infos) if info.role in TEMPORAL), len(infos))


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
    for info in layer_infos(model):
        x = chain.apply(info, x)
    if not chain.states:
        raise ConversionError(f"model {model.name!r} has no recurrent layer; nothing to stream")
    step = keras.Model({in_name: frame, **chain.state_inputs}, [x, *chain.state_outputs], name=f"{model.name}_step")
    return StepModel(step, in_name, (1, *step_shape), tuple(chain.states), kind, mask_value=mask_value(model), first=chain.first)


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
    infos = layer_infos(model)
    cut = _first_temporal(infos)
    front_layers = [info for info in infos[:cut] if info.role not in (Role.INERT, Role.MASKING)]
    if not front_layers:
        raise ConversionError(
            f"model {model.name!r} has no per-step front end before its first recurrent layer; "
            "mixed splits a CNN front end (int8) from the recurrent head, use int8 or int16x8 instead"
        )
    frame = keras.Input(full.frame_shape[1:], batch_size=1, name=full.frame_input)
    chain = _Chain()
    x = frame
    for info in infos[:cut]:
        x = chain.apply(info, x)
    front = keras.Model({full.frame_input: frame}, [x], name=f"{model.name}_front")
    feats = keras.Input(tuple(int(v) for v in x.shape[1:]), batch_size=1, name="features")
    chain = _Chain()
    y = feats
    for info in infos[cut:]:
        y = chain.apply(info, y)
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
