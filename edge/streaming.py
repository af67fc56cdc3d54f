"""Streaming inference with external state.

The converted graph is stateless: recurrent states are explicit inputs and
outputs. :class:`StreamingSession` owns them — it feeds each step's output state
back as the next step's input (re-encoded from the output tensor's quantization
to the input tensor's), and ``reset()`` restores the initial state. A bundle may
chain several graphs (``mixed``: an int8 CNN then a float recurrent head); the
``features`` output of one feeds the ``features`` input of the next.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge import adapters
from edge.bundle import Bundle, GraphSpec
from edge.errors import BundleError
from edge.interpreter import make_interpreter


class Mode(enum.Enum):
    """How a bundle consumes frames."""

    STREAMING = "streaming"  # one frame + state per step
    WINDOW = "window"  # the whole last-T-frames clip per step (naive deployment)
    SINGLE = "single"  # one frame, no state (plain classifier)


@dataclass(frozen=True)
class StepResult:
    """The decision after one frame, with per-stage timings in milliseconds."""

    probabilities: np.ndarray
    index: int
    label: str
    score: float
    preprocess_ms: float
    invoke_ms: float
    postprocess_ms: float


class GraphRunner:
    """Feeds named inputs and reads named outputs of one graph with minimal overhead.

    Names come from the model's signature; the tensor indices are resolved once so
    each call is just ``set_tensor`` / ``invoke`` / ``get_tensor``.
    """

    def __init__(self, interpreter: Any, graph: GraphSpec):
        self.interpreter = interpreter
        self.graph = graph
        try:
            runner = interpreter.get_signature_runner(graph.signature)
        except ValueError as exc:
            raise BundleError(f"{graph.file}: signature {graph.signature!r} not found ({exc})") from None
        in_details = runner.get_input_details()
        out_details = runner.get_output_details()
        self.inputs = {s.name: s for s in graph.inputs}
        self.outputs = {s.name: s for s in graph.outputs}
        self._check(in_details, self.inputs, "input")
        self._check(out_details, self.outputs, "output")
        self._in_index = {name: in_details[name]["index"] for name in self.inputs}
        self._out_index = {name: out_details[name]["index"] for name in self.outputs}

    def _check(self, details: dict[str, Any], specs: dict[str, Any], kind: str) -> None:
        if set(details) != set(specs):
            raise BundleError(
                f"{self.graph.file}: model {kind}s {sorted(details)} differ from the manifest's {sorted(specs)}"
            )
        for name, spec in specs.items():
            d = details[name]
            shape = tuple(int(v) for v in d["shape"])
            dtype = np.dtype(d["dtype"]).name
            scale, zero_point = (d.get("quantization") or (0.0, 0))[:2]
            if shape != spec.shape or dtype != spec.dtype:
                raise BundleError(
                    f"{self.graph.file}: {kind} {name!r} is {dtype}{list(shape)} in the model "
                    f"but {spec.dtype}{list(spec.shape)} in the manifest"
                )
            if not np.isclose(scale, spec.scale, rtol=1e-6) or int(zero_point) != spec.zero_point:
                raise BundleError(f"{self.graph.file}: {kind} {name!r} quantization differs from the manifest")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Invoke once with raw (already encoded) inputs; return raw outputs."""
        it = self.interpreter
        for name, value in feeds.items():
            it.set_tensor(self._in_index[name], value)
        it.invoke()
        return {name: it.get_tensor(index) for name, index in self._out_index.items()}


