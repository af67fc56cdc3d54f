"""The opt-in disk cache of generated datasets: a cached load equals a fresh one, and only generated kinds are cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import load_dataset
from training.data.cache import ENV

SPEC = "synthetic-actions:classes=3,frames=4,size=16,clips=4,seed=5"


def test_cached_load_equals_fresh_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = load_dataset(SPEC)
    monkeypatch.setenv(ENV, str(tmp_path))
    first = load_dataset(SPEC)
    files = sorted(tmp_path.glob("dataset-*.npz"))
    assert len(files) == 2 and files[0].stat().st_ino == files[1].stat().st_ino  # as asked + as spelled: one file, two names
    again = load_dataset(fresh.spec)  # what a run directory records
    for d in (first, again):
        assert d.spec == fresh.spec and d.kind == fresh.kind and d.label_names == fresh.label_names
        assert d.preprocessing == fresh.preprocessing
        for name in ("train", "val", "test"):
            assert np.array_equal(d.split(name).x, fresh.split(name).x) and np.array_equal(d.split(name).y, fresh.split(name).y)
            assert d.split(name).x.dtype == np.uint8


def test_cache_is_off_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    load_dataset(SPEC)
    assert not list(tmp_path.rglob("dataset-*.npz"))
