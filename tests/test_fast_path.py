"""The allocation-free hot path gives bit-identical results to the general path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.bundle import read_bundle
from edge.compat import ops_details
from edge.streaming import StreamingSession


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_fast_and_general_paths_agree(tiny_bundles: dict[str, Path], precision: str) -> None:
    bundle = read_bundle(tiny_bundles[precision])
    fast, general, encoded = StreamingSession(bundle), StreamingSession(bundle, fast_path=False), StreamingSession(bundle)
    # general is the reference: per-frame float preprocessing, set_tensor/get_tensor
    assert general._fast is None
    assert fast._fast is not None
    rng = np.random.default_rng(0)
    for i in range(12):
        size = (24, 24) if i % 3 else (31, 40)  # some frames need a resize
        frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        color = "bgr" if i % 2 else "rgb"
        a, b = fast.step(frame, source_color=color), general.step(frame, source_color=color)
        c = encoded.step_encoded(encoded.encode(frame, color))
        assert a.index == b.index and a.label == b.label and a.score == pytest.approx(b.score, abs=1e-7)
        assert a.data == b.data and np.array_equal(a.raw, b.raw) and np.array_equal(c.reshape(-1), b.raw)
        np.testing.assert_array_equal(a.probabilities, b.probabilities)
        np.testing.assert_allclose(a.probability_list(), a.probabilities, rtol=1e-6, atol=1e-7)  # the numpy-free decode
        sa, sb, sc = fast.state_values(), general.state_values(), encoded.state_values()
        assert all(np.array_equal(sa[k], sb[k]) and np.array_equal(sa[k], sc[k]) for k in sb)
    fast.reset()
    assert all(not v.any() for v in fast.state_values().values())  # zero state, exactly, in any encoding


def test_int8_state_feedback_is_an_exact_copy(tiny_bundles: dict[str, Path]) -> None:
    """Each state input carries its output's quantization, so feedback never re-rounds."""
    bundle = read_bundle(tiny_bundles["int8"])
    graph = bundle.graphs[0]
    outs, ins = {t.name: t for t in graph.outputs}, {t.name: t for t in graph.inputs}
    assert bundle.states
    for st in bundle.states:
        src, dst = outs[st.output], ins[st.input]
        if st.name == "state_0_c":  # the LSTM cell state stays float32 (--recurrent-state float)
            assert src.dtype == dst.dtype == "float32"
            continue
        assert src.dtype == dst.dtype == "int8"
        assert (src.scale, src.zero_point) == (dst.scale, dst.zero_point) and src.scale > 0
    session = StreamingSession(bundle)
    assert session._fast is not None and all(table is None for _, _, table in session._fast.byte_states)
    frame = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    for _ in range(5):
        session.step(frame)
    fast = session._fast
    for (out_bytes, in_bytes, _), st in zip(fast.byte_states, bundle.states):  # what the graph wrote is what the next step reads
        assert out_bytes.tobytes() == in_bytes.tobytes()
    assert any(np.abs(v).max() > 0 for v in session.state_values().values())  # the state really moved off zero


def test_bundle_runtime_delegate_is_followed(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    """A manifest that says XNNPACK refused the graph makes every consumer use the reference kernels."""
    import json
    import shutil

    from dataclasses import replace

    from edge.bundle import Runtime, load_manifest, write_manifest
    from edge.errors import BundleError
    from edge.inspect import self_test

    def delegated(session: StreamingSession) -> int:
        return sum(d["op_name"] == "DELEGATE" for d in ops_details(session.runners[0].interpreter))

    assert read_bundle(tiny_bundles["int8"]).delegate == "xnnpack"
    assert delegated(StreamingSession(read_bundle(tiny_bundles["int8"]))) > 0
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundles["int8"], copy)
    manifest = load_manifest(copy)
    write_manifest(copy, replace(manifest, runtime=Runtime("none", "XNNPACK refused model.tflite: test")))
    bundle = read_bundle(copy)
    assert bundle.delegate == "none"
    assert delegated(StreamingSession(bundle)) == 0
    assert delegated(StreamingSession(bundle, delegate="xnnpack")) > 0  # an explicit choice still wins
    assert self_test(bundle).startswith("passed")
    raw = json.loads((copy / "manifest.json").read_text())
    raw["runtime"] = {"delegate": "gpu"}
    (copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="runtime.delegate 'gpu'"):
        read_bundle(copy)
