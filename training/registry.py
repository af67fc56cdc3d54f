"""One model registry: the CLI's choices, the tests and the benchmarks all iterate it."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.bundle.manifest import InputKind
from edge.errors import HybridEdgeError

_MODULES = ("training.models.cnn", "training.models.rnn", "training.models.tcn", "training.models.cnn_rnn")


SCHEDULES = ("constant", "cosine")  # learning-rate schedules training.train knows


@dataclass(frozen=True)
class FitDefaults:
    """Training-loop defaults that suit a model (the CLI's flags override them)."""

    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 2e-3
    patience: int = 5
    monitor: str = "val_accuracy"  # early stopping + best-weights restore watch this
    min_epochs: int = 0  # neither stop nor pick a best epoch before this one (tiny validation sets are noisy)
    clipnorm: float = 0.0  # gradient-norm clipping; 0 = off
    stream_epochs: int = 0  # carried-state stream fine-tuning after the fit (training.streamfit); 0 = off
    schedule: str = "constant"  # learning rate: "constant", or "cosine" (decays to 0 over `epochs`)
    stream_learning_rate: float = 1e-3  # of the stream fine-tuning phase
    precise_bn: bool = False  # recompute BatchNorm statistics over time on the whole training set after the fit


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder, its config class, its input kind, and whether it runs as a step model."""

    name: str
    builder: Callable[[Any], Any]
    config_cls: type
    streamable: bool
    test_variant: bool
    input_kind: InputKind = InputKind.CLIP
    fit: FitDefaults = field(default_factory=FitDefaults)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    config_cls: type,
    input_kind: InputKind | str,
    streamable: bool = True,
    fit: FitDefaults | None = None,
) -> Callable:
    """Decorator: ``@register_model("cnn_lstm", CnnRnnConfig, "clip")`` on ``build(config) -> keras.Model``.

    ``streamable`` means the model can be rebuilt as a one-step model with
    external state from the same weights (see the contract in
    :mod:`training.models`); image models are not sequence models, so ``False``.
    """

    def wrap(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(
            name, fn, config_cls, streamable, name.startswith("test_"), InputKind(input_kind), fit or FitDefaults()
        )
        return fn

    return wrap


def _load() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def list_models(include_tests: bool = True, input_kind: InputKind | str | None = None, streamable: bool | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by input kind / streamability."""
    _load()
    kind = InputKind(input_kind) if input_kind is not None else None
    return sorted(
        n
        for n, e in _REGISTRY.items()
        if (include_tests or not e.test_variant)
        and (kind is None or e.input_kind == kind)
        and (streamable is None or e.streamable == streamable)
    )


def get_entry(name: str) -> ModelEntry:
    _load()
    if name not in _REGISTRY:
        raise HybridEdgeError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name]


def make_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model's default config with typed overrides (unknown keys are an error)."""
    entry = get_entry(name)
    cfg = entry.config_cls()
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise HybridEdgeError(f"model {name!r} has no settings {sorted(unknown)}; known: {sorted(fields)}")
    typed = {}
    for key, value in overrides.items():
        current = getattr(cfg, key)
        if isinstance(value, str):
            try:
                if isinstance(current, tuple):
                    value = tuple(type(current[0] if current else 1)(v) for v in value.split("x" if "x" in value else ";") if v)
                elif isinstance(current, bool):
                    if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                        raise ValueError(value)
                    value = value.lower() in ("1", "true", "yes")
                else:
                    value = type(current)(value)
            except ValueError:
                raise HybridEdgeError(f"model {name!r}: setting {key}={value!r} is not a valid {type(current).__name__}") from None
        typed[key] = value
    return dataclasses.replace(cfg, **typed)


def create_model(name: str, config: Any = None) -> Any:
    """Build a Keras model by registered name."""
    entry = get_entry(name)
    return entry.builder(config if config is not None else entry.config_cls())


def load_keras_model(path: Any) -> Any:
    """Load a saved ``model.keras`` (safe mode), with this package's custom layers registered."""
    import keras

    import training.models.layers  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(path, safe_mode=True)

