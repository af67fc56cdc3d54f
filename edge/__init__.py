"""hybrid-edge runtime: streaming TFLite inference for edge boards.

Depends on numpy and ai-edge-litert (or tflite_runtime) only; OpenCV is imported
where frames are read. TensorFlow is never imported here.
"""

from edge.bundle import Bundle, read_bundle
from edge.errors import HybridEdgeError
from edge.interpreter import make_interpreter
from edge.streaming import StreamingSession

__all__ = ["Bundle", "HybridEdgeError", "StreamingSession", "make_interpreter", "read_bundle"]
__version__ = "0.1.0"
