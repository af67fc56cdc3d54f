"""Datasets by spec string: ``synthetic-actions:..``, ``synthetic-shapes:..``, ``ucr:DIR``, ``video-folder:DIR``, ``image-folder:DIR``.

numpy + OpenCV only (the edge runtime reads datasets through this package)."""

from training.data.spec import Dataset, Split, load_dataset, parse_spec

__all__ = ["Dataset", "Split", "load_dataset", "parse_spec"]
