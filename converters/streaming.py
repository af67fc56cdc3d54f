"""Build a *step model* from a trained sequence model, sharing its weights.

Keras 3 LSTM/GRU layers convert to TFLite WHILE loops (and full-int8 conversion
of those crashes), so we export one step instead: the frame (or sample) plus
every recurrent state in, probabilities plus new states out, batch 1. The
session on the board feeds the states back. Cells are built fresh with unique
names (stacked layers would all be called ``lstm_cell``) and the trained
weights are copied in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.errors import ConversionError


@dataclass(frozen=True)
class StepState:
    """One recurrent state tensor of the step model."""

    name: str  # the step model's input name
    output_index: int  # position among the step model's outputs
    units: int


@dataclass(frozen=True)
class StepModel:
    """The Keras step model and how its inputs/outputs are laid out."""

    model: Any
    frame_input: str
    frame_shape: tuple[int, ...]
    states: tuple[StepState, ...]


def _check_safe(model: Any) -> None:
    import keras

    for layer in _walk(model):
        if isinstance(layer, keras.layers.Lambda):
            raise ConversionError(f"layer {layer.name!r} is a Lambda layer; arbitrary code is not converted")


def _walk(model: Any):
    import keras

    for layer in model.layers:
        yield layer
        inner = getattr(layer, "layer", None)
        if isinstance(inner, keras.Model):
            yield from _walk(inner)
        elif isinstance(layer, keras.Model):
            yield from _walk(layer)


def _fresh_cell(layer: Any, index: int) -> tuple[Any, list[int]]:
    """A new named cell with the layer's config and weights; returns (cell, state sizes)."""
    import keras

    cell = layer.cell
    cfg = cell.get_config()
    cfg.update(name=f"rnn_{index}_step", dropout=0.0, recurrent_dropout=0.0)
    if isinstance(layer, keras.layers.LSTM):
        new = keras.layers.LSTMCell.from_config(cfg)
        sizes = [cell.units, cell.units]
    elif isinstance(layer, keras.layers.GRU):
        new = keras.layers.GRUCell.from_config(cfg)
        sizes = [cell.units]
    else:
        raise ConversionError(f"recurrent layer {layer.name!r} ({type(layer).__name__}) has no step form")
    if getattr(layer, "go_backwards", False):
        raise ConversionError(f"layer {layer.name!r} runs backwards in time and cannot stream")
    return new, sizes


def build_step_model(model: Any) -> StepModel:
    """Turn ``clip -> TimeDistributed/RNN/Dense -> probs`` into a one-step model.

    Supports a chain of layers where per-timestep layers are ``TimeDistributed``
    (or act on the last axis), recurrent layers are LSTM/GRU, and the head comes
    after the last recurrent layer.
    """
    import keras

    _check_safe(model)
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    seq_shape = tuple(model.inputs[0].shape[2:])
    frame = keras.Input(seq_shape, batch_size=1, name="frame")
    x = frame
    state_inputs: dict[str, Any] = {}
    state_outputs: list[Any] = []
    states: list[StepState] = []
    rnn_index = 0
    for layer in layers:
        if isinstance(layer, keras.layers.TimeDistributed):
            x = layer.layer(x)
        elif isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            cell, sizes = _fresh_cell(layer, rnn_index)
            names = [f"state_{rnn_index}_h", f"state_{rnn_index}_c"][: len(sizes)]
            ins = [keras.Input((n,), batch_size=1, name=nm) for nm, n in zip(names, sizes)]
            y, new_states = cell(x, ins if len(ins) > 1 else ins[0])
            cell.set_weights(layer.cell.get_weights())
            new_states = new_states if isinstance(new_states, (list, tuple)) else [new_states]
            for nm, inp, out, n in zip(names, ins, new_states, sizes):
                state_inputs[nm] = inp
                states.append(StepState(nm, 1 + len(state_outputs), n))
                state_outputs.append(out)
            x = y
            rnn_index += 1
        elif isinstance(layer, keras.layers.Dropout):
            continue
        elif isinstance(layer, (keras.layers.Dense, keras.layers.Activation, keras.layers.Softmax, keras.layers.BatchNormalization)):
            x = layer(x)
        else:
            raise ConversionError(f"layer {layer.name!r} ({type(layer).__name__}) has no streaming form")
    if not states:
        raise ConversionError("model has no LSTM/GRU layer; convert it with --window (a plain classifier)")
    step = keras.Model({"frame": frame, **state_inputs}, [x, *state_outputs], name=f"{model.name}_step")
    return StepModel(step, "frame", (1, *seq_shape), tuple(states))

