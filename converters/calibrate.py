"""Representative data for int8 calibration, recurrent states included.

Quantization ranges of state inputs must come from states the float model
really produces, so we run the float step model over real sequences and record
each step's inputs: the frame *and* the incoming state (the zero initial state
is the first step of every sequence). Samples are dicts keyed by input name —
a positional list in the wrong order fails inside the converter with a
misleading error.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from converters.streaming import StepModel
from edge.errors import ConversionError


def collect_samples(step: StepModel, sequences: np.ndarray, max_samples: int, stream_fraction: float = 0.0) -> list[dict[str, np.ndarray]]:
    """Step-model inputs from running the float model over ``sequences`` (float, (N, T, ...)).

    Whole sequences are taken (spread across the set), each from the zero state,
    so late-sequence states are represented, not just early ones; the budget counts
    real steps, not padding. The sequences that hold each input channel's lowest and
    highest value in the whole set are always among them for sensor sequences (:func:`extreme_sequences`):
    the input's int8 range then covers every training value. A few sequences picked
    without them clipped the gesture peaks of a UEA set (0.4 % of the steps,
    the informative ones) and cost an int8 ``rnn`` 6 points. A fraction of
    the steps (``stream_fraction``) instead comes from one long stream through
    sequences concatenated without reset — the ranges a deployed stream reaches
    (an LSTM cell state keeps growing) — so those states are not clipped.
    Masked (padding) samples are skipped exactly as the runtime skips them.
    """
    if len(sequences) == 0:
        raise ConversionError("no calibration sequences")
    run = _step_fn(step)
    sensor = step.input_kind == "sequence"  # clips keep their fixed length and their spread of picks
    real = np.array([sum(not is_masked(f, step.mask_value) for f in seq) for seq in sequences]) if sensor and step.mask_value is not None \
        else np.full(len(sequences), sequences.shape[1])
    n_stream = int(round(max_samples * stream_fraction)) if step.states else 0
    n_whole = max_samples - n_stream
    n_seq = max(1, min(len(sequences), -(-n_whole // max(1, int(real.mean())))))
    spread = np.linspace(0, len(sequences) - 1, n_seq).round().astype(int)
    extremes = extreme_sequences(sequences, real) if sensor else []
    samples: list[dict[str, np.ndarray]] = []
    for i in dict.fromkeys([*extremes, *spread]):
        _run_steps(step, run, sequences[i], _zero_states(step), samples)
    if n_stream:
        states, order = _zero_states(step), np.random.default_rng(0).permutation(len(sequences))
        stream: list[dict[str, np.ndarray]] = []
        k = 0
        while len(stream) < n_stream:
            states = _run_steps(step, run, sequences[order[k % len(order)]], states, stream)
            k += 1
        samples += stream[:n_stream]
    validate_samples(samples)
    return samples


def extreme_sequences(sequences: np.ndarray, real: np.ndarray) -> list[int]:
    """Indices of the sequences holding each channel's (last axis) lowest and highest value over their real
    (last ``real[i]``) steps."""
    out = []
    for c in range(sequences.shape[-1]):
        lows = [float(seq[len(seq) - n:, ..., c].min()) if n else np.inf for seq, n in zip(sequences, real)]
        highs = [float(seq[len(seq) - n:, ..., c].max()) if n else -np.inf for seq, n in zip(sequences, real)]
        out += [int(np.argmin(lows)), int(np.argmax(highs))]
    return list(dict.fromkeys(out))


def _zero_states(step: StepModel) -> dict[str, np.ndarray]:
    return {s.name: np.zeros(s.shape, np.float32) for s in step.states}


def _step_fn(step: StepModel) -> Any:
    import tensorflow as tf

    fn = tf.function(lambda feeds: step.model(feeds, training=False))
    return lambda feeds: [np.asarray(v, np.float32) for v in fn(feeds)]


def _run_steps(step: StepModel, run: Any, sequence: np.ndarray, states: dict[str, np.ndarray], out: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Record each step's inputs (frame + incoming states) into ``out``; return the final states."""
    for frame in sequence:
        if is_masked(frame, step.mask_value):
            continue
        feeds = {step.frame_input: frame[None].astype(np.float32), **states}
        out.append(feeds)
        outs = run(feeds)
        states = {s.name: outs[s.output_index] for s in step.states}
    return states


