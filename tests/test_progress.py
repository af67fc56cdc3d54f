"""Progress display: one plain line per finished step off a terminal, nothing when turned off."""

from __future__ import annotations

import pytest

from edge.progress import Progress, bars, progress


def test_plain_line_when_not_a_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRID_EDGE_PROGRESS", raising=False)
    assert not bars()  # pytest's captured streams are not terminals
    assert list(progress(range(5), "counting", unit="items")) == [0, 1, 2, 3, 4]
    with Progress(3, "training", unit="epochs") as bar:
        for _ in range(3):
            bar.update()
        bar.note("loss 0.1")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("  counting: 5 items in ") and err[1].startswith("  training: 3 epochs in ")
    assert err[1].endswith("; loss 0.1")


def test_off(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_EDGE_PROGRESS", "0")
    assert sum(progress(range(4), "counting")) == 6
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
