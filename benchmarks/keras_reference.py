"""Float reference probabilities from a run directory's Keras model, in its own process.

``python -m benchmarks.keras_reference RUN_DIR IN.npz OUT.npz`` reads ``clips``
(and optional ``lengths``) from ``IN.npz`` and writes ``probs`` (N, K): the
model's output after the last real step of each item. ``edge`` calls this in a
subprocess so TensorFlow is never imported by the runtime process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge.rundir import RunDir


def reference_probs(run_dir: Path, clips: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Predict with the float model; variable-length items (front-padded) run one by one on their real steps."""
    from training.registry import load_keras_model

    run = RunDir(run_dir)
    model = load_keras_model(run.model)
    x = run.card().preprocessing.normalize(clips)
    time_dim = model.inputs[0].shape[1] if len(model.inputs[0].shape) > 2 else None
    variable = lengths is not None and len(model.inputs[0].shape) == 3 and time_dim is None
    if variable:
        return np.concatenate([model.predict(x[i : i + 1, x.shape[1] - int(n) :], verbose=0) for i, n in enumerate(lengths)])
    return model.predict(np.nan_to_num(x), batch_size=64, verbose=0)


def main(argv: list[str]) -> int:
    run_dir, inp, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    with np.load(inp) as data:
        clips = data["clips"]
        lengths = data["lengths"] if "lengths" in data.files else None
    np.savez(out, probs=reference_probs(run_dir, clips, lengths).astype(np.float32))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
