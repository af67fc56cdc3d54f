"""Streaming inference with external state.

The converted graph is stateless: recurrent states are explicit inputs and
outputs. :class:`StreamingSession` owns them — it feeds each step's output state
back as the next step's input (re-encoded from the output tensor's quantization
to the input tensor's), and ``reset()`` restores the initial state. A bundle may
chain several graphs (``mixed``: an int8 CNN then a float recurrent head); the
``features`` output of one feeds the ``features`` input of the next.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, NamedTuple

import numpy as np

from edge import adapters
from edge.bundle import Bundle, GraphSpec, Mode
from edge.errors import BundleError
from edge.interpreter import make_interpreter


class StepResult(NamedTuple):
    """The decision after one frame, with per-stage timings in milliseconds.

    ``data`` is a copy of the model's probabilities tensor as bytes (``raw``
    views it as an array of the tensor's dtype; ``probabilities`` decodes it to
    float32). A named tuple built with ``tuple.__new__`` on the hot path: no
    Python ``__init__`` and no numpy object per frame.
    """

    data: bytes
    dtype: np.dtype
    index: int
    label: str
    score: float
    started: float  # time.perf_counter() at the start of the step
    preprocessed: float  # ... after preprocessing
    invoked: float  # ... after invoke and state feedback
    finished: float  # ... at the end
    scale: float = 0.0
    zero_point: int = 0
    reset: bool = False

    @property
    def preprocess_ms(self) -> float:
        return (self.preprocessed - self.started) * 1e3

    @property
    def invoke_ms(self) -> float:
        """Invoke plus state feedback."""
        return (self.invoked - self.preprocessed) * 1e3

    @property
    def postprocess_ms(self) -> float:
        return (self.finished - self.invoked) * 1e3

    @property
    def raw(self) -> np.ndarray:
        """The probabilities tensor (flat, read-only) in its own encoding."""
        return np.frombuffer(self.data, self.dtype)

    @property
    def probabilities(self) -> np.ndarray:
        raw = self.raw
        if self.scale == 0.0:
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - self.zero_point) * np.float32(self.scale)

    def probability_list(self) -> list[float]:
        """``probabilities`` as Python floats, decoded without numpy: for a handful of values (the live view
        formats a few per decision) numpy's per-call overhead costs more than the arithmetic."""
        try:
            values = memoryview(self.data).cast(self.dtype.char).tolist()
        except (TypeError, ValueError):  # a format memoryview cannot view (float16)
            return self.probabilities.tolist()
        if self.scale == 0.0:
            return values
        return [(q - self.zero_point) * self.scale for q in values]


_UINT8 = np.dtype(np.uint8)
_new_result = tuple.__new__  # StepResult without the generated __new__: the per-frame path


def _model_failed(file: str, exc: BaseException) -> BundleError:
    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return BundleError(f"{file}: the interpreter refused to run the model: {first}")


def invoke_checked(invoke: Any, file: str) -> None:
    """Invoke, turning the interpreter's RuntimeError (bad kernel parameters) into a BundleError."""
    try:
        invoke()
    except RuntimeError as exc:
        raise _model_failed(file, exc) from None


