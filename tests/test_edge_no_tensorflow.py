"""The runtime must work on a board without TensorFlow: prove it in a fresh process."""

import subprocess
import sys
import textwrap
from pathlib import Path


def test_import_and_stream_with_tensorflow_blocked(tiny_bundles: dict[str, Path], tiny_clips: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorflow"] = None  # any import of it now raises ImportError
        import numpy as np
        import edge
        from edge.evaluate import evaluate_bundle, load_clipset
        report = evaluate_bundle({str(tiny_bundles["int8"])!r}, load_clipset({str(tiny_clips)!r}))
        assert report["frames"] > 0 and report["backend"] == "ai-edge-litert", report
        assert not any(m == "keras" or m.startswith(("keras.", "tensorflow.")) for m in sys.modules), "TF/Keras leaked"
        print("ok", report["frames"], report["accuracy"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")
