"""The run directory's one owner: file names and the ``model_card.json`` schema (no TensorFlow).

``hybrid-edge train`` writes a run directory; ``convert``, ``eval --reference``,
the quickstart and the benchmarks read it, all through :class:`RunDir` and
:class:`ModelCard`. A run directory holds ``model.keras``, ``config.json``
(model + training settings, to reproduce the run), ``model_card.json`` (what a
bundle needs: labels, input spec, preprocessing; plus metrics, dataset, seed,
versions), ``history.json`` (per-epoch metrics) and ``tensorboard/`` logs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.bundle.manifest import InputKind
from edge.errors import DataError
from edge.preprocess import Preprocessing

MODEL = "model.keras"
CONFIG = "config.json"
CARD = "model_card.json"
HISTORY = "history.json"
TENSORBOARD = "tensorboard"


@dataclass(frozen=True)
class InputSpec:
    """One raw input item of the dataset, and the model's own input shape (None: any length)."""

    shape: tuple[int, ...]
    dtype: str
    kind: InputKind
    model_shape: tuple[int | None, ...]
    variable_length: bool = False

    @property
    def frames(self) -> int:
        """Frames (or steps) per item; 1 for images."""
        return 1 if self.kind is InputKind.IMAGE else int(self.shape[0])


@dataclass(frozen=True)
class Metrics:
    """Held-out results of the run (``test_stream``: per-step accuracy on a no-reset stream)."""

    test_accuracy: float
    test_loss: float
    epochs_run: int
    train_seconds: float
    stream_epochs_run: int = 0
    train_accuracy: float | None = None
    test_stream: dict[str, Any] | None = None
    before_stream_training: dict[str, Any] | None = None
    diagnosis: str | None = None  # why a model that did not learn did not (None when it did)


@dataclass(frozen=True)
class ModelCard:
    """What a trained model is and how well it does; the converter builds the bundle from it."""

    model: str
    labels: tuple[str, ...]
    input: InputSpec
    preprocessing: Preprocessing
    metrics: Metrics
    dataset: str
    seed: int
    streamable: bool
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "labels": list(self.labels),
            "input": {**asdict(self.input), "shape": list(self.input.shape), "kind": self.input.kind.value,
                      "model_shape": list(self.input.model_shape)},
            "preprocessing": self.preprocessing.to_manifest(),
            "metrics": {k: v for k, v in asdict(self.metrics).items() if v is not None},
            "dataset": self.dataset, "seed": self.seed, "streamable": self.streamable, "versions": dict(self.versions),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ModelCard":
        i = d["input"]
        return cls(
            model=str(d["model"]), labels=tuple(str(v) for v in d["labels"]),
            input=InputSpec(tuple(int(v) for v in i["shape"]), str(i["dtype"]), InputKind(i["kind"]),
                            tuple(None if v is None else int(v) for v in i["model_shape"]), bool(i.get("variable_length", False))),
            preprocessing=Preprocessing.from_manifest(d["preprocessing"]),
            metrics=Metrics(**d["metrics"]), dataset=str(d["dataset"]), seed=int(d["seed"]),
            streamable=bool(d["streamable"]), versions=dict(d.get("versions", {})),
        )


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@dataclass(frozen=True)
class RunDir:
    """A run directory's paths and files."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    model = property(lambda self: self.path / MODEL)
    config_path = property(lambda self: self.path / CONFIG)
    card_path = property(lambda self: self.path / CARD)
    history_path = property(lambda self: self.path / HISTORY)
    tensorboard = property(lambda self: self.path / TENSORBOARD)

    def check(self) -> "RunDir":
        """Raise DataError unless this looks like a finished run (model and card present)."""
        if not self.model.is_file() or not self.card_path.is_file():
            raise DataError(f"{self.path}: not a run directory (needs {MODEL} and {CARD}; write one with `hybrid-edge train`)")
        return self

    def card(self) -> ModelCard:
        """The model card (DataError when missing or malformed)."""
        self.check()
        try:
            return ModelCard.from_json(json.loads(self.card_path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{self.card_path}: malformed model card ({exc})") from None

    def model_name(self) -> str:
        """The card's model name for messages, read leniently (the directory name when there is no readable card)."""
        try:
            return str(json.loads(self.card_path.read_text())["model"])
        except (OSError, ValueError, KeyError, TypeError):
            return self.path.name

    def config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    def history(self) -> dict[str, Any]:
        return json.loads(self.history_path.read_text())

    def write_card(self, card: ModelCard) -> None:
        _dump(self.card_path, card.to_json())

    def write_config(self, config: dict[str, Any]) -> None:
        _dump(self.config_path, config)

    def write_history(self, history: dict[str, Any]) -> None:
        _dump(self.history_path, history)