class GraphRunner:
    """Feeds named inputs and reads named outputs of one graph with minimal overhead.

    Names come from the model's signature; the tensor indices are resolved once so
    each call is just ``set_tensor`` / ``invoke`` / ``get_tensor``.
    """

    def __init__(self, interpreter: Any, graph: GraphSpec):
        self.interpreter = interpreter
        self.graph = graph
        self.pinned_invoke: Any = None  # set by _TensorPath: the interpreter's buffers are pinned views
        try:
            runner = interpreter.get_signature_runner(graph.signature)
        except ValueError as exc:
            raise BundleError(f"{graph.file}: signature {graph.signature!r} not found ({exc})") from None
        try:
            in_details = runner.get_input_details()
            out_details = runner.get_output_details()
        except (ValueError, UnicodeDecodeError) as exc:  # names or details the interpreter cannot decode
            raise BundleError(f"{graph.file}: unreadable signature details ({exc.__class__.__name__}: {exc})") from None
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
        invoke_checked(self.pinned_invoke or it.invoke, self.graph.file)
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
        delegate: str | None = None,
        reset_gap_s: float | None = None,
        interpreters: list[Any] | None = None,
        fast_path: bool = True,
    ):
        self.bundle = bundle
        delegate = delegate or bundle.delegate
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
        self.mode = bundle.mode
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
        self._fast: _TensorPath | None = None
        self.resets = 0
        self.reset()
        if fast_path and len(self.runners) == 1 and self.mode is not Mode.WINDOW and _TensorPath.supported(interpreters[0]):
            self._fast = _TensorPath(self)
            self._fast.reset()
            self.step = self._fast.build_step()  # type: ignore[method-assign]  # one Python call per frame, not two
        self.resets = 0  # counts resets after the start only

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
        if getattr(self, "_fast", None) is not None:
            self._fast.reset()

    def encode(self, frame: np.ndarray, source_color: str = "rgb") -> np.ndarray:
        """Preprocess a raw frame and quantize it into the model's input encoding."""
        x = self.bundle.preprocessing(frame, source_color=source_color)
        return adapters.quantize(x, self._frame_spec.as_adapter_spec())

    def step(self, frame: np.ndarray, timestamp: float | None = None, source_color: str = "rgb") -> StepResult:
        """Consume one raw frame (HxWxC uint8) and return the current decision.

        A timestamp more than ``reset_gap_s`` after the previous one resets the
        state first (``StepResult.reset`` says so).
        """
        reset = self._gap_reset(timestamp) if timestamp is not None else False
        t0 = time.perf_counter()
        encoded = self.encode(frame, source_color)
        t1 = time.perf_counter()
        raw = self.step_encoded(encoded)
        t2 = time.perf_counter()
        spec = self._probs_spec
        index = int(np.argmax(raw.reshape(-1)))  # scales are positive (edge.flatbuffer refuses others)
        score = float((float(raw.reshape(-1)[index]) - spec.zero_point) * spec.scale) if spec.scale else float(raw.reshape(-1)[index])
        labels = self.bundle.labels
        label = labels[index] if index < len(labels) else str(index)
        data = np.ascontiguousarray(raw).tobytes()
        t3 = time.perf_counter()
        return StepResult(data, raw.dtype, index, label, score, t0, t1, t2, t3, spec.scale, spec.zero_point, reset)

    @property
    def frame_spec(self) -> Any:
        """The spec of the per-step input (``frame`` or ``sample``) of the first graph."""
        return self._frame_spec

    @property
    def probs_spec(self) -> Any:
        """The spec of the probabilities output of the last graph."""
        return self._probs_spec

    def _gap_reset(self, timestamp: float) -> bool:
        """Reset if ``timestamp`` is more than the reset gap after the previous one."""
        gap = self._reset_gap_s is not None and self._last_ts is not None and timestamp - self._last_ts > self._reset_gap_s
        if gap:
            self.reset()
        self._last_ts = timestamp
        return gap

    def step_encoded(self, encoded: np.ndarray) -> np.ndarray:
        """One inference on an already encoded frame; returns the raw probabilities tensor."""
        if self._fast is not None:
            return self._fast.run_encoded(encoded)
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
        current = self._fast.state_in if self._fast is not None else self._states
        return {
            st.name: adapters.dequantize(np.array(current[st.input]), last.inputs[st.input].as_adapter_spec())
            for st in self.bundle.states
        }