def collect_whole_inputs(step: StepModel, inputs: np.ndarray, max_samples: int) -> list[dict[str, np.ndarray]]:
    """Calibration samples for stateless graphs: whole images or whole clips (``--window``)."""
    if len(inputs) == 0:
        raise ConversionError("no calibration inputs")
    per_item = inputs.shape[1] if step.input_kind != "image" else 1
    n = max(1, min(len(inputs), -(-max_samples // per_item)))
    picks = np.linspace(0, len(inputs) - 1, n).round().astype(int)
    samples = [{step.frame_input: inputs[i][None].astype(np.float32)} for i in picks]
    validate_samples(samples)
    return samples


def split_samples(samples: list[dict[str, np.ndarray]], front: StepModel, head: StepModel) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Samples of the full step model -> (front samples, head samples).

    The head sees the float front end's features with the states the full float
    model produced at that step, so state ranges are the real ones.
    """
    frames = np.concatenate([s[front.frame_input] for s in samples])
    feats = np.asarray(front.model.predict({front.frame_input: frames}, batch_size=256, verbose=0), np.float32)
    front_samples = [{front.frame_input: s[front.frame_input]} for s in samples]
    head_samples = [
        {head.frame_input: feats[i : i + 1], **{st.name: s[st.name] for st in head.states}}
        for i, s in enumerate(samples)
    ]
    validate_samples(front_samples)
    validate_samples(head_samples)
    return front_samples, head_samples


def clip_states(samples: list[dict[str, np.ndarray]], states: list[Any], percentile: float) -> list[dict[str, np.ndarray]]:
    """Calibration samples with each given state clipped to its ``percentile`` of absolute values.

    An LSTM cell state only reaches the output through ``tanh`` (saturated beyond
    about +-3), yet its int8 scale is set by the largest value seen, and long
    streams push a few values far out. Clipping its calibration range at a high
    percentile buys finer steps where ``tanh`` is steep; the runtime's
    requantization then saturates the fed-back state at the same limit.
    """
    present = [s for s in states if s.name in samples[0]]  # the CNN front end of a mixed bundle has none
    limits = {s.name: float(np.percentile(np.abs(np.concatenate([d[s.name].ravel() for d in samples])), percentile)) for s in present}
    return [{k: (np.clip(v, -limits[k], limits[k]) if k in limits else v) for k, v in d.items()} for d in samples]


def is_masked(sample: np.ndarray, mask_value: float | None) -> bool:
    """True if the sample is padding the recurrent layers never see."""
    return mask_value is not None and bool(np.all(sample == mask_value))


def validate_samples(samples: list[dict[str, np.ndarray]]) -> None:
    """Refuse NaN/Inf anywhere, and an input that never varies (zero range), by name."""
    if not samples:
        raise ConversionError("calibration produced no samples")
    for name in samples[0]:
        values = np.stack([s[name] for s in samples])
        if not np.all(np.isfinite(values)):
            raise ConversionError(f"calibration input {name!r} contains NaN or Inf")
        if float(values.max() - values.min()) == 0.0:
            raise ConversionError(f"calibration input {name!r} is constant ({float(values.flat[0])}); its quantization range would be zero")


def representative_dataset(samples: list[dict[str, np.ndarray]]) -> Any:
    """A zero-argument generator function for ``TFLiteConverter.representative_dataset``."""

    def gen() -> Iterator[dict[str, np.ndarray]]:
        yield from samples

    return gen
