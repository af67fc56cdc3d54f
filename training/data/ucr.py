"""UEA/UCR time-series classification archives in the ``.ts`` format.

``ucr:DIR`` reads ``DIR/NAME_TRAIN.ts`` and ``DIR/NAME_TEST.ts`` (DIR must hold
one problem; otherwise name it: ``ucr:DIR/NAME``). Options: ``val=0.2`` (the
fraction of TRAIN held out per class for validation / early stopping),
``seed=0`` (that split's seed).

Format: ``#`` comment lines, then a header (``@problemName``, ``@timeStamps``,
``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``,
``@seriesLength``, ``@classLabel true <labels...>``), then ``@data``; each data
line is one case: dimensions separated by ``:``, values by ``,``, the class
label last. Missing values (``?`` or ``NaN``) are filled by linear
interpolation along time within their dimension (ends take the nearest value;
an all-missing dimension becomes 0.0), and ``preprocessing.missing_filled``
counts them. Unequal lengths are front-padded to the longest case (NaN in the
raw array, ``Split.lengths`` holds the real lengths). Timestamped files
(``@timeStamps true``) and regression files (``@targetLabel``) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import DataError
from edge.preprocess import Preprocessing
from training.data.spec import Dataset, Split, register_loader, stratified_split, typed_options

_KNOWN_TAGS = {"problemname", "timestamps", "missing", "univariate", "dimensions", "equallength", "serieslength", "classlabel", "data"}


@dataclass(frozen=True)
class TsFile:
    """One parsed ``.ts`` file: cases as (length, dims) float arrays, NaN where missing."""

    path: Path
    problem: str
    labels: tuple[str, ...]
    cases: list[np.ndarray]
    y: np.ndarray
    missing: int


def _header_bool(path: Path, lineno: int, tag: str, value: str) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise DataError(f"{path}:{lineno}: malformed header: @{tag} must be true or false, got {value.strip()!r}")
    return v == "true"


def read_ts(path: Path) -> TsFile:
    """Parse a classification ``.ts`` file.

    Raises:
        DataError: missing file, malformed header, unknown label, mixed
            dimensions or a bad value — naming the file and line.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    header: dict[str, str] = {}
    labels: tuple[str, ...] | None = None
    dims: int | None = None
    cases: list[np.ndarray] = []
    ys: list[int] = []
    missing = 0
    in_data = False
    with path.open("r", encoding="utf-8-sig", errors="replace") as fh:  # -sig: tolerate a BOM
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise DataError(f"{path}:{lineno}: malformed header: expected an @tag before @data, got {line[:40]!r}")
                tag, _, value = line[1:].partition(" ")
                tag = tag.lower()
                if tag == "targetlabel":
                    raise DataError(f"{path}:{lineno}: regression files (@targetLabel) are not supported; need @classLabel")
                if tag not in _KNOWN_TAGS:
                    continue  # other writers add their own tags; the ones we need are checked below
                if tag == "data":
                    in_data = True
                    if labels is None:
                        raise DataError(f"{path}:{lineno}: malformed header: no @classLabel true <labels> before @data")
                    if header.get("timestamps") == "true":
                        raise DataError(f"{path}: @timeStamps true files are not supported")
                    continue
                if tag == "classlabel":
                    parts = value.split()
                    if not parts or not _header_bool(path, lineno, tag, parts[0]) or len(parts) < 2:
                        raise DataError(f"{path}:{lineno}: malformed header: need '@classLabel true <label> <label>...'")
                    labels = tuple(parts[1:])
                elif tag in ("timestamps", "missing", "univariate", "equallength"):
                    header[tag] = "true" if _header_bool(path, lineno, tag, value) else "false"
                elif tag in ("dimensions", "serieslength"):
                    if not value.strip().isdigit() or int(value) < 1:
                        raise DataError(f"{path}:{lineno}: malformed header: @{tag} must be a positive integer, got {value.strip()!r}")
                    header[tag] = value.strip()
                    if tag == "dimensions":
                        dims = int(value)
                else:
                    header[tag] = value.strip()
                continue
            fields = line.split(":")
            label = fields[-1].strip()
            if label not in labels:  # type: ignore[operator]
                raise DataError(f"{path}:{lineno}: unknown label {label!r}; @classLabel declares {', '.join(labels or ())}")
            series = fields[:-1]
            want = dims if dims is not None else (1 if header.get("univariate") == "true" else None)
            if want is None:
                want = dims = len(series)  # first case fixes it when the header does not
            if len(series) != want:
                raise DataError(f"{path}:{lineno}: mixed dimensions: case has {len(series)}, expected {want}")
            try:
                rows = [np.array([np.nan if v.strip() in ("?", "NaN", "nan") else float(v) for v in s.split(",")], np.float64) for s in series]
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: bad value ({exc})") from None
            if len({len(r) for r in rows}) != 1:
                raise DataError(f"{path}:{lineno}: dimensions of one case differ in length ({sorted({len(r) for r in rows})})")
            case = np.stack(rows, axis=1)
            missing += int(np.isnan(case).sum())
            cases.append(_fill_missing(case))
            ys.append(labels.index(label))  # type: ignore[union-attr]
    if not in_data:
        raise DataError(f"{path}: malformed header: no @data line")
    if not cases:
        raise DataError(f"{path}: no cases after @data")
    if header.get("equallength") == "true" and len({len(c) for c in cases}) != 1:
        raise DataError(f"{path}: @equalLength true but cases have lengths {sorted({len(c) for c in cases})[:5]}...")
    return TsFile(path, header.get("problemname", path.stem), labels, cases, np.array(ys, np.int64), missing)  # type: ignore[arg-type]