class _TensorPath:
    """The per-frame hot path of a single-graph session: no allocations, no float math.

    The frame goes through a (256, C) lookup table (or a byte shift) straight into
    the interpreter's input buffer — preprocessing + quantization in one pass;
    output states are re-encoded into the input state buffers through 256-entry
    tables; the decision is the argmax of the raw output. Results are identical to
    the general path (same tables, same rounding).

    The tensor buffers are pinned numpy views held for the session's life. The
    Python ``invoke()`` refuses to run while views exist (they would dangle if
    tensors were re-allocated); this session never re-allocates, so it calls the
    native ``Invoke`` directly. Backends without that native handle use the
    general path (see :func:`_TensorPath.supported`).
    """

    @staticmethod
    def supported(interpreter: Any) -> bool:
        return callable(getattr(getattr(interpreter, "_interpreter", None), "Invoke", None))

    def __init__(self, session: StreamingSession):
        runner = session.runners[0]
        it = runner.interpreter
        invoke_checked(it.invoke, runner.graph.file)  # some delegates materialise outputs on the first invoke
        self.invoke = it._interpreter.Invoke
        runner.pinned_invoke = self.invoke  # the general path must not trip the view check either
        self.session = session
        pre = session.bundle.preprocessing
        spec = session._frame_spec
        self.size = pre.size
        self.pre = pre
        self.lut = adapters.frame_lut(pre.normalize, spec.as_adapter_spec(), spec.shape[-1])
        self.uniform = bool((self.lut == self.lut[:, :1]).all())
        self.lut1 = np.ascontiguousarray(self.lut[:, 0])
        # a table that is a byte shift ((v + k) mod 256: identity, or uint8 -> int8 with
        # scale 1/255 and zero point -128) is one vectorised add instead of a gather
        self.shift: np.ndarray | None = None  # a 0-d uint8 array: numpy dispatches it faster than a scalar
        if self.uniform and self.lut1.dtype.itemsize == 1:
            as_bytes = self.lut1.view(np.uint8).astype(np.int16)
            if np.array_equal(as_bytes, (np.arange(256) + int(as_bytes[0])) % 256):
                self.shift = np.array(as_bytes[0], np.uint8)
        self.frame = it.tensor(runner._in_index[spec.name])()[0]
        self.frame_bytes = self.frame.view(np.uint8) if self.frame.dtype.itemsize == 1 else None
        self.channels = spec.shape[-1]
        self.frame_shape = tuple(self.frame.shape)
        self.color = pre.color
        self.probs_tensor = it.tensor(runner._out_index[session._probs_spec.name])()
        self.probs_buf = self.probs_tensor.reshape(-1)  # a flat view of the same buffer
        self.probs = session._probs_spec
        dtype = self.probs_buf.dtype
        self.probs_dtype = dtype
        self.probs_bytes = memoryview(self.probs_buf.view(np.uint8))
        # 8-bit scores: decide on the bytes (order kept by flipping int8's sign bit): no numpy call per frame
        self.order_key: bytes | None = None
        if dtype.itemsize == 1 and dtype.kind in "iu" and self.probs.scale > 0:
            self.order_key = bytes((i ^ 0x80) if dtype.kind == "i" else i for i in range(256))
        self.scale, self.zero_point = self.probs.scale, self.probs.zero_point
        self.key_zero = (128 if dtype.kind == "i" else 0) + self.zero_point  # key value of a zero score
        self.labels = session.bundle.labels
        self.label_of = [self.labels[i] if i < len(self.labels) else str(i) for i in range(self.probs_buf.size)]
        # 8-bit states: byte views of output and input buffers and a 256-byte translation table
        # (bytes.translate is one C loop: ~0.1 us for a 48-value state, vs ~1 us for np.take)
        self.byte_states: list[tuple[memoryview, memoryview, bytes | None]] = []  # None: identity table
        self.other_states: list[tuple[np.ndarray, np.ndarray, Any, Any]] = []  # float/int16: requantize
        for in_name, out_name, src, dst in session._state_io:
            table = adapters.state_lut(src, dst)
            out = it.tensor(runner._out_index[out_name])()
            inp = it.tensor(runner._in_index[in_name])()
            if table is not None and out.flags.c_contiguous and inp.flags.c_contiguous:
                as_bytes = table.view(np.uint8)
                identity = bool((as_bytes == np.arange(256)).all())  # same scale and zero point: a plain copy
                self.byte_states.append((memoryview(out.view(np.uint8).reshape(-1)),
                                         memoryview(inp.view(np.uint8).reshape(-1)), None if identity else as_bytes.tobytes()))
            else:
                self.other_states.append((out, inp, src, dst))
        self.initial = {name: np.array(v, copy=True) for name, v in session._states.items()}
        self.state_in = {name: it.tensor(runner._in_index[name])() for name in session._states}

    def reset(self) -> None:
        """Write the initial state into the input state buffers."""
        for name, value in self.initial.items():
            np.copyto(self.state_in[name], value)

    def _encode_into(self, frame: np.ndarray, source_color: str) -> None:
        """Any frame into the input buffer: the bundle's resize, channels and colour order, then the table
        (``step`` inlines the common case)."""
        frame = self.pre.prepare(frame, source_color)
        if frame.dtype != np.uint8:
            self.frame[...] = adapters.quantize(self.pre.normalize(frame), self.session._frame_spec.as_adapter_spec())
        elif self.shift is not None:
            np.add(frame, self.shift, out=self.frame_bytes)
        elif self.uniform:
            np.take(self.lut1, frame, out=self.frame, mode="clip")
        else:
            for c in range(self.channels):
                self.frame[..., c] = self.lut[:, c][frame[..., c]]

    def build_step(self) -> Callable[..., StepResult]:
        """:meth:`StreamingSession.step` on the pinned buffers, as a closure (the session binds ``step`` to it).

        Everything the per-frame path reads is a closure cell, not an attribute of
        ``self``: on a ~35 us model the attribute lookups were a measurable share
        of the overhead, more so right after the kernels have evicted Python's
        working set. Branches that do not apply to this bundle are decided here.
        """
        perf_counter, add, new_result = time.perf_counter, np.add, _new_result
        gap_reset, encode_into, invoke = self.session._gap_reset, self._encode_into, self.invoke
        file = self.session.runners[0].graph.file
        shift, frame_bytes, frame_shape, color = self.shift, self.frame_bytes, self.frame_shape, self.color
        inline_frame = shift is not None  # model-sized uint8 frames are one vectorised byte shift
        copies = tuple((out, inp) for out, inp, table in self.byte_states if table is None)
        translated = tuple((out, inp, table) for out, inp, table in self.byte_states if table is not None)
        other_states = tuple(self.other_states)
        requantize, copyto = adapters.requantize, np.copyto
        probs_bytes, probs_buf, order_key = self.probs_bytes, self.probs_buf, self.order_key
        scale, zero_point, key_zero, label_of, dtype = self.scale, self.zero_point, self.key_zero, self.label_of, self.probs_dtype

        def step(frame: np.ndarray, timestamp: float | None = None, source_color: str = "rgb") -> StepResult:
            reset = gap_reset(timestamp) if timestamp is not None else False
            t0 = perf_counter()
            if inline_frame and frame.dtype is _UINT8 and frame.shape == frame_shape and source_color == color:
                add(frame, shift, frame_bytes)
            else:
                encode_into(frame, source_color)
            t1 = perf_counter()
            try:
                invoke()
            except RuntimeError as exc:  # a kernel refused its parameters: a bad model, not a bug here
                raise _model_failed(file, exc) from None
            for out_bytes, in_bytes in copies:
                in_bytes[:] = out_bytes
            for out_bytes, in_bytes, table in translated:
                in_bytes[:] = out_bytes.tobytes().translate(table)
            for out, inp, src, dst in other_states:
                copyto(inp, requantize(out, src, dst))
            t2 = perf_counter()
            data = probs_bytes.tobytes()
            if order_key is not None:  # 8-bit scores: decide on the bytes, no numpy call
                key = data.translate(order_key)
                top = max(key)
                index = key.index(top)  # the first maximum, as argmax
                score = (top - key_zero) * scale
            else:
                index = int(probs_buf.argmax())
                value = probs_buf[index]
                score = float((int(value) - zero_point) * scale) if scale else float(value)
            t3 = perf_counter()
            return new_result(StepResult, (data, dtype, index, label_of[index], score, t0, t1, t2, t3,
                                           scale, zero_point, reset))

        return step

    def _invoke_and_feed_back(self) -> None:
        try:
            self.invoke()
        except RuntimeError as exc:  # a kernel refused its parameters: a bad model, not a bug here
            raise _model_failed(self.session.runners[0].graph.file, exc) from None
        for out_bytes, in_bytes, table in self.byte_states:
            in_bytes[:] = out_bytes if table is None else out_bytes.tobytes().translate(table)
        for out, inp, src, dst in self.other_states:
            np.copyto(inp, adapters.requantize(out, src, dst))

    def run_encoded(self, encoded: np.ndarray) -> np.ndarray:
        """``step_encoded`` on the pinned buffers: returns a copy of the raw probabilities."""
        self.frame[...] = encoded.reshape(self.frame.shape)
        self._invoke_and_feed_back()
        return self.probs_tensor.copy()
