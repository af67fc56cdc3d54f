"""Convert a run directory to a bundle (this module runs inside the worker process).

``convert_in_process`` does the TensorFlow work; callers should use
:func:`converters.isolate.convert_run`, which runs it in a subprocess and turns
a crash into a :class:`~edge.errors.ConversionError`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from converters.bundle import tensor_specs
from converters.calibrate import (
    clip_states,
    collect_samples,
    collect_whole_inputs,
    split_samples,
)
from converters.formats import Format, get_format
from converters.streaming import (
    RECURRENT_FLOAT_KINDS,
    FloatIsland,
    StepModel,
    build_step_model,
    build_window_model,
    check_safe_file,
    input_kind,
    split_step_model,
    streaming_problem,
)
from converters.tflite import convert_graph, tie_state_quantization
from edge.bundle import (
    FRONT_FILE, HEAD_FILE, MODEL_FILE, Calibration, GraphSpec, InputKind, Manifest, Mode, Runtime, Source,
    StateSpec, Window, portable_dataset_spec, sha256_file, write_golden, write_manifest,
)
from edge.bundle.verify_report import write_verify_report
from edge.errors import BundleError, ConversionError, DelegateRefused
from edge.preprocess import Preprocessing
from edge.rundir import ModelCard, RunDir
from edge.versions import library_versions

CELL_RANGE_MODES = ("auto", "search")
RECURRENT_STATES = ("float", "int8")
FIRST_LAYERS = ("auto", "float", "int8")
GATE_RANGES = ("search", "full")
CLIP_CELL_PERCENTILE = 99.5


@dataclass(frozen=True)
class ConvertOptions:
    """What to convert and how.

    ``mode`` is ``auto`` (streaming for recurrent models that can stream, the
    whole window otherwise, single frame for image models), ``streaming`` or
    ``window`` (a :class:`edge.streaming.Mode` value).
    """

    precision: str = "int8"
    calibration_samples: int = 3200
    calibration_stream: float = 0.25  # fraction of calibration steps from a long no-reset stream
    # LSTM cell-state int8 range: this percentile of |c|; "search": measured per model (converters.cellrange);
    # "auto": searched for sensor sequences, CLIP_CELL_PERCENTILE for clip models (measured best on stream-trained ones)
    cell_range_percentile: float | str = "auto"
    seed: int = 0
    mode: str = "auto"
    verify: bool = True
    verify_sequences: int = 0  # 0: the whole test split
    stream_steps: int = 1000
    tie_states: bool = True  # state inputs take their state output's quantization: exact feedback
    # int8 recurrent state: "float" keeps each LSTM cell state / GRU state and its element-wise update float32
    # inside the int8 graph (the matrix products stay int8); "int8" quantizes them too (Edge TPU-style, all integer)
    recurrent_state: str = "float"
    # int8 sensor sequences whose chain starts with a causal convolution: "float" keeps the samples, that convolution
    # (with its BatchNorm and activation) and its input buffer float32; "int8" quantizes them too; "auto": float
    # for convolutional models (tcn: measured better), int8 for recurrent ones (rnn: measured worse)
    first_layer: str = "auto"
    # int8 range of recurrent gate pre-activations (x·W + b, and the gate sum where it is int8): "search" narrows it by the factor whose
    # bundle streams closest to Keras (converters.cellrange; one-graph bundles), "full" keeps the calibrated extremes
    gate_range: str = "search"


def check_options(options: ConvertOptions) -> Format:
    """Validate options before any work; returns the format."""
    fmt = get_format(options.precision)
    if options.mode not in ("auto", Mode.STREAMING.value, Mode.WINDOW.value):
        raise ConversionError(f"unknown mode {options.mode!r}; use auto, streaming or window")
    if options.mode == Mode.WINDOW.value and not fmt.window:
        raise ConversionError(f"{fmt.name} splits a step model into CNN front end and recurrent head; it has no --window form")
    if fmt.calibrate and options.calibration_samples < 1:
        raise ConversionError(f"{fmt.name} needs --calibration-samples >= 1")
    p = options.cell_range_percentile
    if isinstance(p, str) and p not in CELL_RANGE_MODES or not isinstance(p, str) and not 50.0 <= p <= 100.0:
        raise ConversionError(f"--cell-range-percentile must be a number in [50, 100], {' or '.join(CELL_RANGE_MODES)}; got {p!r}")
    if options.recurrent_state not in RECURRENT_STATES:
        raise ConversionError(f"--recurrent-state must be one of {', '.join(RECURRENT_STATES)}; got {options.recurrent_state!r}")
    if options.first_layer not in FIRST_LAYERS:
        raise ConversionError(f"--first-layer must be one of {', '.join(FIRST_LAYERS)}; got {options.first_layer!r}")
    if options.gate_range not in GATE_RANGES:
        raise ConversionError(f"--gate-range must be one of {', '.join(GATE_RANGES)}; got {options.gate_range!r}")
    if not 0.0 <= options.calibration_stream < 1.0:
        raise ConversionError(f"--calibration-stream must be in [0, 1), got {options.calibration_stream}")
    return fmt


def load_run(run_dir: Path) -> tuple[Any, ModelCard]:
    """Load the Keras model with safe_mode on, and the model card."""
    from training.registry import load_keras_model

    run = RunDir(run_dir).check()
    model_path = run.model
    check_safe_file(model_path)
    try:
        model = load_keras_model(model_path)
    except ValueError as exc:
        raise ConversionError(f"{model_path}: cannot load ({str(exc).splitlines()[0]})") from None
    return model, run.card()


def resolve_mode(model: Any, requested: str) -> Mode:
    """The mode a model converts in; refuses ``streaming`` for models that read the future."""
    if input_kind(model) == "image":
        if requested == Mode.WINDOW.value:
            raise ConversionError(f"model {model.name!r} classifies single images; it has no window of frames")
        return Mode.SINGLE
    problem = streaming_problem(model)
    if requested == Mode.WINDOW.value:
        return Mode.WINDOW
    if problem:
        if requested == Mode.STREAMING.value:
            raise ConversionError(f"model {model.name!r} cannot stream: {problem}; convert it with --window")
        return Mode.WINDOW
    return Mode.STREAMING


@dataclass(frozen=True)
class Graph:
    """One flatbuffer to write: the Keras graph it came from and its file name."""

    step: StepModel
    fmt: Format
    file: str


def _plan(model: Any, mode: Mode, fmt: Format, length: int) -> list[Graph]:
    """The graphs to convert: one step/window/single graph, or front end + head for split formats."""
    if fmt.parts:
        if mode is not Mode.STREAMING:
            raise ConversionError(f"{fmt.name} needs a streaming recurrent model (CNN front end + recurrent head); this one converts as {mode.value}")
        front, head = split_step_model(model)
        return [Graph(front, get_format(fmt.parts[0]), FRONT_FILE), Graph(head, get_format(fmt.parts[1]), HEAD_FILE)]
    step = build_window_model(model, length) if mode is Mode.WINDOW else build_step_model(model)
    return [Graph(step, fmt, MODEL_FILE)]


def _calibration(graphs: list[Graph], model: Any, mode: Mode, x_train: np.ndarray, n: int, stream: float) -> list[list[dict[str, np.ndarray]] | None]:
    """Calibration samples per graph (None where the graph's format needs none)."""
    if not any(g.fmt.calibrate for g in graphs):
        return [None] * len(graphs)
    if len(graphs) == 2:
        full = build_step_model(model)
        front_s, head_s = split_samples(collect_samples(full, x_train, n, stream), graphs[0].step, graphs[1].step)
        return [s if g.fmt.calibrate else None for s, g in zip((front_s, head_s), graphs)]
    step = graphs[0].step
    samples = collect_samples(step, x_train, n, stream) if mode is Mode.STREAMING else collect_whole_inputs(step, x_train, n)
    return [samples]


def _roles(step: StepModel) -> tuple[dict[str, str], dict[str, str]]:
    in_roles = {step.frame_input: step.frame_input, **{s.name: "state" for s in step.states}}  # frame, sample or features
    out_roles = {"output_0": step.output_role, **{f"output_{s.output_index}": "state" for s in step.states}}
    return in_roles, out_roles


def _preprocessing(card: ModelCard) -> Preprocessing:
    """The run's preprocessing with the frame size and channels the model takes (sensor series have none)."""
    shape = card.input.shape
    if card.input.kind is InputKind.SEQUENCE:
        return card.preprocessing
    h, w, c = shape[-3:]
    return replace(card.preprocessing, size=(int(h), int(w)), channels=int(c))


def convert_in_process(run_dir: Path, out_dir: Path, options: ConvertOptions) -> Path:
    """Build the graph(s), calibrate, convert, verify and write a complete bundle into ``out_dir``."""
    import keras

    from training.data import load_dataset

    fmt = check_options(options)
    keras.utils.set_random_seed(options.seed)
    model, card = load_run(run_dir)
    mode = resolve_mode(model, options.mode)
    what = f"{card.model} ({fmt.name}, {mode.value})"
    graphs = _plan(model, mode, fmt, card.input.frames)
    dataset = load_dataset(card.dataset)
    pre = _preprocessing(card)
    x_train = pre.normalize(dataset.train.x)
    samples = _calibration(graphs, model, mode, x_train, options.calibration_samples, options.calibration_stream)
    searched: dict[int, Searched] = {}
    notes: list[str] = []
    for i, (g, s) in enumerate(zip(graphs, samples)):
        if not (s and g.fmt.ops == "int8"):  # int8 only: int16 has the resolution
            continue
        island = _island(g, options)
        sequence = g.step.input_kind == "sequence"
        cells = [st for st in g.step.states if st.kind == "lstm_c" and st.name not in dict(island.pairs)]  # a float cell needs no range
        percentile = options.cell_range_percentile
        if percentile == "auto":
            percentile = "search" if sequence else CLIP_CELL_PERCENTILE
        if cells and percentile != "search" and float(percentile) < 100:
            samples[i] = clip_states(s, cells, float(percentile))
        search_cells = bool(cells) and percentile == "search"
        # a split bundle's head reads the front end's features, not the data: only a whole graph can be streamed here
        search_gates = options.gate_range == "search" and len(graphs) == 1 and any(st.kind in RECURRENT_FLOAT_KINDS for st in g.step.states)
        if search_cells or search_gates:
            searched[i] = _search_ranges(g, samples[i], cells if search_cells else [], search_gates, model, dataset, pre,
                                         what, options)
            notes.append(searched[i].note)
    graph_specs: list[GraphSpec] = []
    states: list[StateSpec] = []
    runtime = Runtime()
    for i, (g, s) in enumerate(zip(graphs, samples)):
        flatbuffer = searched[i].flatbuffer if i in searched else _convert_one(g, s, what, options)
        path = out_dir / g.file
        path.write_bytes(flatbuffer)
        interpreter, refused = _first_load(path, runtime.delegate, what, g.file)  # in the worker
        if refused:
            runtime = Runtime("none", f"XNNPACK refused {g.file}: {refused}")
        runner = interpreter.get_signature_runner("serving_default")
        in_roles, out_roles = _roles(g.step)
        graph_specs.append(GraphSpec(
            g.file, "serving_default", tensor_specs(runner.get_input_details(), in_roles),
            tensor_specs(runner.get_output_details(), out_roles), precision=g.fmt.name,
        ))
        states += [StateSpec(st.name, st.name, f"output_{st.output_index}", tuple(st.shape)) for st in g.step.states]
    kind = InputKind(graphs[0].step.input_kind)
    _write_golden(out_dir, graph_specs, pre.normalize(dataset.test.x[0]), kind, runtime.delegate)
    calib = next((s for s in samples if s), None)
    manifest = Manifest(
        name=card.model,
        precision=fmt.name,
        mode=mode,
        input_kind=kind,
        graphs=tuple(graph_specs),
        states=tuple(states),
        labels=card.labels,
        preprocessing=pre,
        window=Window(frames=card.input.frames),
        source=Source(model_sha256=sha256_file(RunDir(run_dir).model), dataset=portable_dataset_spec(card.dataset), run=Path(run_dir).name),
        calibration=Calibration(
            samples=len(calib) if calib else 0,
            states=("float model over whole train sequences, zero initial state included"
                    + (f"; {options.calibration_stream:.0%} of steps from a no-reset stream" if options.calibration_stream else "")
                    + "".join(f"; {note}" for note in notes)
                    if mode is Mode.STREAMING else "none (stateless graph)"),
            stream_fraction=options.calibration_stream if mode is Mode.STREAMING else 0.0,
        ),
        runtime=runtime,
        versions=library_versions(),
    )
    write_manifest(out_dir, manifest)
    if options.verify:
        from converters.verify import LayerDebug, verify_bundle

        ref = build_step_model(model) if len(graphs) == 2 else graphs[0].step
        # the per-layer report quantizes afresh: with the ranges the bundle's graph was given (searched cell range, gates)
        debug = [LayerDebug(g.step, g.fmt, searched[i].samples if i in searched else s, _island(g, options),
                            searched[i].gate_factor if i in searched else 1.0)
                 for i, (g, s) in enumerate(zip(graphs, samples)) if s and g.fmt.ops == "int8"]
        report = verify_bundle(out_dir, model, ref, dataset, options.verify_sequences, options.stream_steps, debug)
        write_verify_report(out_dir, report)
        write_manifest(out_dir, manifest)  # re-hash: verify.json is a bundle file too
    return out_dir


def _island(g: Graph, options: ConvertOptions) -> FloatIsland:
    """What ``g`` keeps float32: nothing in float formats; the running mean in integer ones, and in int8 the
    recurrent updates unless ``--recurrent-state int8``, and the samples with the first causal convolution as
    ``--first-layer`` says (int16x8 has the resolution, and its quantizer keeps no op float; ``uint8-io``, the Edge
    TPU's format, stays all integer)."""
    if not g.fmt.calibrate:
        return FloatIsland()
    int8 = g.fmt.ops == "int8" and g.fmt.io_type == "int8"
    recurrent = any(s.kind in RECURRENT_FLOAT_KINDS for s in g.step.states)  # every LSTM has its c, every GRU its h
    first = options.first_layer == "float" or options.first_layer == "auto" and not recurrent
    return g.step.float_island(recurrent=int8 and options.recurrent_state == "float", first=int8 and first)


def _convert_one(g: Graph, samples: list[dict[str, np.ndarray]] | None, what: str, options: ConvertOptions) -> bytes:
    """One graph's flatbuffer: converted (its float island kept float32) and its state quantization tied."""
    flatbuffer = convert_graph(g.step.model, g.fmt, samples, what, _island(g, options))
    if options.tie_states and g.step.states:
        flatbuffer = tie_state_quantization(flatbuffer, list(g.step.state_pairs))
    return flatbuffer


@dataclass(frozen=True)
class Searched:
    """What :func:`_search_ranges` chose for one graph: its flatbuffer, the calibration samples it was converted with
    (cell states clipped at the chosen percentile), the gate range factor applied after, and the manifest's note."""

    flatbuffer: bytes
    samples: list[dict[str, np.ndarray]]
    gate_factor: float
    note: str


def _search_ranges(g: Graph, samples: list[dict[str, np.ndarray]], cells: list[Any], gates: bool, model: Any, dataset: Any,
                   pre: Preprocessing, what: str, options: ConvertOptions) -> Searched:
    """The int8 graph whose ranges stream closest to Keras (:mod:`converters.cellrange`): the LSTM cell-state range
    (a percentile of |c|) when ``cells`` are int8, then the gate pre-activation range when ``gates``."""
    from converters import cellrange

    sequences = cellrange.selection_sequences(dataset, pre.normalize)

    @functools.cache
    def reference() -> np.ndarray:  # Keras on each sequence: only when some candidate is streamed
        return np.stack([model.predict(seq[None], verbose=0)[0] for seq in sequences])

    def clipped(p: float) -> list[dict[str, np.ndarray]]:
        return clip_states(samples, cells, p) if p < 100 else samples

    def convert(p: float) -> bytes:
        return _convert_one(g, clipped(p), what, options)

    notes = []
    chosen, factor = 100.0, 1.0
    if cells:
        chosen, flatbuffer, trials = cellrange.search(g.step, convert, sequences, reference())
        notes.append(cellrange.describe(chosen, trials, len(sequences)))
    else:
        flatbuffer = convert(100.0)
    if gates:
        candidates = cellrange.gate_candidates(flatbuffer)
        trials = []
        if len(candidates) > 1:
            factor, flatbuffer, trials = cellrange.search_gates(g.step, candidates, sequences, reference())
        notes.append(cellrange.describe_gates(factor, trials, len(sequences)))
    return Searched(flatbuffer, clipped(chosen), factor, "; ".join(notes))


def _first_load(path: Path, delegate: str, what: str, file: str) -> tuple[Any, str]:
    """Load a converted graph; returns (interpreter, why XNNPACK refused it or "").

    XNNPACK refuses some integer graphs at prepare time (an unrolled bidirectional
    window, for one) that the reference kernels run; such a bundle records
    ``runtime.delegate = none`` and the runtime follows it.
    """
    from edge.interpreter import make_interpreter

    try:
        try:
            return make_interpreter(path, delegate=delegate), ""
        except DelegateRefused as exc:  # only a delegate other than "none" is refused
            return make_interpreter(path, delegate="none"), _first_line(str(exc))
    except BundleError as exc:
        raise ConversionError(f"{what}: the converted {file} does not load ({_first_line(str(exc))[:200]})") from None


def _first_line(text: str) -> str:
    """One readable line from interpreter errors (XNNPACK repeats its message without separators)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    repeated = "failed to create XNNPACK runtime"
    while repeated + repeated in line:
        line = line.replace(repeated + repeated, repeated)
    return line.replace(repeated + "Node", repeated + "; node")


def _write_golden(out_dir: Path, graph_specs: list[GraphSpec], item: np.ndarray, kind: InputKind, delegate: str) -> None:
    """A golden input/output pair per graph (first frame, zero state) for an on-board self-test.

    Graphs are chained as the runtime chains them: a head's ``features`` input is
    the front end's output, moved into the head's encoding. Every graph is loaded
    again with the bundle's final delegate (a later graph may have switched it to
    ``none``), so the pair is what the runtime will compute.
    """
    from edge import adapters
    from edge.interpreter import make_interpreter

    pairs = []
    features: tuple[np.ndarray, dict[str, Any]] | None = None
    for graph in graph_specs:
        runner = make_interpreter(out_dir / graph.file, delegate=delegate).get_signature_runner(graph.signature)
        feeds = {}
        for spec in graph.inputs:
            adapter = spec.as_adapter_spec()
            if spec.role == "state":
                feeds[spec.name] = adapters.quantize(np.zeros(spec.shape, np.float32), adapter)
            elif spec.role == "features" and features is not None:
                feeds[spec.name] = adapters.requantize(features[0], features[1], adapter).reshape(spec.shape)
            else:
                whole = kind is InputKind.IMAGE or len(spec.shape) == item.ndim + 1 and tuple(spec.shape[1:]) == item.shape
                feeds[spec.name] = adapters.quantize((item if whole else item[0])[None], adapter)
        outs = runner(**feeds)
        first = next(o for o in graph.outputs if o.role in ("features", "probabilities"))
        features = (outs[first.name], first.as_adapter_spec())
        pairs.append((feeds, outs))
    write_golden(out_dir, pairs)
