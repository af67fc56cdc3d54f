"""Human-readable bundle summary plus the golden self-test (run on the board)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.bundle import Bundle, read_bundle
from edge.errors import BundleError
from edge.interpreter import make_interpreter


def self_test(bundle: Bundle) -> str:
    """Run the stored golden input; compare raw outputs (1 LSB tolerance for integers)."""
    golden_path = bundle.path / "golden.npz"
    if not golden_path.is_file() or len(bundle.graphs) != 1:
        return "skipped (no golden pair)"
    interpreter = make_interpreter(bundle.model_path(0))
    runner = interpreter.get_signature_runner(bundle.graphs[0].signature)
    with np.load(golden_path) as golden:
        feeds = {k[3:]: golden[k] for k in golden.files if k.startswith("in_")}
        expected = {k[4:]: golden[k] for k in golden.files if k.startswith("out_")}
    outs = runner(**feeds)
    worst = 0.0
    for name, want in expected.items():
        diff = np.abs(outs[name].astype(np.float64) - want.astype(np.float64)).max()
        worst = max(worst, float(diff))
    tol = 1.0 if np.issubdtype(next(iter(expected.values())).dtype, np.integer) else 1e-4
    if worst > tol:
        raise BundleError(f"golden self-test failed: max raw difference {worst} > {tol}")
    return f"passed (max raw difference {worst:g})"


def describe_bundle(path: str | Path) -> str:
    """Verify and describe a bundle."""
    b = read_bundle(path)
    lines = [
        f"bundle    {b.path}",
        f"model     {b.manifest.get('name')}  precision {b.precision}  mode {b.mode}",
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
    lines.append(f"self-test {self_test(b)}")
    return "\n".join(lines)
