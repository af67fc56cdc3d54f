"""One model registry: the CLI's choices, the tests and the benchmarks all iterate it."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from edge.errors import HybridEdgeError

_MODULES = ("training.models.cnn_rnn",)


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder, its config class, and whether it runs as a step model."""

    name: str
    builder: Callable[[Any], Any]
    config_cls: type
    streamable: bool
    test_variant: bool


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config_cls: type, streamable: bool = True) -> Callable:
    """Decorator: ``@register_model("cnn_lstm", CnnRnnConfig)`` on ``build(config) -> keras.Model``."""

    def wrap(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, config_cls, streamable, name.startswith("test_"))
        return fn

    return wrap


def _load() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def list_models(include_tests: bool = True) -> list[str]:
    """Registered model names, sorted."""
    _load()
    return sorted(n for n, e in _REGISTRY.items() if include_tests or not e.test_variant)


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
            if isinstance(current, tuple):
                value = tuple(type(current[0] if current else 1)(v) for v in value.split("x" if "x" in value else ";") if v)
            elif isinstance(current, bool):
                value = value.lower() in ("1", "true", "yes")
            else:
                value = type(current)(value)
        typed[key] = value
    return dataclasses.replace(cfg, **typed)


def create_model(name: str, config: Any = None) -> Any:
    """Build a Keras model by registered name."""
    entry = get_entry(name)
    return entry.builder(config if config is not None else entry.config_cls())
