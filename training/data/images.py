"""Image datasets: ``image-folder:DIR`` (real files) and ``synthetic-shapes:..`` (generated).

``image-folder:DIR[,size=64,val=0.15,test=0.25,seed=0]`` reads
``DIR/<class>/*.(png|jpg|jpeg)``; classes are the sorted sub-folder names.
Images are decoded with OpenCV, converted to RGB and resized (INTER_AREA) to
``size``×``size``. If ``DIR/train`` and ``DIR/test`` both exist, they are the
splits (each with class sub-folders); otherwise ``test`` of every class is held
out by ``seed``. ``val`` is that fraction of the training images, per class.

``synthetic-shapes[:classes=6,size=32,images=300,noise=6,seed=0]``: one filled
shape per image (circle, triangle, square, star, cross, ring, pentagon,
hexagon: the first ``classes`` of these) at a random place, size, rotation and colour, on a low-contrast version
of the textured backgrounds of ``synthetic-actions``; ``images`` per class, split 60/15/25.
Deterministic: image ``i`` depends only on ``(seed, i)``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import DataError
from edge.preprocess import Preprocessing
from training.data.spec import Dataset, Split, register_loader, stratified_split, typed_options
from edge.synthetic import textured_background

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SHAPES = ("circle", "triangle", "square", "star", "cross", "ring", "pentagon", "hexagon")  # most distinct first


def image_preprocessing(size: int, **extra: object) -> Preprocessing:
    """The preprocessing shared by image and video datasets (uint8 RGB -> [0, 1])."""
    return Preprocessing(scale=1.0 / 255.0, size=(size, size), extra=extra)


def class_folders(root: Path, kind: str) -> list[Path]:
    """Sorted class sub-folders of ``root`` (a DataError if there are none)."""
    if not root.is_dir():
        raise DataError(f"{kind}: {root}: folder not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{kind}: {root}: no class sub-folders (expected {root}/<class>/...)")
    return folders


def read_image(path: Path, size: int) -> np.ndarray:
    """One image file -> (size, size, 3) uint8 RGB."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: unreadable or corrupt image")
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_tree(root: Path, labels: list[str] | None, size: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    folders = class_folders(root, "image-folder")
    names = [f.name for f in folders]
    if labels is not None and names != labels:
        raise DataError(f"image-folder: {root}: classes {names} differ from the train folder's {labels}")
    xs, ys = [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(f"image-folder: {folder}: empty class folder (no {'/'.join(IMAGE_EXTENSIONS)} files)")
        for f in files:
            xs.append(read_image(f, size))
            ys.append(label)
    return names, np.stack(xs), np.array(ys, np.int64)


@register_loader("image-folder")
def load_image_folder(path: str | None, options: dict[str, str]) -> Dataset:
    """``image-folder:DIR[,size=64,val=0.15,test=0.25,seed=0]``."""
    if not path:
        raise DataError("image-folder: needs a folder, e.g. image-folder:data/images")
    opts = typed_options("image-folder", options, {"size": 64, "val": 0.15, "test": 0.25, "seed": 0})
    root = Path(path).expanduser()
    if (root / "train").is_dir() and (root / "test").is_dir():
        names, x, y = _read_tree(root / "train", None, opts["size"])
        _, x_test, y_test = _read_tree(root / "test", names, opts["size"])
        train_idx, val_idx = stratified_split(y, opts["val"], opts["seed"])
    else:
        names, x, y = _read_tree(root, None, opts["size"])
        rest, test_idx = stratified_split(y, opts["test"], opts["seed"])
        x_test, y_test = x[test_idx], y[test_idx]
        keep, val_rel = stratified_split(y[rest], opts["val"], opts["seed"] + 1)
        train_idx, val_idx = rest[keep], rest[val_rel]
    spec = f"image-folder:{root.resolve()}," + ",".join(f"{k}={v}" for k, v in opts.items())
    return Dataset(
        spec=spec,
        kind="image",
        label_names=tuple(names),
        train=Split(x[train_idx], y[train_idx]),
        val=Split(x[val_idx], y[val_idx]),
        test=Split(x_test, y_test),
        preprocessing=image_preprocessing(opts["size"]),
    )


def _outline(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-radius outline points of ``shape``, randomly rotated."""
    theta = rng.uniform(0, 2 * np.pi)
    if shape in ("circle", "ring"):
        a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], axis=1)
    if shape == "star":
        a = theta + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([np.cos(a) * r, np.sin(a) * r], axis=1)
    if shape == "cross":
        w = 0.33
        pts = np.array([[w, 1], [w, w], [1, w], [1, -w], [w, -w], [w, -1], [-w, -1], [-w, -w], [-1, -w], [-1, w], [-w, w], [-w, 1]])
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        return pts @ rot.T
    k = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}[shape]
    a = theta + np.arange(k) * 2 * np.pi / k
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def render_shape(shape: str, size: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 RGB image of ``shape``."""
    bg = textured_background(rng, size)
    img = bg.mean() + 0.35 * (bg - bg.mean())  # a calmer background than the videos': the shape is the signal
    color = rng.uniform(0, 255, size=3)
    color[rng.integers(0, 3)] = rng.choice([15.0, 245.0])  # keep contrast with the background
    radius = rng.uniform(0.22, 0.36) * size
    center = rng.uniform(0.5 * size - (0.48 * size - radius), 0.5 * size + (0.48 * size - radius), size=2)
    pts = _outline(shape, rng) * radius + center
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], color.tolist(), lineType=cv2.LINE_AA, shift=4)
    if shape == "ring":
        inner = np.round((_outline("circle", rng) * radius * 0.5 + center) * 16).astype(np.int32)
        hole = img.copy()
        cv2.fillPoly(hole, [inner], (255 - color).tolist(), lineType=cv2.LINE_AA, shift=4)
        img = hole
    img += rng.normal(0, noise, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@register_loader("synthetic-shapes")
def load_synthetic_shapes(path: str | None, options: dict[str, str]) -> Dataset:
    """``synthetic-shapes[:classes=6,size=32,images=300,noise=6,seed=0]``."""
    if path is not None:
        raise DataError(f"synthetic-shapes takes key=value options only, got {path!r}")
    opts = typed_options("synthetic-shapes", options, {"classes": 6, "size": 32, "images": 300, "noise": 6.0, "seed": 0})
    classes, size, per_class = opts["classes"], opts["size"], opts["images"]
    if not 2 <= classes <= len(SHAPES) or size < 16 or per_class < 4:
        raise DataError(f"synthetic-shapes: need classes in 2..{len(SHAPES)}, size >= 16 and images >= 4")
    n = classes * per_class
    labels = np.arange(n) % classes
    x = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        x[i] = render_shape(SHAPES[labels[i]], size, opts["noise"], np.random.default_rng([opts["seed"], i]))
    n_train, n_val = int(0.6 * n), int(0.15 * n)
    y = labels.astype(np.int64)
    return Dataset(
        spec="synthetic-shapes:" + ",".join(f"{k}={v}" for k, v in opts.items()),
        kind="image",
        label_names=SHAPES[:classes],
        train=Split(x[:n_train], y[:n_train]),
        val=Split(x[n_train : n_train + n_val], y[n_train : n_train + n_val]),
        test=Split(x[n_train + n_val :], y[n_train + n_val :]),
        preprocessing=image_preprocessing(size),
    )
