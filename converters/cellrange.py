"""Choose the int8 range of LSTM cell states by measuring, not by one fixed percentile.

An LSTM's cell state ``c`` reaches the output only through ``tanh`` (flat beyond
about +-3), yet its int8 scale is set by the largest ``|c|`` calibration saw;
a few long-stream outliers (``|c|`` of 12 where most values are below 2) leave
steps of ~0.1 where ``tanh`` is steepest, and the error is fed back every step.
Clipping the calibration range at a percentile of ``|c|`` trades those steps
against clipping the outliers; which percentile is best depends on the model
and the data (measured on BasicMotions, ``rnn`` seed 0: 99.5 gives int8
agreement 0.950, 95 gives 1.000).

:func:`search` converts the step model once per candidate percentile and streams
selection sequences (validation, then training sequences: never the test split
the bundle is verified on) through each candidate exactly as the runtime does
(quantized inputs, state fed back through its tensor encodings), and keeps the
candidate whose final probabilities are closest to the float model's.

:func:`search_gates` does the same for the int8 range of the gate
pre-activations (``x·W + b``, and the gate sum where it is int8, which sigmoid and tanh read):
calibration sets it from the extremes, a long tail where those functions are
flat; each candidate narrows it by a factor (:func:`converters.tflite.narrow_gate_ranges`,
a rescale of the same flatbuffer: no conversion per candidate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from converters.bundle import tensor_specs

#: percentiles of |c| tried, widest first (ties keep the wider range)
CANDIDATES = (100.0, 99.0, 97.0, 94.0, 90.0, 80.0, 70.0)
#: factors tried on the calibrated gate pre-activation range, widest first (ties keep the wider range)
GATE_FACTORS = (1.0, 0.8, 0.65, 0.5, 0.4)
#: sequences streamed per candidate (validation first, then training sequences)
SELECTION_SEQUENCES = 48


@dataclass(frozen=True)
class Trial:
    """One candidate (a percentile of |c|, or a gate range factor): mean L1 distance of final probabilities to
    Keras, and top-1 agreement."""

    candidate: float
    prob_l1: float
    agreement: float


def selection_sequences(dataset: Any, normalize: Callable[[np.ndarray], np.ndarray], n: int = SELECTION_SEQUENCES) -> list[np.ndarray]:
    """Up to ``n`` normalised sequences without their padding: the validation split, then the training split."""
    out: list[np.ndarray] = []
    for split in (dataset.val, dataset.train):
        for i in range(len(split.y)):
            if len(out) == n:
                return out
            out.append(normalize(split.real_steps(i)))
    return out


def _stream(flatbuffer: bytes, sequences: list[np.ndarray], frame_input: str, states: list[tuple[str, str]],
            mask_value: float | None) -> np.ndarray:
    """Final probabilities of each sequence streamed step by step through the graph, from zero state."""
    from edge import adapters
    from edge.interpreter import make_interpreter

    runner = make_interpreter(flatbuffer, num_threads=1, delegate="none").get_signature_runner("serving_default")
    in_specs = tensor_specs(runner.get_input_details(), {k: "x" for k in runner.get_input_details()})
    shapes = {s.name: s.shape for s in in_specs}
    ins = {s.name: s.as_adapter_spec() for s in in_specs}
    outs = {s.name: s.as_adapter_spec() for s in tensor_specs(runner.get_output_details(), {k: "x" for k in runner.get_output_details()})}
    finals = []
    for seq in sequences:
        feeds = {name: adapters.quantize(np.zeros(shapes[name], np.float32), ins[name]) for name, _ in states}
        probs = None
        for sample in seq:
            if mask_value is not None and np.all(sample == mask_value):
                continue
            feeds[frame_input] = adapters.quantize(sample[None].astype(np.float32), ins[frame_input])
            result = runner(**feeds)
            for in_name, out_name in states:
                feeds[in_name] = adapters.requantize(result[out_name], outs[out_name], ins[in_name])
            probs = adapters.get_scores(result["output_0"], outs["output_0"])
        finals.append(probs)
    return np.stack(finals)


def search(step: Any, convert: Callable[[float], bytes], sequences: list[np.ndarray], reference: np.ndarray,
           candidates: tuple[float, ...] = CANDIDATES) -> tuple[float, bytes, list[Trial]]:
    """The best percentile, its flatbuffer, and every trial.

    ``convert(p)`` returns the int8 flatbuffer calibrated with the cell states
    clipped at percentile ``p``; ``reference`` holds the float model's final
    probabilities for ``sequences``.
    """
    return _best(step, ((p, lambda p=p: convert(p)) for p in candidates), sequences, reference)


def gate_candidates(flatbuffer: bytes, factors: tuple[float, ...] = GATE_FACTORS, flat: float | None = None) -> dict[bytes, float]:
    """The distinct graphs the gate range ``factors`` make of the int8 ``flatbuffer`` (graph -> its first factor):
    only the unchanged one when every gate range is already within the steep part of sigmoid and tanh."""
    from converters.tflite import GATE_FLAT, narrow_gate_ranges

    distinct: dict[bytes, float] = {}
    for f in factors:
        distinct.setdefault(narrow_gate_ranges(flatbuffer, f, GATE_FLAT if flat is None else flat), f)
    return distinct


def search_gates(step: Any, candidates: dict[bytes, float], sequences: list[np.ndarray],
                 reference: np.ndarray) -> tuple[float, bytes, list[Trial]]:
    """The best of :func:`gate_candidates`: its factor, its flatbuffer, and every trial."""
    return _best(step, ((f, lambda fb=fb: fb) for fb, f in candidates.items()), sequences, reference)


def _best(step: Any, candidates: Any, sequences: list[np.ndarray], reference: np.ndarray) -> tuple[float, bytes, list[Trial]]:
    states = list(step.state_pairs)
    best: tuple[float, float, bytes] | None = None
    trials = []
    for value, make in candidates:
        flatbuffer = make()
        got = _stream(flatbuffer, sequences, step.frame_input, states, step.mask_value)
        l1 = float(np.abs(got - reference).sum(axis=1).mean())
        trials.append(Trial(value, l1, float(np.mean(got.argmax(1) == reference.argmax(1)))))
        if best is None or l1 < best[1]:
            best = (value, l1, flatbuffer)
    assert best is not None
    return best[0], best[2], trials


def describe(chosen: float, trials: list[Trial], sequences: int) -> str:
    """One line for the manifest's calibration record."""
    return (f"LSTM cell-state range: {chosen:g}th percentile of |c|, chosen by the mean L1 distance of final probabilities "
            f"to Keras on {sequences} validation/training sequences ({_tried(trials)})")


def describe_gates(chosen: float, trials: list[Trial], sequences: int) -> str:
    """One line for the manifest's calibration record (no trials: nothing to narrow)."""
    from converters.tflite import GATE_FLAT

    if not trials:
        return f"gate pre-activation range: as calibrated (within +-{GATE_FLAT:g}, where sigmoid and tanh are steep: nothing to narrow)"
    return (f"gate pre-activation range: {chosen:g} x the calibrated one (never inside +-{GATE_FLAT:g}), chosen by the mean "
            f"L1 distance of final probabilities to Keras on {sequences} validation/training sequences ({_tried(trials)})")


def _tried(trials: list[Trial]) -> str:
    return ", ".join(f"{t.candidate:g}: {t.prob_l1:.4f}" for t in trials)
