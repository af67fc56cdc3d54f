"""Human-readable bundle summary plus the golden self-test (run on the board)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.analysis import analyze_graph, format_analysis
from edge.bundle import Bundle, Mode, read_bundle, read_golden
from edge.bundle.search_report import choice_line, read_search_report
from edge.bundle.verify_report import VerifyReport, read_verify_report
from edge.errors import BundleError
from edge.interpreter import make_interpreter


def self_test(bundle: Bundle) -> str:
    """Run each graph on its stored golden input; compare raw outputs (1 LSB tolerance for integers)."""
    pairs = read_golden(bundle.path, len(bundle.graphs))
    if pairs is None:
        return "skipped (no golden pair)"
    worst = 0.0
    for i, (graph, (feeds, expected)) in enumerate(zip(bundle.graphs, pairs)):
        runner = make_interpreter(bundle.model_path(i), delegate=bundle.delegate).get_signature_runner(graph.signature)
        outs = runner(**feeds)
        for name, want in expected.items():
            diff = float(np.abs(outs[name].astype(np.float64) - want.astype(np.float64)).max())
            tol = 1.0 if np.issubdtype(want.dtype, np.integer) else 1e-4
            if diff > tol:
                raise BundleError(f"golden self-test failed: {graph.file} {name}: max raw difference {diff:g} > {tol:g}")
            worst = max(worst, diff)
    return f"passed ({len(bundle.graphs)} graph{'s' if len(bundle.graphs) > 1 else ''}, max raw difference {worst:g})"


def verify_line(v: VerifyReport) -> str:
    """One line from the bundle's verify report (written at conversion time)."""
    line = (f"agreement {v.agreement:.3f} with Keras on {v.sequences} test sequences, "
            f"accuracy {v.accuracy_tflite:.3f} (Keras {v.accuracy_keras:.3f})")
    if v.long_stream is not None:
        line += f", {v.long_stream.steps}-step stream agreement {v.long_stream.step_agreement:.3f}"
    return line + ("; DEGENERATE output" if v.degenerate else "")


def describe_bundle(path: str | Path) -> str:
    """Verify and describe a bundle."""
    b = read_bundle(path)
    lines = [
        f"bundle    {b.path}",
        f"model     {b.name}  precision {b.precision}  mode {b.mode.value}",
        f"size      {b.size_bytes()} bytes in {len(b.graphs)} graph(s); sha256 verified",
        f"labels    {', '.join(b.labels)}",
        f"preproc   {b.preprocessing.to_manifest()}",
    ]
    for g in b.graphs:
        for s in g.inputs:
            lines.append(f"input     {s.name:<12} {s.role:<14} {s.dtype}{list(s.shape)} scale={s.scale:g} zp={s.zero_point}")
        for s in g.outputs:
            lines.append(f"output    {s.name:<12} {s.role:<14} {s.dtype}{list(s.shape)} scale={s.scale:g} zp={s.zero_point}")
    for st in b.states:
        lines.append(f"state     {st.name:<12} {st.input} <- {st.output} {list(st.shape)} init {st.initial}")
    frames = b.window.frames if b.mode is Mode.WINDOW else 1
    for i in range(len(b.graphs)):
        lines += format_analysis(analyze_graph(b.model_path(i), frames_per_invoke=frames))
    report = read_verify_report(b.path)
    if report is not None:
        lines.append(f"verified  {verify_line(report)}")
    search = read_search_report(b.path)
    if search is not None:
        lines.append(f"searched  {choice_line(search)} ({len(search.candidates)} candidates, objective {search.objective.value})")
    lines.append(f"self-test {self_test(b)}")
    return "\n".join(lines)
