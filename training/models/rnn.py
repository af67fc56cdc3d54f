"""Recurrent classifiers for sensor / feature sequences (T, F).

Layout (a linear chain, see the streaming contract in :mod:`training.models`)::

    sequence (T, F)        T is None by default: any length, padded batches
    [conv_0]               Conv1D(padding="causal", use_bias=False), optional front end
    mask                   Masking(0.0): front padding is skipped by the recurrent layers
    [noise]                GaussianNoise while training only (``noise``, default 0.1)
    [conv_bn, conv_relu]   BatchNormalization + ReLU after the front end
    rnn_0 .. rnn_{n-1}     LSTM or GRU (Bidirectional for ``rnn_bidir``: not streamable)
    dropout                Dropout
    classifier             Dense softmax on the last step's output

Variable length: sequences are padded at the *front* with zeros (the
``preprocessing`` of a sequence dataset maps its padding to 0.0). The causal
conv has no bias, so a padded step's output is exactly zero and ``mask`` drops
it; a real step's output is what a streaming conv with a zero-initialised buffer
computes. The model's output for a padded sequence therefore equals its output
for the real steps alone, from zero state.

Why the noise: an LSTM trained on a few dozen series can learn dynamics in
which a tiny change of its input sends the state to another class by the end of
the sequence. Measured on BasicMotions, seed 2, without it: the float model
itself changed up to 2 of its 40 test decisions under input noise of stddev
0.01-0.1 (int8 rounds that input in steps of 0.1), and its int8 bundle changed
2, one where float's top class led by 0.999. Trained with noise on the front
end's output, seeds 0-2 agree with float on every decision there (the table for
every UEA set: docs/datasets-and-models.md, "Sensor data: rnn").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.errors import HybridEdgeError
from training.registry import FitDefaults, register_model

CELLS = ("lstm", "gru")


@dataclass(frozen=True)
class RnnConfig:
    """Sensor/feature sequences of any length: optional causal Conv1D -> LSTM/GRU stack -> softmax."""

    timesteps: int = 0  # 0: variable length (None)
    features: int = 6
    num_classes: int = 4
    cell: str = "lstm"
    units: tuple[int, ...] = (64,)
    conv_filters: int = 32  # 0: no Conv1D front end
    conv_kernel: int = 5
    conv_dilation: int = 1
    dropout: float = 0.3
    bidirectional: bool = False
    noise: float = 0.1  # GaussianNoise stddev on the front end's output while training (see the module docstring); 0: off


def build_rnn(cfg: RnnConfig) -> Any:
    """Build the chain above; see the module docstring for names and masking."""
    import keras
    from keras import layers

    if cfg.cell not in CELLS:
        raise HybridEdgeError(f"unknown cell {cfg.cell!r}; choose one of {', '.join(CELLS)}")
    if not cfg.units:
        raise HybridEdgeError("rnn needs at least one recurrent layer (units)")
    seq = keras.Input((cfg.timesteps or None, cfg.features), name="sequence")
    x = seq
    if cfg.conv_filters:
        x = layers.Conv1D(
            cfg.conv_filters, cfg.conv_kernel, dilation_rate=cfg.conv_dilation, padding="causal", use_bias=False, name="conv_0"
        )(x)
    x = layers.Masking(0.0, name="mask")(x)
    if cfg.noise:
        x = layers.GaussianNoise(cfg.noise, name="noise")(x)  # identity at inference; masked steps stay masked
    if cfg.conv_filters:
        x = layers.BatchNormalization(name="conv_bn")(x)
        x = layers.Activation("relu", name="conv_relu")(x)
    rnn_cls = {"lstm": layers.LSTM, "gru": layers.GRU}[cfg.cell]
    for i, units in enumerate(cfg.units):
        last = i == len(cfg.units) - 1
        if cfg.bidirectional:
            x = layers.Bidirectional(rnn_cls(units, return_sequences=not last), name=f"rnn_{i}")(x)
        else:
            x = rnn_cls(units, return_sequences=not last, name=f"rnn_{i}")(x)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="dropout")(x)
    out = layers.Dense(cfg.num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(seq, out, name=f"rnn_{cfg.cell}{'_bidir' if cfg.bidirectional else ''}")


# Small UEA/UCR training sets (tens to hundreds of sequences) need many short epochs.
# Validation sets are small, so early stopping watches the (smoother) validation loss.
_FIT = FitDefaults(epochs=150, batch_size=16, learning_rate=3e-3, patience=30, monitor="val_loss")


@register_model("rnn", RnnConfig, "sequence", fit=_FIT)
def rnn(cfg: RnnConfig) -> Any:
    return build_rnn(cfg)


@dataclass(frozen=True)
class BidirRnnConfig(RnnConfig):
    """Reads each sequence both ways: often more accurate offline, cannot stream."""

    units: tuple[int, ...] = (48,)
    bidirectional: bool = True


@register_model("rnn_bidir", BidirRnnConfig, "sequence", streamable=False, fit=_FIT)
def rnn_bidir(cfg: BidirRnnConfig) -> Any:
    return build_rnn(cfg)


@dataclass(frozen=True)
class TinyRnnConfig(RnnConfig):
    """Seconds-to-train LSTM variant for tests (conv front end, two stacked layers)."""

    features: int = 3
    num_classes: int = 3
    units: tuple[int, ...] = (8, 6)
    conv_filters: int = 4
    conv_kernel: int = 3
    conv_dilation: int = 2


@register_model("test_rnn", TinyRnnConfig, "sequence", fit=_FIT)
def test_rnn(cfg: TinyRnnConfig) -> Any:
    return build_rnn(cfg)


@dataclass(frozen=True)
class TinyGruConfig(TinyRnnConfig):
    """Seconds-to-train GRU variant without the conv front end."""

    cell: str = "gru"
    units: tuple[int, ...] = (8,)
    conv_filters: int = 0


@register_model("test_rnn_gru", TinyGruConfig, "sequence", fit=_FIT)
def test_rnn_gru(cfg: TinyGruConfig) -> Any:
    return build_rnn(cfg)


@dataclass(frozen=True)
class TinyBidirConfig(TinyRnnConfig):
    """Seconds-to-train bidirectional variant (not streamable)."""

    units: tuple[int, ...] = (6,)
    bidirectional: bool = True


@register_model("test_rnn_bidir", TinyBidirConfig, "sequence", streamable=False, fit=_FIT)
def test_rnn_bidir(cfg: TinyBidirConfig) -> Any:
    return build_rnn(cfg)
