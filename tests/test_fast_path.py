"""The allocation-free hot path gives bit-identical results to the general path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.bundle import read_bundle
from edge.streaming import StreamingSession


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_fast_and_general_paths_agree(tiny_bundles: dict[str, Path], precision: str) -> None:
    bundle = read_bundle(tiny_bundles[precision])
    fast, general, encoded = StreamingSession(bundle), StreamingSession(bundle), StreamingSession(bundle)
    general._fast = None  # the reference: per-frame float preprocessing, set_tensor/get_tensor
    assert fast._fast is not None
    rng = np.random.default_rng(0)
    for i in range(12):
        size = (24, 24) if i % 3 else (31, 40)  # some frames need a resize
        frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        color = "bgr" if i % 2 else "rgb"
        a, b = fast.step(frame, source_color=color), general.step(frame, source_color=color)
        c = encoded.step_encoded(encoded.encode(frame, color))
        assert a.index == b.index and np.array_equal(a.raw, b.raw) and np.array_equal(c, b.raw)
        np.testing.assert_array_equal(a.probabilities, b.probabilities)
        sa, sb, sc = fast.state_values(), general.state_values(), encoded.state_values()
        assert all(np.array_equal(sa[k], sb[k]) and np.array_equal(sa[k], sc[k]) for k in sb)
    fast.reset()
    assert all(not v.any() for v in fast.state_values().values())  # zero state, exactly, in any encoding
