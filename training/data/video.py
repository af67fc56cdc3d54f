"""``video-folder:DIR``: action-recognition clips in the UCF101 layout, decoded with OpenCV.

``video-folder:DIR[,frames=16,stride=2,size=64,val=0.15,test=0.25,seed=0,split=1]``

* Layout: ``DIR/<class>/<clip>.(avi|mp4|mkv)``; classes are the sorted sub-folder names.
* Sampling: every clip is decoded fully (frames resized to ``size``×``size`` with
  INTER_AREA, RGB), then ``frames`` frames ``stride`` apart are taken from the
  middle of the clip. A clip shorter than ``(frames - 1) * stride + 1`` repeats
  its last frame (``preprocessing.short_clips`` counts them).
* Splits: if ``DIR/testlist0<split>.txt`` (UCF101's ``ucfTrainTestlist`` files,
  copied into DIR) or ``DIR/testlist.txt`` exists, the clips it lists
  (``<class>/<clip>`` per line, relative to DIR, compared case-insensitively)
  are the test split, and a matching ``trainlist*.txt``, if present, restricts
  the training clips (a trailing class index on a line is ignored). Otherwise
  every class is split by ``seed`` (``test`` of it held out). ``val`` comes from
  the training clips, per class, by ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import DataError
from training.data.images import class_folders, image_preprocessing
from training.data.spec import Dataset, Split, register_loader, stratified_split, typed_options

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv")


def decode_video(path: Path, size: int) -> np.ndarray:
    """All frames of a video as (N, size, size, 3) uint8 RGB.

    Raises:
        DataError: the file cannot be opened or yields no frame (corrupt/unsupported).
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{path}: unreadable video (OpenCV cannot open it)")
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise DataError(f"{path}: unreadable or corrupt video (no frame decoded)")
    return np.stack(frames)


def sample_indices(n: int, frames: int, stride: int) -> np.ndarray:
    """``frames`` indices ``stride`` apart, centred in a clip of ``n`` frames (clamped to the last)."""
    span = (frames - 1) * stride + 1
    start = max(0, (n - span) // 2)
    return np.minimum(start + np.arange(frames) * stride, n - 1)


def _read_list(path: Path) -> set[str]:
    out = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split()
        if parts:
            out.add(parts[0].replace("\\", "/").lower())
    return out


def _split_files(root: Path, split: int) -> tuple[Path | None, Path | None]:
    for suffix in (f"0{split}", f"{split}", ""):
        test = root / f"testlist{suffix}.txt"
        if test.is_file():
            train = root / f"trainlist{suffix}.txt"
            return test, train if train.is_file() else None
    return None, None


@register_loader("video-folder")
def load_video_folder(path: str | None, options: dict[str, str]) -> Dataset:
    """See the module docstring for options, sampling and splits."""
    if not path:
        raise DataError("video-folder: needs a folder, e.g. video-folder:data/UCF101")
    opts = typed_options(
        "video-folder", options, {"frames": 16, "stride": 2, "size": 64, "val": 0.15, "test": 0.25, "seed": 0, "split": 1}
    )
    if opts["frames"] < 1 or opts["stride"] < 1 or opts["size"] < 8:
        raise DataError("video-folder: need frames >= 1, stride >= 1 and size >= 8")
    root = Path(path).expanduser()
    folders = class_folders(root, "video-folder")
    test_list, train_list = _split_files(root, opts["split"])
    tested = _read_list(test_list) if test_list else set()
    trained = _read_list(train_list) if train_list else None
    clips, ys, rels = [], [], []
    short = 0
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        if not files:
            raise DataError(f"video-folder: {folder}: empty class folder (no {'/'.join(VIDEO_EXTENSIONS)} files)")
        for f in files:
            rel = f"{folder.name}/{f.name}".lower()
            if trained is not None and rel not in trained and rel not in tested:
                continue
            video = decode_video(f, opts["size"])
            short += len(video) < (opts["frames"] - 1) * opts["stride"] + 1
            clips.append(video[sample_indices(len(video), opts["frames"], opts["stride"])])
            ys.append(label)
            rels.append(rel)
    x = np.stack(clips)
    y = np.array(ys, np.int64)
    if test_list:
        is_test = np.array([r in tested for r in rels])
        if not is_test.any():
            raise DataError(f"{test_list}: lists none of the clips under {root}")
        rest, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    else:
        rest, test_idx = stratified_split(y, opts["test"], opts["seed"])
    keep, val_rel = stratified_split(y[rest], opts["val"], opts["seed"] + 1)
    train_idx, val_idx = rest[keep], rest[val_rel]
    pre = image_preprocessing(opts["size"], frames=opts["frames"], stride=opts["stride"], short_clips=int(short),
                              **({"split_file": test_list.name} if test_list else {}))
    return Dataset(
        spec=f"video-folder:{root.resolve()}," + ",".join(f"{k}={v}" for k, v in opts.items()),
        kind="clip",
        label_names=tuple(f.name for f in folders),
        train=Split(x[train_idx], y[train_idx]),
        val=Split(x[val_idx], y[val_idx]),
        test=Split(x[test_idx], y[test_idx]),
        preprocessing=pre,
    )