def _fill_missing(case: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaNs along time, per dimension (ends: nearest; all-NaN: 0)."""
    if not np.isnan(case).any():
        return case
    out = case.copy()
    t = np.arange(len(case))
    for d in range(case.shape[1]):
        col = out[:, d]
        bad = np.isnan(col)
        if bad.all():
            col[:] = 0.0
        elif bad.any():
            col[bad] = np.interp(t[bad], t[~bad], col[~bad])
    return out


def _pad_front(cases: list[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    dims = cases[0].shape[1]
    x = np.full((len(cases), length, dims), np.nan, np.float32)
    lengths = np.empty(len(cases), np.int64)
    for i, c in enumerate(cases):
        c = c[-length:]
        x[i, length - len(c) :] = c
        lengths[i] = len(c)
    return x, lengths


def _resolve(path: str) -> tuple[Path, str]:
    p = Path(path).expanduser()
    if p.is_dir():
        found = sorted(f.name[: -len("_TRAIN.ts")] for f in p.glob("*_TRAIN.ts"))
        if not found:
            raise DataError(f"{p}: no NAME_TRAIN.ts file in this folder")
        if len(found) > 1:
            raise DataError(f"{p}: several problems ({', '.join(found)}); use ucr:{p}/NAME")
        return p, found[0]
    if p.parent.is_dir():
        return p.parent, p.name
    raise DataError(f"{p}: folder not found")


@register_loader("ucr")
def load_ucr(path: str | None, options: dict[str, str]) -> Dataset:
    """``ucr:DIR[,val=0.2,seed=0]`` or ``ucr:DIR/NAME[,...]``."""
    if not path:
        raise DataError("ucr: needs a folder, e.g. ucr:data/BasicMotions")
    opts = typed_options("ucr", options, {"val": 0.2, "seed": 0})
    folder, name = _resolve(path)
    train = read_ts(folder / f"{name}_TRAIN.ts")
    test = read_ts(folder / f"{name}_TEST.ts")
    if set(test.labels) - set(train.labels):
        raise DataError(f"{test.path}: labels {sorted(set(test.labels) - set(train.labels))} are not in {train.path.name}")
    # test labels are re-indexed into the train file's label order
    test_y = np.array([train.labels.index(test.labels[i]) for i in test.y], np.int64)
    if train.cases[0].shape[1] != test.cases[0].shape[1]:
        raise DataError(f"{test.path}: mixed dimensions: {test.cases[0].shape[1]} vs {train.cases[0].shape[1]} in {train.path.name}")
    length = max(len(c) for c in train.cases + test.cases)
    x_all, len_all = _pad_front(train.cases, length)
    x_test, len_test = _pad_front(test.cases, length)
    keep, val = stratified_split(train.y, opts["val"], opts["seed"])
    real = np.concatenate([train.cases[i] for i in keep], axis=0)
    std = real.std(axis=0)
    pre = Preprocessing(
        scale=1.0,
        mean=tuple(float(v) for v in real.mean(axis=0)),
        std=tuple(float(v) if v > 1e-8 else 1.0 for v in std),
        pad_value=0.0,
        extra={
            "padding": "front",
            "missing": "linear-interpolation",
            "missing_filled": train.missing + test.missing,
            "variable_length": bool(len({len(c) for c in train.cases + test.cases}) > 1),
        },
    )
    spec = f"ucr:{(folder / name).resolve()},val={opts['val']},seed={opts['seed']}"
    return Dataset(
        spec=spec,
        kind="sequence",
        label_names=train.labels,
        train=Split(x_all[keep], train.y[keep], len_all[keep]),
        val=Split(x_all[val], train.y[val], len_all[val]),
        test=Split(x_test, test_y, len_test),
        preprocessing=pre,
    )
