"""CNN+RNN video models: a per-frame CNN (TimeDistributed) feeding LSTM/GRU layers.

Layer names are part of the contract with :mod:`converters.streaming`: the
per-frame encoder is the sub-model ``frame_encoder``, recurrent layers are
``rnn_0``, ``rnn_1``…, the classifier is ``classifier``. The encoder keeps
spatial layout (Flatten, not global pooling) because where the shape *is* in
each frame is what tells motion apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.registry import register_model


@dataclass(frozen=True)
class CnnRnnConfig:
    """Clip shape, encoder widths and recurrent head."""

    frames: int = 16
    height: int = 48
    width: int = 48
    channels: int = 3
    num_classes: int = 8
    filters: tuple[int, ...] = (16, 32, 32)
    embed: int = 64
    units: tuple[int, ...] = (48,)
    cell: str = "lstm"
    dropout: float = 0.3
    batch_norm: bool = False


def build_cnn_rnn(cfg: CnnRnnConfig):
    """TimeDistributed(conv encoder) -> stacked LSTM/GRU -> softmax, on (T, H, W, C) float clips."""
    import keras
    from keras import layers

    enc_in = keras.Input((cfg.height, cfg.width, cfg.channels), name="frame")
    x = enc_in
    for i, f in enumerate(cfg.filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=not cfg.batch_norm, name=f"conv_{i}")(x)
        if cfg.batch_norm:  # folded into the conv by the converter
            x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="flatten_dropout")(x)
    x = layers.Dense(cfg.embed, activation="relu", name="embed")(x)
    encoder = keras.Model(enc_in, x, name="frame_encoder")

    clip = keras.Input((cfg.frames, cfg.height, cfg.width, cfg.channels), name="clip")
    y = layers.TimeDistributed(encoder, name="frame_encoder_td")(clip)
    rnn_cls = {"lstm": layers.LSTM, "gru": layers.GRU}[cfg.cell]
    for i, units in enumerate(cfg.units):
        last = i == len(cfg.units) - 1
        y = rnn_cls(units, return_sequences=not last, name=f"rnn_{i}")(y)
    if cfg.dropout:
        y = layers.Dropout(cfg.dropout, name="dropout")(y)
    out = layers.Dense(cfg.num_classes, activation="softmax", name="classifier")(y)
    return keras.Model(clip, out, name=f"cnn_{cfg.cell}")


@register_model("cnn_lstm", CnnRnnConfig)
def cnn_lstm(cfg: CnnRnnConfig):
    return build_cnn_rnn(cfg)


@dataclass(frozen=True)
class TinyCnnRnnConfig(CnnRnnConfig):
    """Seconds-to-train variant for tests."""

    frames: int = 6
    height: int = 24
    width: int = 24
    num_classes: int = 4
    filters: tuple[int, ...] = (4, 8)
    embed: int = 16
    units: tuple[int, ...] = (8,)


@register_model("test_cnn_lstm", TinyCnnRnnConfig)
def test_cnn_lstm(cfg: TinyCnnRnnConfig):
    return build_cnn_rnn(cfg)
