"""What each layer of a linear Keras model does in time, and what its state is called.

One classification serves stream training (:mod:`training.streamfit`) and the
step-model builder (:mod:`converters.streaming`): which layers carry state from
step to step, which read future steps, which act on one step alone. The state
names are the bundle's: recurrent layer ``i`` has ``state_i_h`` (and, for an
LSTM, ``state_i_c``); causal convolution ``j`` keeps its past inputs in
``buffer_j``; pooling layer ``k`` (a masked ``GlobalAveragePooling1D``, the
running mean) keeps ``pool_k_mean`` and ``pool_k_count``. Counters run over the
top-level layers in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator

# layers that act on the last axis only, so they apply to one step unchanged
_PER_STEP = ("Dense", "Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU",
             "BatchNormalization", "LayerNormalization")
_INERT = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")


class Role(Enum):
    """What a top-level layer does along the time axis."""

    INPUT = "input"
    PER_STEP = "per_step"  # one step alone: Dense, activations, normalisation, TimeDistributed(m)
    INERT = "inert"  # nothing at inference: Dropout & co.
    MASKING = "masking"  # marks padding; the runtime simply does not feed it
    RECURRENT = "recurrent"  # LSTM/GRU (any RNN): carries its state from step to step
    CAUSAL_CONV = "causal_conv"  # Conv1D(padding="causal"): carries a buffer of past inputs
    POOLING = "pooling"  # GlobalAveragePooling1D over time: carries the running mean and the step count
    FUTURE = "future"  # Bidirectional, go_backwards, non-causal Conv1D: reads later steps
    OTHER = "other"  # no known step form


#: roles of layers that mix steps: a model with one is a sequence model
TEMPORAL = (Role.RECURRENT, Role.CAUSAL_CONV, Role.POOLING, Role.FUTURE)

#: state kinds a bundle keeps in float32 whatever its precision (see :class:`training.models.layers.RunningMeanStep`)
FLOAT_STATE_KINDS = ("pool_mean", "pool_count")


@dataclass(frozen=True)
class LayerState:
    """One state a layer carries between steps (``shape`` without the batch axis)."""

    name: str
    kind: str  # "lstm_h", "lstm_c", "gru_h", "conv_buffer", "pool_mean" or "pool_count"
    shape: tuple[int, ...]


@dataclass(frozen=True)
class LayerInfo:
    """A top-level layer, its role and the states it carries (named by the bundle scheme)."""

    layer: Any
    role: Role
    states: tuple[LayerState, ...] = ()
    index: int = -1  # the layer's number among its kind (recurrent i, convolution j, pooling k); -1 for the others


def future_problem(layer: Any) -> str | None:
    """Why ``layer`` reads future steps (so it cannot stream), or None."""
    import keras

    if isinstance(layer, keras.layers.Bidirectional):
        return f"layer {layer.name!r} is Bidirectional: its backward half reads future frames"
    if isinstance(layer, keras.layers.RNN) and getattr(layer, "go_backwards", False):
        return f"layer {layer.name!r} runs backwards in time (go_backwards=True)"
    if isinstance(layer, keras.layers.Conv1D) and layer.get_config().get("padding") != "causal":
        return f"layer {layer.name!r} is a Conv1D with padding={layer.get_config().get('padding')!r}; only causal convolutions stream"
    return None


def role_of(layer: Any) -> Role:
    """The :class:`Role` of one layer."""
    import keras

    kind = type(layer).__name__
    if future_problem(layer):
        return Role.FUTURE
    if isinstance(layer, keras.layers.InputLayer):
        return Role.INPUT
    if isinstance(layer, keras.layers.RNN):
        return Role.RECURRENT
    if isinstance(layer, keras.layers.Conv1D):
        return Role.CAUSAL_CONV
    if isinstance(layer, keras.layers.Masking):
        return Role.MASKING
    if isinstance(layer, keras.layers.GlobalAveragePooling1D):
        cfg = layer.get_config()
        return Role.POOLING if cfg.get("data_format", "channels_last") == "channels_last" and not cfg.get("keepdims") else Role.OTHER
    if kind in _INERT:
        return Role.INERT
    if isinstance(layer, keras.layers.TimeDistributed) or kind in _PER_STEP:
        return Role.PER_STEP
    return Role.OTHER


def _recurrent_states(layer: Any, i: int) -> tuple[LayerState, ...]:
    import keras

    units = int(layer.cell.units) if hasattr(layer.cell, "units") else 0
    if isinstance(layer, keras.layers.LSTM):
        return LayerState(f"state_{i}_h", "lstm_h", (units,)), LayerState(f"state_{i}_c", "lstm_c", (units,))
    if isinstance(layer, keras.layers.GRU):
        return (LayerState(f"state_{i}_h", "gru_h", (units,)),)
    return ()  # another RNN: no step form


def _conv_states(layer: Any, j: int) -> tuple[LayerState, ...]:
    cfg = layer.get_config()
    k = cfg["kernel_size"][0] if isinstance(cfg["kernel_size"], (list, tuple)) else cfg["kernel_size"]
    d = cfg["dilation_rate"][0] if isinstance(cfg["dilation_rate"], (list, tuple)) else cfg["dilation_rate"]
    history = (k - 1) * d
    return (LayerState(f"buffer_{j}", "conv_buffer", (history, int(layer.kernel.shape[1]))),) if history else ()


def _pool_states(layer: Any, k: int) -> tuple[LayerState, ...]:
    channels = int(layer.output.shape[-1])
    return LayerState(f"pool_{k}_mean", "pool_mean", (channels,)), LayerState(f"pool_{k}_count", "pool_count", (1,))


def layer_infos(model: Any) -> list[LayerInfo]:
    """Every top-level layer but the input, with its role and named states."""
    out: list[LayerInfo] = []
    rnn = conv = pool = 0
    for layer in model.layers:
        role = role_of(layer)
        if role is Role.INPUT:
            continue
        if role is Role.RECURRENT:
            out.append(LayerInfo(layer, role, _recurrent_states(layer, rnn), rnn))
            rnn += 1
        elif role is Role.CAUSAL_CONV:
            out.append(LayerInfo(layer, role, _conv_states(layer, conv), conv))
            conv += 1
        elif role is Role.POOLING:
            out.append(LayerInfo(layer, role, _pool_states(layer, pool), pool))
            pool += 1
        else:
            out.append(LayerInfo(layer, role))
    return out


def walk_layers(model: Any) -> Iterator[Any]:
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


def streaming_problem(model: Any) -> str | None:
    """Why the model cannot stream (a layer, at any depth, reads the future), or None."""
    return next((p for p in map(future_problem, walk_layers(model)) if p), None)


def is_temporal(model: Any) -> bool:
    """True if a top-level layer mixes steps (RNN, Bidirectional, Conv1D, pooling over time): a sequence model."""
    return any(role_of(layer) in TEMPORAL for layer in model.layers)


def carries_state(model: Any) -> bool:
    """True if a top-level LSTM/GRU layer has a state a stream can carry."""
    return any(info.role is Role.RECURRENT and info.states for info in layer_infos(model))


def mask_value(model: Any) -> float | None:
    """The Masking value if the mask really reaches the first recurrent or pooling layer.

    Keras drops a mask at any layer that does not support masking (a Conv1D, for
    instance); then padding is computed on like data and must be fed, not skipped.
    """
    value = None
    for info in layer_infos(model):
        if info.role is Role.MASKING:
            value = float(info.layer.mask_value)
        elif info.role in (Role.RECURRENT, Role.POOLING):
            return value
        elif value is not None and not getattr(info.layer, "supports_masking", False):
            return None
    return value