class StreamingSession:
    """Runs a bundle frame by frame, owning recurrent state.

    Args:
        bundle: a verified bundle (:func:`edge.bundle.read_bundle`).
        num_threads: interpreter threads.
        delegate: ``xnnpack``, ``none`` or ``edgetpu``.
        reset_gap_s: reset state when consecutive timestamps are further apart than this.
    """

    def __init__(
        self,
        bundle: Bundle,
        num_threads: int = 1,
        delegate: str = "xnnpack",
        reset_gap_s: float | None = None,
        interpreters: list[Any] | None = None,
    ):
        self.bundle = bundle
        if interpreters is None:
            interpreters = [
                make_interpreter(bundle.model_path(i), num_threads=num_threads, delegate=delegate)
                for i in range(len(bundle.graphs))
            ]
        self.runners = [GraphRunner(it, g) for it, g in zip(interpreters, bundle.graphs)]
        self.backend = getattr(interpreters[0], "backend_name", "unknown")
        first = bundle.graphs[0]
        roles = {s.role for s in first.inputs}
        self._frame_spec = first.input("frame") if "frame" in roles else first.input("sample")
        self.mode = Mode(bundle.mode) if bundle.mode in Mode._value2member_map_ else Mode.STREAMING
        if self.mode is Mode.STREAMING and not bundle.states:
            self.mode = Mode.SINGLE
        self._probs_spec = bundle.graphs[-1].output("probabilities")
        last = self.runners[-1]
        self._state_io = [
            (st.input, st.output, last.outputs[st.output].as_adapter_spec(), last.inputs[st.input].as_adapter_spec())
            for st in bundle.states
        ]
        self._reset_gap_s = reset_gap_s
        self._last_ts: float | None = None
        self._window: deque[np.ndarray] = deque(maxlen=self._frame_spec.shape[1] if self.mode is Mode.WINDOW else 1)
        self.resets = 0
        self.reset()

    def reset(self) -> None:
        """Restore the initial (zero) recurrent state and forget the frame window."""
        last = self.runners[-1]
        self._states = {
            st.input: adapters.quantize(np.zeros(st.shape, np.float32), last.inputs[st.input].as_adapter_spec())
            for st in self.bundle.states
        }
        self._window.clear()
        self._last_ts = None
        self.resets += 1

    def encode(self, frame: np.ndarray, source_color: str = "rgb") -> np.ndarray:
        """Preprocess a raw frame and quantize it into the model's input encoding."""
        x = self.bundle.preprocessing(frame, source_color=source_color)
        return adapters.quantize(x, self._frame_spec.as_adapter_spec())

    def step(self, frame: np.ndarray, timestamp: float | None = None, source_color: str = "rgb") -> StepResult:
        """Consume one raw frame (HxWxC uint8) and return the current decision."""
        if timestamp is not None and self._reset_gap_s is not None and self._last_ts is not None:
            if timestamp - self._last_ts > self._reset_gap_s:
                self.reset()
        self._last_ts = timestamp
        t0 = time.perf_counter()
        encoded = self.encode(frame, source_color)
        t1 = time.perf_counter()
        raw = self.step_encoded(encoded)
        t2 = time.perf_counter()
        probs = adapters.get_scores(raw, self._probs_spec.as_adapter_spec())
        index = int(np.argmax(probs))
        labels = self.bundle.labels
        result_label = labels[index] if index < len(labels) else str(index)
        t3 = time.perf_counter()
        return StepResult(probs, index, result_label, float(probs[index]), (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def step_encoded(self, encoded: np.ndarray) -> np.ndarray:
        """One inference on an already encoded frame; returns the raw probabilities tensor."""
        if self.mode is Mode.WINDOW:
            if not self._window:
                self._window.extend([encoded] * self._window.maxlen)  # type: ignore[operator]
            self._window.append(encoded)
            x = np.stack(list(self._window), axis=0)[None]
        else:
            x = encoded[None] if encoded.ndim == len(self._frame_spec.shape) - 1 else encoded
        feeds = {self._frame_spec.name: x}
        if len(self.runners) == 1:
            feeds.update(self._states)
        out = self.runners[0].run(feeds)
        for prev, runner in zip(self.runners, self.runners[1:]):
            feats_out = prev.graph.output("features")
            feats_in = runner.graph.input("features")
            value = adapters.requantize(out[feats_out.name], feats_out.as_adapter_spec(), feats_in.as_adapter_spec())
            out = runner.run({feats_in.name: value, **self._states})
        for in_name, out_name, src, dst in self._state_io:
            self._states[in_name] = adapters.requantize(out[out_name], src, dst)
        return out[self._probs_spec.name]

    def state_values(self) -> dict[str, np.ndarray]:
        """The current recurrent states as float32, keyed by state name (for drift checks)."""
        last = self.runners[-1]
        return {
            st.name: adapters.dequantize(self._states[st.input], last.inputs[st.input].as_adapter_spec())
            for st in self.bundle.states
        }
