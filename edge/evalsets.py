"""Labelled evaluation data for ``eval`` and ``bench``: clip-set files or dataset specs.

Clip sets are ``.npz`` files with ``clips`` (N, T, H, W, C uint8 RGB, or N, H, W, C
images, or N, T, F float series), ``labels`` (N,), ``label_names`` and optionally
``reference_probs`` (N, K): the float Keras model's probabilities at the last
step, for agreement, and ``lengths`` (N,): real steps of variable-length series.

Dataset specs go through :func:`training.data.load_dataset`, which needs only
numpy and OpenCV (never TensorFlow), imported when a spec is actually used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import DataError


@dataclass(frozen=True)
class ClipSet:
    """Labelled items and, optionally, reference probabilities and real lengths."""

    clips: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    reference_probs: np.ndarray | None = None
    lengths: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, limit: int | None) -> "ClipSet":
        """The first ``limit`` items (all when ``limit`` is None)."""
        if limit is None or limit >= len(self):
            return self
        cut = slice(0, max(int(limit), 1))
        ref = None if self.reference_probs is None else self.reference_probs[cut]
        lengths = None if self.lengths is None else self.lengths[cut]
        return ClipSet(self.clips[cut], self.labels[cut], self.label_names, ref, lengths, f"{self.source}[:{cut.stop}]")


def load_clipset(path: str | Path) -> ClipSet:
    """Read a clip-set ``.npz``; one clear error for anything missing or inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: clip set not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            clips, labels = data["clips"], data["labels"]
            names = tuple(str(v) for v in data["label_names"])
            ref = data["reference_probs"] if "reference_probs" in data.files else None
            lengths = data["lengths"] if "lengths" in data.files else None
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a clip set ({exc})") from None
    if clips.ndim not in (3, 4, 5) or len(clips) != len(labels):
        raise DataError(f"{path}: clips {clips.shape} and labels {labels.shape} do not match")
    if ref is not None and len(ref) != len(labels):
        raise DataError(f"{path}: {len(ref)} reference rows for {len(labels)} clips")
    return ClipSet(clips, labels.astype(np.int64), names, ref, lengths, str(path))


def load_dataset_split(spec: str, split: str = "test") -> ClipSet:
    """One split of a dataset spec (``ucr:DIR``, ``video-folder:DIR``, ...) as a clip set."""
    from training.data import load_dataset  # numpy/OpenCV only; imported on demand

    dataset = load_dataset(spec)
    part = dataset.split(split)
    lengths = getattr(part, "lengths", None)
    return ClipSet(np.asarray(part.x), np.asarray(part.y, np.int64), tuple(dataset.label_names), None,
                   None if lengths is None else np.asarray(lengths, np.int64), f"{dataset.spec}#{split}")


def align_labels(clipset: ClipSet, bundle_labels: tuple[str, ...], where: str = "bundle") -> ClipSet:
    """The clip set with labels indexed in the bundle's class order.

    Datasets list classes in their own order (e.g. sorted folder names); when the
    names are the same set, labels are renumbered by name. Different names are an error.
    """
    names = clipset.label_names
    if not bundle_labels or not names or tuple(bundle_labels) == tuple(names):
        return clipset
    if sorted(bundle_labels) != sorted(names):
        raise DataError(f"{where}: bundle labels {list(bundle_labels)} differ from the data's {list(names)}")
    index = {name: i for i, name in enumerate(bundle_labels)}
    order = np.array([index[n] for n in names], np.int64)
    ref = None
    if clipset.reference_probs is not None:
        ref = np.zeros_like(clipset.reference_probs)
        ref[:, order] = clipset.reference_probs
    return ClipSet(clipset.clips, order[clipset.labels], tuple(bundle_labels), ref, clipset.lengths, clipset.source)


def real_steps(item: np.ndarray, length: int | None) -> np.ndarray:
    """The real steps of one sequence.

    Variable-length series are front-padded (``training.data``): with ``length``
    the real steps are the last ``length``; without it, all-NaN padding steps
    at either end are dropped.
    """
    if length is not None:
        if not 0 < int(length) <= len(item):
            raise DataError(f"sequence length {length} outside 1..{len(item)}")
        return item[len(item) - int(length) :]
    if item.dtype.kind == "f" and item.ndim >= 2:
        valid = ~np.isnan(item.reshape(len(item), -1)).all(axis=1)
        if not valid.any():
            raise DataError("a sequence has no real (non-NaN) steps")
        if not valid.all():
            idx = np.flatnonzero(valid)
            return item[idx[0] : idx[-1] + 1]
    return item
