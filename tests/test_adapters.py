"""Quantization arithmetic uses each tensor's own parameters."""

import numpy as np

from edge import adapters


def test_int8_round_trip_within_half_step() -> None:
    spec = {"dtype": "int8", "quantization": (0.05, -3)}
    x = np.linspace(-8.0, 8.0, 161, dtype=np.float32)
    q = adapters.quantize(x, spec)
    assert q.dtype == np.int8
    back = adapters.dequantize(q, spec)
    inside = (x > (-128 + 3) * 0.05) & (x < (127 + 3) * 0.05)
    assert np.all(np.abs(back[inside] - x[inside]) <= 0.025 + 1e-6)
    assert q.min() == -128 and q.max() == 127  # saturates instead of wrapping


def test_requantize_moves_between_encodings() -> None:
    src = {"dtype": "int8", "quantization": (0.1, 0)}
    dst = {"dtype": "int8", "quantization": (0.05, 10)}
    raw = np.array([-20, 0, 20], np.int8)  # -2.0, 0.0, 2.0
    out = adapters.requantize(raw, src, dst)
    np.testing.assert_array_equal(out, np.array([-30, 10, 50], np.int8))
    same = adapters.requantize(raw, src, src)
    assert same is raw


def test_float_and_uint8_specs() -> None:
    f = {"dtype": "float32", "quantization": (0.0, 0)}
    x = np.array([0.25], np.float32)
    assert adapters.quantize(x, f).dtype == np.float32
    u = {"dtype": "uint8", "quantization": (1 / 255, 0)}
    np.testing.assert_array_equal(adapters.quantize(np.array([0.0, 1.0, 2.0]), u), [0, 255, 255])
